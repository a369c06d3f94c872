"""Close's write semantics for tasks (§4.4).

Only ``lead`` and ``outgoing_call`` tasks can be created (other types come from Close itself:
missed calls, incoming email, opportunity due dates …); ``_type`` defaults to ``lead`` when
omitted (unconfirmed, §13.6). Lead tasks get ``task_`` ids, every other type ``noti_`` (tasks
are "notifications" inside Close). A PUT may change ``assigned_to``, ``date`` and
``is_complete`` on every type and ``text`` on lead tasks only; other keys are ignored.
Completing a lead task logs a ``TaskCompleted`` activity. ``view`` (inbox/future/archive) is
computed when the task is written, not re-evaluated as time passes.
"""

from __future__ import annotations

import copy
from typing import Any

from closeflow.emulator._activities import task_completed
from closeflow.emulator._errors import FieldErrors, field_error, not_found
from closeflow.emulator._events import WriteContext, changed_fields
from closeflow.emulator._ids import iso_utc, parse_datetime
from closeflow.emulator._object_types import CREATABLE_TASK_TYPES, event_object_type
from closeflow.emulator._org import Organization


def task_date(value: Any) -> str | None:
    """Close keeps a date-only ``date`` as given and normalises a date-time to UTC; ValueError otherwise."""
    if value is None:
        return None
    text = str(value).strip()
    if len(text) == 10:
        return parse_datetime(text).date().isoformat()
    return iso_utc(parse_datetime(text).timestamp())


def date_sort_value(task: dict[str, Any]) -> str:
    value = task.get("date") or ""
    return value + "T00:00:00.000000+00:00" if len(value) == 10 else value


def view_of(task: dict[str, Any], now: str) -> str:
    if task["is_complete"]:
        return "archive"
    return "future" if date_sort_value(task) > now else "inbox"


def create_task(org: Organization, payload: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    errors = FieldErrors()
    kind = payload.get("_type", "lead")
    if kind not in CREATABLE_TASK_TYPES:
        raise field_error(
            "_type", f"Only {' and '.join(CREATABLE_TASK_TYPES)} tasks can be created; got {kind!r}."
        )
    lead_id = payload.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise field_error("lead_id", "This field is required.")
    lead = org.leads.get(lead_id)
    if lead is None:
        raise field_error("lead_id", f"Lead {lead_id!r} does not exist.")
    now = org.now()
    task: dict[str, Any] = {
        "id": org.ids.new("task_" if kind == "lead" else "noti_"),
        "_type": kind,
        "lead_id": lead_id,
        "lead_name": lead["display_name"],
        "contact_id": None,
        "contact_name": None,
        "assigned_to": context.user_id or org.owner_id,
        "assigned_to_name": None,
        "text": "",
        "date": None,
        "due_date": None,
        "is_complete": False,
        "is_dateless": True,
        "view": "inbox",
        "object_type": None,
        "object_id": None,
        "priority": None,
        "resolution": None,
        "organization_id": org.id,
        "created_by": context.user_id,
        "created_by_name": org.user_name(context.user_id),
        "updated_by": context.user_id,
        "updated_by_name": org.user_name(context.user_id),
        "date_created": now,
        "date_updated": now,
    }
    if kind == "lead" and not payload.get("text"):
        errors.field_errors["text"] = "This field is required for lead tasks."
    if "contact_id" in payload:
        if payload["contact_id"] is not None and payload["contact_id"] not in lead["contact_ids"]:
            errors.field_errors["contact_id"] = "Contact does not belong to this lead."
        else:
            task["contact_id"] = payload["contact_id"]
    if "text" in payload:
        task["text"] = payload["text"]
    _apply_common(org, task, payload, errors)
    if errors.field_errors:
        raise errors
    _derive(org, task, now)
    org.tasks.add(task)
    org.child_changed(context, event_object_type("task", task), "created", task)
    return task


def _apply_common(
    org: Organization, task: dict[str, Any], payload: dict[str, Any], errors: FieldErrors
) -> None:
    if "assigned_to" in payload:
        if payload["assigned_to"] not in org.users:
            errors.field_errors["assigned_to"] = (
                f"User {payload['assigned_to']!r} is not a member of this organization."
            )
        else:
            task["assigned_to"] = payload["assigned_to"]
    for key in ("date", "due_date"):
        if key in payload:
            try:
                task["date"] = task_date(payload[key])
            except ValueError:
                errors.field_errors[key] = "Invalid date: use YYYY-MM-DD or an ISO 8601 date-time."
    if "is_complete" in payload:
        if not isinstance(payload["is_complete"], bool):
            errors.field_errors["is_complete"] = "Must be true or false."
        else:
            task["is_complete"] = payload["is_complete"]


def _derive(org: Organization, task: dict[str, Any], now: str) -> None:
    task["due_date"] = task["date"]
    task["is_dateless"] = task["date"] is None
    task["assigned_to_name"] = org.user_name(task["assigned_to"])
    contact = org.contacts.get(task.get("contact_id") or "")
    task["contact_name"] = contact["display_name"] if contact else None
    task["view"] = view_of(task, now)


def update_task(
    org: Organization, task_id: str, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    current = org.tasks.get(task_id)
    if current is None:
        raise not_found()
    errors = FieldErrors()
    updated = copy.deepcopy(current)
    if "text" in payload:
        if current["_type"] != "lead":
            errors.field_errors["text"] = "Only lead tasks have editable text."
        else:
            updated["text"] = payload["text"]
    _apply_common(org, updated, payload, errors)
    if errors.field_errors:
        raise errors
    now = org.now()
    _derive(org, updated, now)
    if not changed_fields(current, updated):
        return current
    updated["date_updated"] = now
    updated["updated_by"] = context.user_id
    updated["updated_by_name"] = org.user_name(context.user_id)
    fields = changed_fields(current, updated)
    org.records["task"][task_id] = updated
    org.tasks.touched()
    org.child_changed(
        context, event_object_type("task", updated), "updated", updated, before=current, fields=fields
    )
    if updated["_type"] == "lead" and updated["is_complete"] and not current["is_complete"]:
        task_completed(org, updated, context)
    return updated


def delete_task(org: Organization, task_id: str, context: WriteContext) -> None:
    removed = org.tasks.remove(task_id)
    if removed is None:
        raise not_found()
    org.child_changed(context, event_object_type("task", removed), "deleted", removed)
