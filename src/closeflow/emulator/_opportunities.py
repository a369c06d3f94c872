"""Close's write semantics for opportunities (§4.3).

Values are integers in minor units (cents); ``value_formatted``, the expected and annualized
values, the status and pipeline labels are derived on every write and stored, so lists read plain
dicts. Moving to a ``won`` status sets ``date_won`` to today when it is not set; moving to
``lost`` sets ``date_lost``. A status change also logs an ``OpportunityStatusChange`` activity,
as Close's UI history shows. Every write validates the whole payload first (nothing half-written),
bumps the lead's ``date_updated`` (without a lead event) and records an ``opportunity`` event.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from closeflow.emulator._activities import opportunity_status_change
from closeflow.emulator._custom_values import ValueContext, apply_custom_writes
from closeflow.emulator._errors import FieldErrors, field_error, not_found
from closeflow.emulator._events import WriteContext, changed_fields
from closeflow.emulator._ids import parse_datetime
from closeflow.emulator._org import Organization
from closeflow.emulator._records import create_lead

VALUE_PERIODS = ("one_time", "monthly", "annual")
_WRITABLE_TEXT = ("note",)


def format_money(cents: int | None, currency: str) -> str | None:
    if cents is None:
        return None
    amount = cents / 100
    text = f"{amount:,.0f}" if cents % 100 == 0 else f"{amount:,.2f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def derive(org: Organization, opportunity: dict[str, Any]) -> None:
    """Recompute the read-only fields from the writable ones."""
    status = _status(org, opportunity["status_id"])
    if status is not None:
        opportunity["status_label"] = opportunity["status_display_name"] = status["label"]
        opportunity["status_type"] = status["type"]
        opportunity["pipeline_id"] = status["pipeline_id"]
        opportunity["pipeline_name"] = status["pipeline_name"]
    value, confidence = opportunity["value"], opportunity["confidence"]
    yearly = {"one_time": 1, "monthly": 12, "annual": 1}[opportunity["value_period"]]
    opportunity["value_currency"] = org.currency
    opportunity["value_formatted"] = format_money(value, org.currency)
    opportunity["expected_value"] = None if value is None else round(value * confidence / 100)
    opportunity["annualized_value"] = None if value is None else value * yearly
    opportunity["annualized_expected_value"] = (
        None if value is None else round(value * yearly * confidence / 100)
    )
    opportunity["user_name"] = org.user_name(opportunity["user_id"])
    contact = org.contacts.get(opportunity.get("contact_id") or "")
    opportunity["contact_name"] = contact["display_name"] if contact else None
    lead = org.leads.get(opportunity["lead_id"])
    opportunity["lead_name"] = lead["display_name"] if lead else None


def _status(org: Organization, status_id: str | None) -> dict[str, Any] | None:
    for pipeline in org.pipelines:
        for status in pipeline["statuses"]:
            if status["id"] == status_id:
                return {**status, "pipeline_id": pipeline["id"], "pipeline_name": pipeline["name"]}
    return None


def create_opportunity(org: Organization, payload: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    errors = FieldErrors()
    lead_id = payload.get("lead_id")
    if lead_id is not None and lead_id not in org.leads:
        raise field_error("lead_id", f"Lead {lead_id!r} does not exist.")
    now = org.now()
    opportunity: dict[str, Any] = {
        "id": org.ids.new("oppo_"),
        "lead_id": lead_id,
        "status_id": None,
        "value": None,
        "value_period": "one_time",
        "confidence": 0,
        "note": None,
        "date_won": None,
        "date_lost": None,
        "user_id": context.user_id or org.owner_id,
        "contact_id": None,
        "integration_links": [],
        "attachments": [],
        "is_stalled": False,
        "stall_status": None,
        "suggested_action": None,
        "comment_summary": None,
        "lead_primary_email": None,
        "lead_primary_phone": None,
        "organization_id": org.id,
        "created_by": context.user_id,
        "created_by_name": org.user_name(context.user_id),
        "updated_by": context.user_id,
        "updated_by_name": org.user_name(context.user_id),
        "date_created": now,
        "date_updated": now,
    }
    if "status_id" not in payload and "status" not in payload:
        opportunity["status_id"] = _default_status(org, payload.get("pipeline_id"), errors)
    _apply(org, opportunity, payload, errors, previous_type=None)
    if errors.field_errors or errors.errors:
        raise errors
    if lead_id is None:
        # Close creates an "Untitled" lead for an opportunity without one (§4.3).
        opportunity["lead_id"] = create_lead(org, {"name": "Untitled"}, context)["id"]
    derive(org, opportunity)
    org.opportunities.add(opportunity)
    org.child_changed(context, "opportunity", "created", opportunity)
    return opportunity


def _default_status(org: Organization, pipeline_id: Any, errors: FieldErrors) -> str | None:
    for pipeline in org.pipelines:
        if pipeline_id in (None, pipeline["id"]) and pipeline["statuses"]:
            return str(pipeline["statuses"][0]["id"])
    if pipeline_id is not None:
        errors.field_errors["pipeline_id"] = f"Pipeline {pipeline_id!r} does not exist or has no statuses."
    else:
        errors.field_errors["status_id"] = "The organization has no opportunity statuses."
    return None


def update_opportunity(
    org: Organization, opportunity_id: str, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    current = org.opportunities.get(opportunity_id)
    if current is None:
        raise not_found()
    errors = FieldErrors()
    updated = copy.deepcopy(current)
    _apply(org, updated, payload, errors, previous_type=current["status_type"])
    if errors.field_errors or errors.errors:
        raise errors
    derive(org, updated)
    fields = changed_fields(current, updated)
    if not fields:
        return current
    updated["date_updated"] = org.now()
    updated["updated_by"] = context.user_id
    updated["updated_by_name"] = org.user_name(context.user_id)
    fields = changed_fields(current, updated)
    org.records["opportunity"][opportunity_id] = updated
    org.opportunities.touched()
    org.child_changed(context, "opportunity", "updated", updated, before=current, fields=fields)
    if current["status_id"] != updated["status_id"]:
        opportunity_status_change(org, current, updated, context)
    return updated


def delete_opportunity(org: Organization, opportunity_id: str, context: WriteContext) -> None:
    removed = org.opportunities.remove(opportunity_id)
    if removed is None:
        raise not_found()
    org.child_changed(context, "opportunity", "deleted", removed)


def _apply(
    org: Organization,
    opportunity: dict[str, Any],
    payload: dict[str, Any],
    errors: FieldErrors,
    *,
    previous_type: str | None,
) -> None:
    for key in _WRITABLE_TEXT:
        if key in payload:
            if payload[key] is not None and not isinstance(payload[key], str):
                errors.field_errors[key] = "Value must be of basestring type."
            else:
                opportunity[key] = payload[key]
    if "status_id" in payload or "status" in payload:
        _apply_status(org, opportunity, payload, errors)
    if "value" in payload:
        value = payload["value"]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value != int(value)
        ):
            errors.field_errors["value"] = "Value must be a whole number of cents (e.g. 50000 for $500)."
        else:
            opportunity["value"] = None if value is None else int(value)
    if "value_period" in payload:
        if payload["value_period"] not in VALUE_PERIODS:
            errors.field_errors["value_period"] = f"Must be one of: {', '.join(VALUE_PERIODS)}."
        else:
            opportunity["value_period"] = payload["value_period"]
    if "confidence" in payload:
        confidence = payload["confidence"]
        if isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100:
            errors.field_errors["confidence"] = "Must be an integer from 0 to 100."
        else:
            opportunity["confidence"] = confidence
    if "user_id" in payload:
        if payload["user_id"] not in org.users:
            errors.field_errors["user_id"] = (
                f"User {payload['user_id']!r} is not a member of this organization."
            )
        else:
            opportunity["user_id"] = payload["user_id"]
    lead = org.leads.get(opportunity.get("lead_id") or "")
    contact_ids = tuple(lead["contact_ids"]) if lead else ()
    if "contact_id" in payload:
        if payload["contact_id"] is not None and payload["contact_id"] not in contact_ids:
            errors.field_errors["contact_id"] = "Contact does not belong to this opportunity's lead."
        else:
            opportunity["contact_id"] = payload["contact_id"]
    if "date_won" in payload:
        _apply_date_won(opportunity, payload["date_won"], errors)
    apply_custom_writes(
        opportunity,
        payload,
        org.fields_for("opportunity"),
        ValueContext(org.users.values(), contact_ids),
        errors,
    )
    status = _status(org, opportunity["status_id"])
    new_type = status["type"] if status else None
    if new_type == "won" and opportunity["date_won"] is None:
        opportunity["date_won"] = datetime.fromtimestamp(org.clock.now(), UTC).date().isoformat()
    if new_type == "lost" and previous_type != "lost":
        opportunity["date_lost"] = org.now()
    elif new_type != "lost":
        opportunity["date_lost"] = None


def _apply_status(
    org: Organization, opportunity: dict[str, Any], payload: dict[str, Any], errors: FieldErrors
) -> None:
    if "status_id" in payload:
        if _status(org, payload["status_id"]) is None:
            errors.field_errors["status_id"] = f"Opportunity status {payload['status_id']!r} does not exist."
            return
        opportunity["status_id"] = payload["status_id"]
        return
    label = payload["status"]
    for status in org.opportunity_statuses():
        if isinstance(label, str) and status["label"].lower() == label.lower():
            opportunity["status_id"] = status["id"]
            return
    errors.field_errors["status"] = f"Opportunity status {label!r} does not exist."


def _apply_date_won(opportunity: dict[str, Any], value: Any, errors: FieldErrors) -> None:
    if value is None:
        opportunity["date_won"] = None
        return
    try:
        opportunity["date_won"] = parse_datetime(str(value)).date().isoformat()
    except ValueError:
        errors.field_errors["date_won"] = "Invalid date: use YYYY-MM-DD."
