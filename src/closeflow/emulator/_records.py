"""Close's write semantics for leads and contacts (§4.1, §4.2, §5).

Every write validates the whole payload first and changes nothing if any field is bad, so a
400 never leaves a half-written lead. PUT is partial (only sent keys change) but replaces whole
arrays (``emails``, ``phones``, ``urls``, ``addresses``). Each mutation records events (§7.1):
a contact joining or leaving a lead is a ``lead.updated`` (membership change); editing an
existing contact bumps the lead's ``date_updated`` without a lead event, as Close does.
A new lead gets a ``Created`` activity (source ``api``) and a status change a ``LeadStatusChange``
activity, each with its ``activity.*`` ``created`` event after the lead's own events (§4.5).
"""

from __future__ import annotations

import copy
from typing import Any

from closeflow.emulator._activities import lead_created, lead_status_change
from closeflow.emulator._contact_info import (
    normalize_addresses,
    normalize_emails,
    normalize_phones,
    normalize_urls,
)
from closeflow.emulator._custom_values import ValueContext, apply_custom_writes, legacy_custom
from closeflow.emulator._errors import FieldErrors, field_error, not_found
from closeflow.emulator._events import WriteContext, changed_fields
from closeflow.emulator._ids import iso_utc, parse_datetime
from closeflow.emulator._org import Organization

HTML_URL = "https://app.close.com/lead/{}/"


# -- leads ---------------------------------------------------------------------------------------


