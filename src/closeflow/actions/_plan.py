"""What to send: a create payload, or an update's changed keys and field-level diff.

Close's PUT is partial but replaces whole arrays (§4.2), so an update sends only the keys that
change, arrays whole. A record whose mapped values already equal Close's is not written at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closeflow.actions._mapping import Prepared
from closeflow.actions._outcome import Change
from closeflow.actions._values import ARRAY_KEYS, array_change, custom_change, dedupe, project, text_changed
from closeflow.close import CustomField, value_key


def create_payload(object_type: str, prepared: Prepared, lead_id: str | None = None) -> dict[str, Any]:
    """The new record: its mapped fields plus every value it was matched on, so that the next run
    (and the next record of this one) finds it instead of creating another."""
    payload: dict[str, Any] = {}
    for key, value in prepared.fields.items():
        if key in ARRAY_KEYS:
            payload[key] = dedupe(key, value)
        elif value is not None:
            payload[key] = value
    for key, value in prepared.match_fields.items():
        if key in ARRAY_KEYS:
            payload[key] = dedupe(key, [*payload.get(key, []), *value])
        else:
            payload.setdefault(key, value)
    if object_type == "contact" and (lead_id or prepared.lead_id):
        payload["lead_id"] = lead_id or prepared.lead_id
    return payload


def create_changes(payload: Mapping[str, Any], custom_fields: Mapping[str, CustomField]) -> list[Change]:
    return [Change(field_label(key, custom_fields), None, value) for key, value in payload.items()]


def field_label(key: str, custom_fields: Mapping[str, CustomField]) -> str:
    """How a diff names a field: ``custom.cf_…`` keys by the custom field's name, as users wrote them."""
    field = custom_fields.get(key)
    return f"custom.{field.name}" if field is not None else key


def update_payload(
    prepared: Prepared,
    current: Mapping[str, Any],
    arrays: str,
    custom_fields: Mapping[str, CustomField],
) -> tuple[dict[str, Any], list[Change]]:
    """The keys to PUT (only those that change) and the diff; both empty when nothing changes."""
    payload: dict[str, Any] = {}
    changes: list[Change] = []
    for key, value in prepared.fields.items():
        before = current.get(key)
        if key in ARRAY_KEYS:
            after = array_change(key, before, value, arrays)
            if after is not None:
                payload[key] = after
                changes.append(Change(key, project(key, before), after))
        elif key.startswith("custom."):
            changed, after = custom_change(custom_fields[key], before, value, arrays)
            if changed:
                payload[key] = after
                changes.append(Change(field_label(key, custom_fields), before, after))
        elif text_changed(before, value):
            payload[key] = value
            changes.append(Change(key, before, value))
    return payload, changes


def fields_for_diff(object_type: str, prepared_keys: set[str], custom_fields: list[CustomField]) -> list[str]:
    """The fields a lookup must return so records can be diffed (and ``first`` chosen, leads checked)."""
    base = ["id", "date_created"]
    if object_type == "contact":
        base.append("lead_id")
    standard = sorted(k for k in prepared_keys if not k.startswith("custom."))
    return [*base, *standard, *(value_key(f) for f in custom_fields)]
