"""Names Close gives each kind of child record: endpoints, ``_type`` values, event object types.

The activity table follows §4.0/§4.5: which types the API can create, which fields a PUT may
change, which can be deleted. Event object types follow §7.1 (``activity.note``,
``activity.lead_status_change``, ``task.lead``, ``task.email_followup``, ``opportunity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ActivityType:
    path: str  # under /activity/
    name: str  # the record's `_type`
    event_type: str  # the event log's object_type
    creatable: bool
    editable: frozenset[str] | None  # None: no PUT
    deletable: bool


_NOTE_EDITS = frozenset(
    {"note", "note_html", "title", "pinned", "contact_id", "user_id", "attachments", "activity_at"}
)
_CALL_EDITS = frozenset(
    {
        "note",
        "note_html",
        "outcome_id",
        "disposition",
        "status",
        "duration",
        "direction",
        "contact_id",
        "user_id",
    }
)
_EMAIL_EDITS = frozenset(
    {
        "subject",
        "body_text",
        "body_html",
        "status",
        "to",
        "cc",
        "bcc",
        "sender",
        "date_scheduled",
        "contact_id",
    }
)
_SMS_EDITS = frozenset({"text", "status", "date_scheduled", "contact_id"})

ACTIVITY_TYPES = (
    ActivityType("created", "Created", "activity.created", False, None, False),
    ActivityType("note", "Note", "activity.note", True, _NOTE_EDITS, True),
    ActivityType("call", "Call", "activity.call", True, _CALL_EDITS, True),
    ActivityType("email", "Email", "activity.email", True, _EMAIL_EDITS, True),
    ActivityType("emailthread", "EmailThread", "activity.email_thread", False, None, True),
    ActivityType("sms", "SMS", "activity.sms", True, _SMS_EDITS, True),
    ActivityType(
        "meeting", "Meeting", "activity.meeting", False, frozenset({"user_note_html", "outcome_id"}), True
    ),
    ActivityType("status_change/lead", "LeadStatusChange", "activity.lead_status_change", True, None, True),
    ActivityType(
        "status_change/opportunity",
        "OpportunityStatusChange",
        "activity.opportunity_status_change",
        True,
        None,
        True,
    ),
    ActivityType("task_completed", "TaskCompleted", "activity.task_completed", False, None, True),
)
ACTIVITY_BY_NAME = {kind.name: kind for kind in ACTIVITY_TYPES}
ACTIVITY_BY_PATH = {kind.path: kind for kind in ACTIVITY_TYPES}

TASK_TYPES = (
    "lead",
    "incoming_email",
    "email_followup",
    "missed_call",
    "answered_detached_call",
    "voicemail",
    "opportunity_due",
    "incoming_sms",
    "outgoing_call",
)
CREATABLE_TASK_TYPES = ("lead", "outgoing_call")


def event_object_type(kind: str, record: dict[str, Any]) -> str:
    """The event log's ``object_type`` for a child record of ``kind`` (opportunity/task/activity)."""
    if kind == "task":
        return f"task.{record['_type']}"
    if kind == "activity":
        found = ACTIVITY_BY_NAME.get(record["_type"])
        return found.event_type if found else "activity." + str(record["_type"]).lower()
    return kind
