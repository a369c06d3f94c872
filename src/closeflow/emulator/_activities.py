"""Close's write semantics for activities (§4.0, §4.5).

Creates validate the whole payload (``lead_id`` must exist, enums, the fields each type needs)
before anything is stored. A PUT changes only the fields Close lets that type edit (others are
ignored, as Close ignores unknown keys) and bumps ``date_updated`` but never ``date_created`` —
the exact case where connectors paging on ``date_created`` lose edits, so it is recorded as an
``updated`` event with ``changed_fields``. Only draft emails can be edited. Deleting an email
thread deletes its emails. Every change bumps the lead's ``date_updated`` without a lead event.
``date_created``/``activity_at`` may be given on create (imports backdate history).
Close also logs activities by itself: ``Created`` for a new lead, ``LeadStatusChange`` and
``OpportunityStatusChange`` for a status change, ``TaskCompleted`` for a completed lead task;
each records its own ``created`` event, like any activity.
"""

from __future__ import annotations

import copy
import html
import re
from typing import Any

from closeflow.emulator._activity_fields import (
    CALL_DISPOSITIONS,
    CALL_STATUSES,
    MEETING_STATUSES,
    MESSAGE_STATUSES,
    base,
)
from closeflow.emulator._errors import FieldErrors, field_error, not_found
from closeflow.emulator._events import WriteContext, changed_fields
from closeflow.emulator._ids import iso_utc, parse_datetime
from closeflow.emulator._object_types import ActivityType, event_object_type
from closeflow.emulator._org import Organization

_TAGS = re.compile(r"<[^>]+>")
_ENUMS = {
    ("Call", "status"): CALL_STATUSES,
    ("Call", "disposition"): CALL_DISPOSITIONS,
    ("Call", "direction"): ("inbound", "outbound"),
    ("Email", "status"): MESSAGE_STATUSES,
    ("Email", "direction"): ("incoming", "outgoing"),
    ("SMS", "status"): MESSAGE_STATUSES,
    ("SMS", "direction"): ("inbound", "outbound"),
    ("Meeting", "status"): MEETING_STATUSES,
}
_PLAIN_CREATE_FIELDS = {
    "Note": ("note", "note_html", "title", "pinned", "attachments"),
    "Call": (
        "direction",
        "status",
        "disposition",
        "duration",
        "note",
        "note_html",
        "outcome_id",
        "recording_url",
        "remote_phone",
        "local_phone",
    ),
    "Email": (
        "status",
        "direction",
        "subject",
        "body_text",
        "body_html",
        "sender",
        "to",
        "cc",
        "bcc",
        "date_scheduled",
        "template_id",
        "attachments",
    ),
    "SMS": (
        "status",
        "direction",
        "text",
        "local_phone",
        "remote_phone",
        "date_scheduled",
        "template_id",
        "attachments",
    ),
    "LeadStatusChange": ("old_status_id", "old_status_label", "new_status_id", "new_status_label"),
    "OpportunityStatusChange": (
        "opportunity_id",
        "old_status_id",
        "old_status_label",
        "new_status_id",
        "new_status_label",
    ),
}


def new_activity(
    org: Organization, type_name: str, lead_id: str, context: WriteContext, fields: dict[str, Any]
) -> dict[str, Any]:
    """Store a finished activity, bump its lead and record its ``created`` event."""
    record = base(
        activity_id=org.ids.new("acti_"),
        type_name=type_name,
        organization_id=org.id,
        lead_id=lead_id,
        user_id=context.user_id,
        user_name=org.user_name(context.user_id),
        when=org.now(),
    )
    record.update(fields)
    org.activities.add(record)
    org.child_changed(context, event_object_type("activity", record), "created", record)
    return record


