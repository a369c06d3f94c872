"""Seeded opportunities, tasks and activities at a real org's ratios (per lead: ~0.3 opportunities,
~0.5 tasks of mixed types, ~5 activities over all ten types).

Built after the leads with their own random stream, so a seed's leads and contacts are the same
with or without children. Every child's dates fall between its lead's ``date_created`` and
``date_updated`` — a child change bumps the lead, so the lead is never older than its children.
About one note in ten was edited after creation (``date_updated`` > ``date_created``): history a
sync paging on ``date_created`` must catch elsewhere. Seeding records no events: it is history
from before the event log's window. Records are finished dicts built from per-type templates
(copied, then a few keys set); empty default lists are shared between seeded records, which is
safe because every write path copies a record before changing it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from closeflow.emulator._activity_fields import DEFAULTS
from closeflow.emulator._dice import Dice
from closeflow.emulator._ids import iso_utc
from closeflow.emulator._opportunities import derive
from closeflow.emulator._org import Organization
from closeflow.emulator._routes_custom_fields import custom_field_definition
from closeflow.emulator._tasks import view_of

OPPORTUNITY_FIELDS: list[dict[str, Any]] = [
    {"name": "Deal Source", "type": "choices", "choices": ["Inbound", "Outbound", "Partner"]},
    {"name": "Competitor", "type": "text"},
    {"name": "Contract Months", "type": "number"},
]
# (activity _type, expected count per lead); Created is one per lead.
ACTIVITY_MIX = [
    ("Note", 1.0),
    ("Call", 1.0),
    ("Email", 1.2),
    ("EmailThread", 0.4),
    ("SMS", 0.3),
    ("Meeting", 0.2),
    ("LeadStatusChange", 0.3),
]
OTHER_TASK_TYPES = [
    "incoming_email",
    "email_followup",
    "missed_call",
    "voicemail",
    "opportunity_due",
    "incoming_sms",
    "answered_detached_call",
    "outgoing_call",
]
SUBJECTS = ["Quick question", "Follow-up", "Pricing", "Demo next week", "Contract", "Intro"]
NOTES = [
    "Called, left a voicemail.",
    "Interested in the API.",
    "Budget approved for Q3.",
    "Needs a security review.",
]


def opportunity_fields(org: Organization, owner: str) -> None:
    for spec in OPPORTUNITY_FIELDS:
        definition = custom_field_definition(org, "opportunity", spec, owner)
        org.custom_fields["opportunity"][definition["id"]] = definition


def seed_children(org: Organization, seed: int) -> None:
    rng = Dice(seed * 7919 + 17)
    random, pick = rng.random, rng.pick
    users = list(org.users)
    names = {uid: org.user_name(uid) for uid in users}
    statuses = [s for p in org.pipelines for s in p["statuses"]]
    field_ids = {d["name"]: f"custom.{d['id']}" for d in org.custom_fields["opportunity"].values()}
    now_text = org.now()
    opportunities: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []
    templates = {name: _template(org, name) for name in DEFAULTS}
    new_id = org.ids.new
    lead_statuses = org.lead_statuses

    def children_of(lead: dict[str, Any]) -> None:
        lead_id = lead["id"]
        low = datetime.fromisoformat(lead["date_created"]).timestamp()
        high = datetime.fromisoformat(lead["date_updated"]).timestamp()
        span = high - low
        contact_ids = lead["contact_ids"]

        def stamp() -> str:
            return iso_utc(low + random() * span)

        def activity(type_name: str, when: str, user: str, **fields: Any) -> dict[str, Any]:
            record = dict(templates[type_name])
            record.update(fields)
            record["id"] = new_id("acti_")
            record["lead_id"] = lead_id
            record["contact_id"] = (
                pick(contact_ids) if type_name not in ("Created", "LeadStatusChange") else None
            )
            record["user_id"] = record["created_by"] = record["updated_by"] = user
            record["user_name"] = record["created_by_name"] = record["updated_by_name"] = names[user]
            record["users"] = [user]
            record["activity_at"] = record["date_created"] = record["date_updated"] = when
            activities.append(record)
            return record

        activity("Created", lead["date_created"], lead["created_by"], source=pick(["ui", "api", "import"]))
        for type_name, rate in ACTIVITY_MIX:
            count = int(rate) + (1 if random() < rate - int(rate) else 0)
            for _ in range(count):
                user = pick(users)
                record = activity(type_name, stamp(), user, **_extras(type_name, rng, lead, lead_statuses))
                if type_name == "Note" and random() < 0.1:
                    record["date_updated"] = iso_utc(
                        datetime.fromisoformat(record["date_created"]).timestamp()
                        + random() * (high - low) / 2
                    )
                    record["date_updated"] = min(record["date_updated"], lead["date_updated"])
        if random() < 0.3:
            opportunity = _opportunity(org, rng, lead, pick(statuses), pick(users), stamp(), field_ids)
            opportunities.append(opportunity)
            if opportunity["status_type"] != "active":
                old = statuses[0]
                activity(
                    "OpportunityStatusChange",
                    opportunity["date_updated"],
                    opportunity["user_id"],
                    opportunity_id=opportunity["id"],
                    old_status_id=old["id"],
                    old_status_label=old["label"],
                    old_status_type=old["type"],
                    new_status_id=opportunity["status_id"],
                    new_status_label=opportunity["status_label"],
                    new_status_type=opportunity["status_type"],
                    old_pipeline_id=opportunity["pipeline_id"],
                    new_pipeline_id=opportunity["pipeline_id"],
                    old_pipeline_name=opportunity["pipeline_name"],
                    new_pipeline_name=opportunity["pipeline_name"],
                    opportunity_value=opportunity["value"],
                    opportunity_value_formatted=opportunity["value_formatted"],
                    opportunity_value_currency=opportunity["value_currency"],
                    opportunity_value_period=opportunity["value_period"],
                    opportunity_confidence=opportunity["confidence"],
                    opportunity_date_won=opportunity["date_won"],
                )
        if random() < 0.5:
            task = _task(org, rng, lead, pick(users), names, stamp(), now_text)
            tasks.append(task)
            if task["_type"] == "lead" and task["is_complete"]:
                activity(
                    "TaskCompleted",
                    task["date_updated"],
                    task["assigned_to"],
                    task_id=task["id"],
                    task_text=task["text"],
                    task_assigned_to=task["assigned_to"],
                    task_assigned_to_name=task["assigned_to_name"],
                )

    for lead in org.leads.values():
        children_of(lead)
    org.opportunities.load(opportunities)
    org.tasks.load(tasks)
    org.activities.load(activities)


def _template(org: Organization, type_name: str) -> dict[str, Any]:
    return {"id": "", "_type": type_name, "lead_id": "", "organization_id": org.id, **DEFAULTS[type_name]}


def _extras(
    type_name: str, rng: Dice, lead: dict[str, Any], lead_statuses: list[dict[str, Any]]
) -> dict[str, Any]:
    pick, between = rng.pick, rng.between
    if type_name == "Note":
        text = pick(NOTES)
        return {"note": text, "note_html": f"<body>{text}</body>"}
    if type_name == "Call":
        answered = rng.random() < 0.6
        phone = f"+1415555{between(1000, 9999)}"
        return {
            "direction": pick(["inbound", "outbound"]),
            "disposition": "answered" if answered else pick(["no-answer", "vm-left", "busy"]),
            "duration": between(30, 1800) if answered else 0,
            "phone": phone,
            "remote_phone": phone,
            "remote_phone_formatted": f"+1 415-555-{phone[-4:]}",
            "remote_country_iso": "US",
            "source": pick(["Close.io", "External"]),
        }
    if type_name == "Email":
        incoming = rng.random() < 0.4
        subject = pick(SUBJECTS)
        return {
            "status": "inbox" if incoming else "sent",
            "direction": "incoming" if incoming else "outgoing",
            "subject": subject,
            "body_text": f"{subject} for {lead['display_name']}.",
            "body_preview": f"{subject} for {lead['display_name']}.",
            "sender": "sales@example.com",
            "to": ["buyer@example.com"],
        }
    if type_name == "EmailThread":
        return {"latest_normalized_subject": pick(SUBJECTS), "n_emails": between(1, 6)}
    if type_name == "SMS":
        return {"status": "sent", "direction": "outbound", "text": "Thanks for your time today!"}
    if type_name == "Meeting":
        return {"title": f"Demo with {lead['display_name']}", "status": "completed", "duration": 1800}
    old, new = pick(lead_statuses), pick(lead_statuses)
    return {
        "old_status_id": old["id"],
        "old_status_label": old["label"],
        "new_status_id": new["id"],
        "new_status_label": new["label"],
    }


def _opportunity(
    org: Organization,
    rng: Dice,
    lead: dict[str, Any],
    status: dict[str, Any],
    user: str,
    when: str,
    field_ids: dict[str, str],
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": org.ids.new("oppo_"),
        "lead_id": lead["id"],
        "status_id": status["id"],
        "value": rng.between(5, 500) * 10_000,
        "value_period": rng.pick(["one_time", "one_time", "monthly", "annual"]),
        "confidence": rng.pick([10, 25, 50, 75, 90]),
        "note": rng.pick([None, "Decision maker engaged.", "Waiting on legal."]),
        "date_won": when[:10] if status["type"] == "won" else None,
        "date_lost": when if status["type"] == "lost" else None,
        "user_id": user,
        "contact_id": rng.pick(lead["contact_ids"]),
        "integration_links": [],
        "attachments": [],
        "is_stalled": False,
        "stall_status": None,
        "suggested_action": None,
        "comment_summary": None,
        "lead_primary_email": None,
        "lead_primary_phone": None,
        "organization_id": org.id,
        "created_by": user,
        "created_by_name": None,
        "updated_by": user,
        "updated_by_name": None,
        "date_created": when,
        "date_updated": when,
    }
    if rng.random() < 0.7:
        record[field_ids["Deal Source"]] = rng.pick(["Inbound", "Outbound", "Partner"])
    if rng.random() < 0.3:
        record[field_ids["Competitor"]] = rng.pick(["Acme CRM", "Globex Sales"])
    if rng.random() < 0.5:
        record[field_ids["Contract Months"]] = rng.pick([12, 24, 36])
    derive(org, record)
    record["created_by_name"] = record["updated_by_name"] = record["user_name"]
    return record


def _task(
    org: Organization,
    rng: Dice,
    lead: dict[str, Any],
    user: str,
    names: dict[str, str | None],
    when: str,
    now: str,
) -> dict[str, Any]:
    kind = "lead" if rng.random() < 0.6 else rng.pick(OTHER_TASK_TYPES)
    day = when[:10]
    record: dict[str, Any] = {
        "id": org.ids.new("task_" if kind == "lead" else "noti_"),
        "_type": kind,
        "lead_id": lead["id"],
        "lead_name": lead["display_name"],
        "contact_id": None,
        "contact_name": None,
        "assigned_to": user,
        "assigned_to_name": names[user],
        "text": rng.pick(["Follow up", "Send proposal", "Call back", "Check in after demo"]),
        "date": day,
        "due_date": day,
        "is_complete": rng.random() < 0.4,
        "is_dateless": False,
        "view": "inbox",
        "object_type": None,
        "object_id": None,
        "priority": None,
        "resolution": None,
        "organization_id": org.id,
        "created_by": user,
        "created_by_name": names[user],
        "updated_by": user,
        "updated_by_name": names[user],
        "date_created": when,
        "date_updated": when,
    }
    record["view"] = view_of(record, now)
    return record