def create_lead(org: Organization, payload: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    errors = FieldErrors()
    now = org.now()
    lead_id = org.ids.new("lead_")
    lead: dict[str, Any] = {
        "id": lead_id,
        "name": None,
        "display_name": "",
        "description": None,
        "url": None,
        "status_id": None,
        "status_label": None,
        "addresses": [],
        "contact_ids": [],
        "opportunities": [],
        "tasks": [],
        "integration_links": [],
        "html_url": HTML_URL.format(lead_id),
        "organization_id": org.id,
        "created_by": context.user_id,
        "created_by_name": org.user_name(context.user_id),
        "updated_by": context.user_id,
        "updated_by_name": org.user_name(context.user_id),
        "date_created": _date_created(payload, now, errors),
        "date_updated": now,
    }
    default_status = org.lead_statuses[0] if org.lead_statuses else None
    _apply_lead_fields(org, lead, payload, errors, default_status=default_status)
    contacts = []
    nested = payload.get("contacts") or []
    if not isinstance(nested, list):
        errors.field_errors["contacts"] = "Expected a list of contacts."
        nested = []
    for index, contact_payload in enumerate(nested):
        if not isinstance(contact_payload, dict):
            errors.field_errors[f"contacts.{index}"] = "Expected an object."
            continue
        contacts.append(
            _new_contact(org, contact_payload, lead_id, context, errors, where=f"contacts.{index}.")
        )
    if errors.field_errors or errors.errors:
        raise errors
    for contact in contacts:
        contact["date_created"] = contact["date_updated"] = (
            lead["date_created"] if "date_created" in payload else now
        )
        lead["contact_ids"].append(contact["id"])
    _refresh_display_name(org, lead, contacts)
    org.add("lead", lead)
    for contact in contacts:
        org.add("contact", contact)
    org.record_event(
        context,
        object_type="lead",
        object_id=lead_id,
        lead_id=lead_id,
        action="created",
        data=lead_event_data(org, lead),
    )
    for contact in contacts:
        org.record_event(
            context,
            object_type="contact",
            object_id=contact["id"],
            lead_id=lead_id,
            action="created",
            data=contact,
        )
    lead_created(org, lead, context)
    return lead


def update_lead(
    org: Organization, lead_id: str, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    lead = org.leads.get(lead_id)
    if lead is None:
        raise not_found()
    errors = FieldErrors()
    updated = copy.deepcopy(lead)
    _apply_lead_fields(org, updated, payload, errors, default_status=None)
    if errors.field_errors or errors.errors:
        raise errors
    # Close ignores nested `contacts` on PUT (they are edited through /contact/).
    _refresh_display_name(
        org, updated, [org.contacts[c] for c in updated["contact_ids"] if c in org.contacts]
    )
    if changed_fields(lead, updated):
        _stamp(org, updated, context)
        _commit_update(org, "lead", lead, updated, context, lead_id)
        if lead["status_id"] != updated["status_id"]:
            lead_status_change(org, lead, updated, context)
    return org.leads[lead_id]


def delete_lead(org: Organization, lead_id: str, context: WriteContext) -> None:
    lead = org.leads.get(lead_id)
    if lead is None:
        raise not_found()
    # Deleting a lead deletes its children, each with its own `deleted` event (§4.1, §7.1):
    # activities, tasks and opportunities first, then the contacts, then the lead.
    org.delete_children(lead_id, context)
    for contact_id in list(lead["contact_ids"]):
        contact = org.remove("contact", contact_id)
        if contact is not None:
            org.record_event(
                context,
                object_type="contact",
                object_id=contact_id,
                lead_id=lead_id,
                action="deleted",
                data=None,
                previous_data=contact,
            )
    org.remove("lead", lead_id)
    org.record_event(
        context,
        object_type="lead",
        object_id=lead_id,
        lead_id=lead_id,
        action="deleted",
        data=None,
        previous_data=lead_event_data(org, lead),
    )


def _apply_lead_fields(
    org: Organization,
    lead: dict[str, Any],
    payload: dict[str, Any],
    errors: FieldErrors,
    *,
    default_status: dict[str, Any] | None,
) -> None:
    for key in ("name", "description", "url"):
        if key in payload:
            lead[key] = _text(payload[key], key, errors)
    status = _resolve_status(org, payload, errors) or (default_status if lead["status_id"] is None else None)
    if status is not None:
        lead["status_id"], lead["status_label"] = status["id"], status["label"]
    if "addresses" in payload:
        lead["addresses"] = normalize_addresses(payload["addresses"], "addresses", errors)
    users = org.users.values()
    apply_custom_writes(
        lead, payload, org.fields_for("lead"), ValueContext(users, tuple(lead["contact_ids"])), errors
    )


def _resolve_status(org: Organization, payload: dict[str, Any], errors: FieldErrors) -> dict[str, Any] | None:
    if "status_id" in payload:
        status = org.find_lead_status(status_id=payload["status_id"])
        if status is None:
            errors.field_errors["status_id"] = "Lead status does not exist."
        return status
    if "status" in payload:
        label = payload["status"]
        status = org.find_lead_status(label=label) if isinstance(label, str) else None
        if status is None:
            errors.field_errors["status"] = f"Lead status {label!r} does not exist."
        return status
    return None


def _refresh_display_name(org: Organization, lead: dict[str, Any], contacts: list[dict[str, Any]]) -> None:
    # Close falls back to a contact's name when the lead itself has none.
    fallback = next((c["display_name"] for c in contacts if c.get("display_name")), "")
    lead["display_name"] = lead.get("name") or fallback


def lead_event_data(org: Organization, lead: dict[str, Any]) -> dict[str, Any]:
    return {**lead, "custom": legacy_custom(lead, org.fields_for("lead"))}


def render_lead(org: Organization, lead: dict[str, Any]) -> dict[str, Any]:
    """The lead as ``GET /lead/{id}/`` answers: nested contacts and the legacy ``custom`` dict added."""
    contacts = [render_contact(org, org.contacts[cid]) for cid in lead["contact_ids"] if cid in org.contacts]
    return {**lead, "contacts": contacts, "custom": legacy_custom(lead, org.fields_for("lead"))}


# -- contacts ------------------------------------------------------------------------------------


def create_contact(org: Organization, payload: dict[str, Any], context: WriteContext) -> dict[str, Any]:
    errors = FieldErrors()
    lead_id = payload.get("lead_id")
    lead = org.leads.get(lead_id) if isinstance(lead_id, str) else None
    if lead_id is not None and lead is None:
        raise field_error("lead_id", "Lead does not exist.")
    contact = _new_contact(org, payload, lead_id or "", context, errors, where="")
    if errors.field_errors or errors.errors:
        raise errors
    if lead is None:
        # Close no longer refuses a contact without a lead: it creates one named after it (§4.2).
        lead = create_lead(org, {"name": contact["display_name"] or None}, context)
        contact["lead_id"] = lead["id"]
    org.add("contact", contact)
    _join_lead(org, lead, contact, context)
    org.record_event(
        context,
        object_type="contact",
        object_id=contact["id"],
        lead_id=lead["id"],
        action="created",
        data=contact,
    )
    return contact


def update_contact(
    org: Organization, contact_id: str, payload: dict[str, Any], context: WriteContext
) -> dict[str, Any]:
    contact = org.contacts.get(contact_id)
    if contact is None:
        raise not_found()
    errors = FieldErrors()
    updated = copy.deepcopy(contact)
    _apply_contact_fields(org, updated, payload, errors, where="")
    if errors.field_errors or errors.errors:
        raise errors
    if changed_fields(contact, updated):
        _stamp(org, updated, context)
        _commit_update(org, "contact", contact, updated, context, contact["lead_id"])
        lead = org.leads.get(contact["lead_id"])
        if lead is not None:
            _stamp(org, lead, context)
            _refresh_display_name(
                org, lead, [org.contacts[c] for c in lead["contact_ids"] if c in org.contacts]
            )
            org.touched()
    return org.contacts[contact_id]


def delete_contact(org: Organization, contact_id: str, context: WriteContext) -> None:
    contact = org.remove("contact", contact_id)
    if contact is None:
        raise not_found()
    lead = org.leads.get(contact["lead_id"])
    org.record_event(
        context,
        object_type="contact",
        object_id=contact_id,
        lead_id=contact["lead_id"],
        action="deleted",
        data=None,
        previous_data=contact,
    )
    if lead is not None:
        before = copy.deepcopy(lead)
        lead["contact_ids"].remove(contact_id)
        _refresh_display_name(org, lead, [org.contacts[c] for c in lead["contact_ids"] if c in org.contacts])
        _stamp(org, lead, context)
        _lead_membership_event(org, before, lead, context)


def render_contact(org: Organization, contact: dict[str, Any]) -> dict[str, Any]:
    return dict(contact)


def _new_contact(
    org: Organization,
    payload: dict[str, Any],
    lead_id: str,
    context: WriteContext,
    errors: FieldErrors,
    *,
    where: str,
) -> dict[str, Any]:
    now = org.now()
    contact: dict[str, Any] = {
        "id": org.ids.new("cont_"),
        "lead_id": lead_id,
        "organization_id": org.id,
        "name": None,
        "title": None,
        "display_name": "",
        "emails": [],
        "phones": [],
        "urls": [],
        "integration_links": [],
        "created_by": context.user_id,
        "updated_by": context.user_id,
        "date_created": now,
        "date_updated": now,
    }
    _apply_contact_fields(org, contact, payload, errors, where=where)
    return contact


def _apply_contact_fields(
    org: Organization, contact: dict[str, Any], payload: dict[str, Any], errors: FieldErrors, *, where: str
) -> None:
    for key in ("name", "title"):
        if key in payload:
            contact[key] = _text(payload[key], where + key, errors)
    if "emails" in payload:
        contact["emails"] = normalize_emails(payload["emails"], where + "emails", errors)
    if "phones" in payload:
        contact["phones"] = normalize_phones(payload["phones"], where + "phones", errors)
    if "urls" in payload:
        contact["urls"] = normalize_urls(payload["urls"], where + "urls", errors)
    custom_payload = {k: v for k, v in payload.items() if k == "custom" or k.startswith("custom.")}
    if custom_payload:
        lead = org.leads.get(contact["lead_id"])
        siblings = tuple(lead["contact_ids"]) if lead else ()
        nested_errors = FieldErrors()
        apply_custom_writes(
            contact,
            custom_payload,
            org.fields_for("contact"),
            ValueContext(org.users.values(), siblings),
            nested_errors,
        )
        errors.field_errors.update({where + k: v for k, v in nested_errors.field_errors.items()})
    first_email = contact["emails"][0]["email"] if contact["emails"] else ""
    contact["display_name"] = contact.get("name") or first_email


def _join_lead(
    org: Organization, lead: dict[str, Any], contact: dict[str, Any], context: WriteContext
) -> None:
    if contact["id"] in lead["contact_ids"]:
        return
    before = copy.deepcopy(lead)
    lead["contact_ids"].append(contact["id"])
    _refresh_display_name(org, lead, [org.contacts[c] for c in lead["contact_ids"] if c in org.contacts])
    _stamp(org, lead, context)
    _lead_membership_event(org, before, lead, context)


def _lead_membership_event(
    org: Organization, before: dict[str, Any], lead: dict[str, Any], context: WriteContext
) -> None:
    org.touched()
    fields = changed_fields(before, lead)
    org.record_event(
        context,
        object_type="lead",
        object_id=lead["id"],
        lead_id=lead["id"],
        action="updated",
        data=lead_event_data(org, lead),
        previous_data={k: before.get(k) for k in fields},
        fields=fields,
    )


# -- shared helpers ------------------------------------------------------------------------------


def _commit_update(
    org: Organization,
    object_type: str,
    before: dict[str, Any],
    after: dict[str, Any],
    context: WriteContext,
    lead_id: str,
) -> None:
    fields = changed_fields(before, after)
    org.records[object_type][after["id"]] = after
    org.touched()
    data = lead_event_data(org, after) if object_type == "lead" else after
    org.record_event(
        context,
        object_type=object_type,
        object_id=after["id"],
        lead_id=lead_id,
        action="updated",
        data=data,
        previous_data={k: before.get(k) for k in fields},
        fields=fields,
    )


def _stamp(org: Organization, record: dict[str, Any], context: WriteContext) -> None:
    record["date_updated"] = org.now()
    record["updated_by"] = context.user_id
    if "updated_by_name" in record:
        record["updated_by_name"] = org.user_name(context.user_id)


def _text(value: Any, key: str, errors: FieldErrors) -> str | None:
    if value is None or isinstance(value, str):
        return value
    errors.field_errors[key] = "Value must be of basestring type."
    return None


def _date_created(payload: dict[str, Any], now: str, errors: FieldErrors) -> str:
    # Importers may backdate leads (Close's import scripts pass date_created on create).
    if "date_created" not in payload:
        return now
    value = payload["date_created"]
    try:
        return iso_utc(parse_datetime(str(value)).timestamp())
    except ValueError:
        errors.field_errors["date_created"] = "Invalid datetime."
        return now