def create_activity(
    org: Organization, kind: ActivityType, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    errors = FieldErrors()
    lead_id = payload.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise field_error("lead_id", "This field is required.")
    lead = org.leads.get(lead_id)
    if lead is None:
        raise field_error("lead_id", f"Lead {lead_id!r} does not exist.")
    fields: dict[str, Any] = {}
    for key in _PLAIN_CREATE_FIELDS.get(kind.name, ()):
        if key in payload:
            fields[key] = payload[key]
    _common(org, lead, payload, fields, errors)
    _check_enums(kind.name, fields, errors)
    _type_rules(org, kind.name, payload, fields, errors)
    if errors.field_errors or errors.errors:
        raise errors
    return new_activity(org, kind.name, lead_id, context, fields)


def _common(
    org: Organization,
    lead: dict[str, Any],
    payload: dict[str, Any],
    fields: dict[str, Any],
    errors: FieldErrors,
) -> None:
    if "contact_id" in payload:
        if payload["contact_id"] is not None and payload["contact_id"] not in lead["contact_ids"]:
            errors.field_errors["contact_id"] = "Contact does not belong to this lead."
        else:
            fields["contact_id"] = payload["contact_id"]
    if "user_id" in payload:
        if payload["user_id"] not in org.users:
            errors.field_errors["user_id"] = (
                f"User {payload['user_id']!r} is not a member of this organization."
            )
        else:
            fields["user_id"] = payload["user_id"]
            fields["user_name"] = org.user_name(payload["user_id"])
            fields["users"] = [payload["user_id"]]
    for key in ("activity_at", "date_created"):
        if key in payload:
            try:
                fields[key] = iso_utc(parse_datetime(str(payload[key])).timestamp())
            except ValueError:
                errors.field_errors[key] = "Invalid datetime: use ISO 8601, e.g. 2026-01-31T12:00:00+00:00."
    if "date_created" in fields:
        fields["date_updated"] = fields["date_created"]
        fields.setdefault("activity_at", fields["date_created"])


def _check_enums(type_name: str, fields: dict[str, Any], errors: FieldErrors) -> None:
    for (name, key), allowed in _ENUMS.items():
        if name == type_name and key in fields and fields[key] not in allowed:
            errors.field_errors[key] = f"Must be one of: {', '.join(allowed)}."


def _type_rules(
    org: Organization, type_name: str, payload: dict[str, Any], fields: dict[str, Any], errors: FieldErrors
) -> None:
    now = fields.get("date_created") or org.now()
    if type_name == "Note":
        if "note_html" in fields and "note" not in fields:
            fields["note"] = html.unescape(_TAGS.sub("", str(fields["note_html"] or "")))
        elif "note" in fields and "note_html" not in fields:
            fields["note_html"] = f"<body>{html.escape(str(fields['note'] or ''))}</body>"
    elif type_name == "Call":
        url = fields.get("recording_url")
        if url is not None and not str(url).startswith("https://"):
            errors.field_errors["recording_url"] = "The recording URL must use https."
        if "duration" in fields and (not isinstance(fields["duration"], int) or fields["duration"] < 0):
            errors.field_errors["duration"] = "Must be a non-negative number of seconds."
        if "phone" in payload:
            fields["phone"] = fields["remote_phone"] = payload["phone"]
    elif type_name in ("Email", "SMS"):
        status = payload.get("status")
        if status is None:
            errors.field_errors["status"] = "This field is required."
        if type_name == "Email" and status in ("inbox", "scheduled", "outbox") and not payload.get("sender"):
            errors.field_errors["sender"] = f"A sender is required for {status} emails."
        if type_name == "SMS" and not payload.get("text") and not payload.get("template_id"):
            errors.field_errors["text"] = "Either text or template_id is required."
        if status == "scheduled" and not payload.get("date_scheduled"):
            errors.field_errors["date_scheduled"] = "Scheduled messages need date_scheduled."
        incoming = ("incoming", "outgoing") if type_name == "Email" else ("inbound", "outbound")
        fields.setdefault("direction", incoming[0] if status == "inbox" else incoming[1])
        if status in ("inbox", "sent"):
            fields["date_sent"] = now
        if type_name == "Email":
            fields["body_preview"] = str(fields.get("body_text") or "")[:100]
    elif type_name == "LeadStatusChange":
        for side in ("old", "new"):
            status = org.find_lead_status(status_id=payload.get(f"{side}_status_id"))
            if status is None:
                errors.field_errors[f"{side}_status_id"] = "Lead status does not exist."
            else:
                fields.setdefault(f"{side}_status_label", status["label"])
    elif type_name == "OpportunityStatusChange":
        opportunity = org.opportunities.get(str(payload.get("opportunity_id")))
        if opportunity is None:
            errors.field_errors["opportunity_id"] = "Opportunity does not exist."
        else:
            fields.update(_opportunity_snapshot(opportunity))


def _opportunity_snapshot(opportunity: dict[str, Any]) -> dict[str, Any]:
    return {
        "opportunity_id": opportunity["id"],
        "opportunity_value": opportunity["value"],
        "opportunity_value_formatted": opportunity["value_formatted"],
        "opportunity_value_currency": opportunity["value_currency"],
        "opportunity_value_period": opportunity["value_period"],
        "opportunity_confidence": opportunity["confidence"],
        "opportunity_date_won": opportunity["date_won"],
    }


def opportunity_status_change(
    org: Organization, before: dict[str, Any], after: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    fields = _opportunity_snapshot(after)
    for side, record in (("old", before), ("new", after)):
        fields[f"{side}_status_id"] = record["status_id"]
        fields[f"{side}_status_label"] = record["status_label"]
        fields[f"{side}_status_type"] = record["status_type"]
        fields[f"{side}_pipeline_id"] = record["pipeline_id"]
        fields[f"{side}_pipeline_name"] = record["pipeline_name"]
    return new_activity(org, "OpportunityStatusChange", after["lead_id"], context, fields)


def lead_created(org: Organization, lead: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    """The ``Created`` activity Close logs for every new lead (§4.5), ``source`` ``api`` here.

    It carries the lead's ``date_created`` (a backdated import's lead is created "then"), as a
    backdated activity create does; no contact, like the seeded ones.
    """
    when = lead["date_created"]
    fields = {"source": "api", "activity_at": when, "date_created": when, "date_updated": when}
    return new_activity(org, "Created", lead["id"], context, fields)


def lead_status_change(
    org: Organization, before: dict[str, Any], after: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    """The ``LeadStatusChange`` activity Close logs when a lead's status changes (§4.5)."""
    fields = {
        f"{side}_status_{key}": record[f"status_{key}"]
        for side, record in (("old", before), ("new", after))
        for key in ("id", "label")
    }
    return new_activity(org, "LeadStatusChange", after["id"], context, fields)


def task_completed(org: Organization, task: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    fields = {
        "task_id": task["id"],
        "task_text": task["text"],
        "task_assigned_to": task["assigned_to"],
        "task_assigned_to_name": task["assigned_to_name"],
        "contact_id": task.get("contact_id"),
    }
    return new_activity(org, "TaskCompleted", task["lead_id"], context, fields)


def update_activity(
    org: Organization, kind: ActivityType, activity_id: str, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    current = org.activities.get(activity_id)
    if current is None or current["_type"] != kind.name:
        raise not_found()
    if kind.name == "Email" and current["status"] != "draft":
        raise field_error("status", "Only draft emails can be edited.")
    editable = kind.editable or frozenset()
    updated = copy.deepcopy(current)
    fields = {key: value for key, value in payload.items() if key in editable}
    errors = FieldErrors()
    lead = org.leads.get(current["lead_id"]) or {"contact_ids": []}
    _common(
        org,
        lead,
        {k: v for k, v in fields.items() if k in ("contact_id", "user_id", "activity_at")},
        fields,
        errors,
    )
    _check_enums(kind.name, fields, errors)
    if errors.field_errors:
        raise errors
    if kind.name == "Note" and ("note" in fields) != ("note_html" in fields):
        _type_rules(org, "Note", fields, fields, errors)
    updated.update(fields)
    if not changed_fields(current, updated):
        return current
    updated["date_updated"] = org.now()
    updated["updated_by"] = context.user_id
    updated["updated_by_name"] = org.user_name(context.user_id)
    changed = changed_fields(current, updated)
    org.records["activity"][activity_id] = updated
    org.activities.touched()
    org.child_changed(context, kind.event_type, "updated", updated, before=current, fields=changed)
    return updated


def delete_activity(org: Organization, kind: ActivityType, activity_id: str, context: WriteContext) -> None:
    current = org.activities.get(activity_id)
    if current is None or current["_type"] != kind.name:
        raise not_found()
    doomed = [current]
    if kind.name == "EmailThread":
        doomed += [a for a in org.activities.of_lead(current["lead_id"]) if a.get("thread_id") == activity_id]
    for record in doomed:
        org.activities.remove(record["id"])
        org.record_event(
            context,
            object_type=event_object_type("activity", record),
            object_id=record["id"],
            lead_id=record["lead_id"],
            action="deleted",
            data=None,
            previous_data=record,
        )
    org.bump_lead(current["lead_id"], context)
