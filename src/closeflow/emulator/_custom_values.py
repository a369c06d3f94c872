"""Custom-field values on leads and contacts: type checks and Close's write forms (§5).

A record holds one flat key per field, ``"custom.cf_<id>": value``. Writes may use that key,
``custom.cf_<id>.add`` / ``.remove`` on multi-value fields, ``null`` to unset, or the deprecated
forms keyed by field *name* (``"custom.Field Name"`` or a ``"custom": {...}`` dict). Every
failure lands in Close's ``field-errors`` under the key the client sent.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from closeflow.emulator._errors import FieldErrors
from closeflow.emulator._ids import parse_datetime

FIELD_TYPES = frozenset(
    {
        "text",
        "number",
        "date",
        "datetime",
        "choices",
        "user",
        "contact",
        "custom_object",
        "textarea",
        "hidden",
    }
)
# Close allows several values only on reference-like and choices fields (§5).
MULTI_VALUE_TYPES = frozenset({"user", "choices", "contact", "custom_object"})


@dataclass
class ValueContext:
    """What a value may refer to: the org's users and the contacts of the record's lead."""

    users: Iterable[dict[str, Any]]
    contact_ids: Collection[str] = field(default_factory=tuple)


def coerce_value(definition: dict[str, Any], value: Any, context: ValueContext) -> Any:
    """The stored form of ``value`` for this field; raises ``ValueError`` with Close-like wording."""
    if definition.get("accepts_multiple_values"):
        values = value if isinstance(value, list) else [value]
        out: list[Any] = []
        for item in values:
            coerced = _coerce_one(definition, item, context)
            if coerced not in out:
                out.append(coerced)
        return out
    if isinstance(value, list):
        raise ValueError("This field does not accept multiple values.")
    return _coerce_one(definition, value, context)


def _coerce_one(definition: dict[str, Any], value: Any, context: ValueContext) -> Any:
    kind = definition["type"]
    if kind in ("text", "textarea", "hidden"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("Value must be a string.")
        return str(value)
    if kind == "number":
        return _number(value)
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError("Invalid date. Use the YYYY-MM-DD format.")
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            raise ValueError("Invalid date. Use the YYYY-MM-DD format.") from None
    if kind == "datetime":
        return _datetime(value)
    if kind == "choices":
        choices = definition.get("choices") or []
        if value not in choices:
            raise ValueError(f"{value!r} is not one of the available choices.")
        return value
    if kind == "user":
        return _user_id(value, context)
    if kind == "contact":
        if value not in context.contact_ids:
            raise ValueError(f"{value!r} is not a contact of this lead.")
        return value
    if not isinstance(value, str):
        raise ValueError("Value must be an object id.")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("Value must be a number.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("Value must be a number.") from None
    else:
        raise ValueError("Value must be a number.")
    if not math.isfinite(number):  # inf/nan cannot be stored: JSON has no spelling for them
        raise ValueError("Value must be a finite number.")
    return int(number) if isinstance(value, str) and number.is_integer() and "." not in value else number


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Invalid datetime. Use an ISO 8601 date and time.")
    try:
        parsed = parse_datetime(value, keep_offset=True)  # Close keeps the offset it was given
    except ValueError:
        raise ValueError("Invalid datetime. Use an ISO 8601 date and time.") from None
    return parsed.isoformat()


def _user_id(value: Any, context: ValueContext) -> str:
    # Close accepts a user's id or exact full name on write and always answers with the id.
    for user in context.users:
        full_name = f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip()
        if value in (user["id"], full_name):
            return str(user["id"])
    raise ValueError(f"{value!r} is not a user of this organization.")


def apply_custom_writes(
    record: dict[str, Any],
    payload: dict[str, Any],
    fields: Iterable[dict[str, Any]],
    context: ValueContext,
    errors: FieldErrors,
) -> set[str]:
    """Apply every custom-field key of ``payload`` to ``record``; returns the ``custom.<id>`` keys touched."""
    by_id = {definition["id"]: definition for definition in fields}
    by_name = {definition["name"]: definition for definition in by_id.values()}
    touched: set[str] = set()

    def write(client_key: str, definition: dict[str, Any] | None, value: Any, op: str = "set") -> None:
        if definition is None:
            errors.field_errors[client_key] = "Unknown custom field."
            return
        key = f"custom.{definition['id']}"
        touched.add(key)
        if op == "set" and value is None:
            record.pop(key, None)
            return
        try:
            coerced = coerce_value(definition, value, context)
        except ValueError as exc:
            errors.field_errors[client_key] = str(exc)
            return
        if op == "set":
            record[key] = coerced
            return
        if not definition.get("accepts_multiple_values"):
            errors.field_errors[client_key] = "This field does not accept multiple values."
            return
        current = list(record.get(key) or [])
        if op == "add":
            current += [item for item in coerced if item not in current]
        else:
            current = [item for item in current if item not in coerced]
        if current:
            record[key] = current
        else:
            record.pop(key, None)

    for client_key, value in payload.items():
        if client_key == "custom":
            if not isinstance(value, dict):
                errors.field_errors["custom"] = "Expected an object keyed by custom field name."
                continue
            for name, item in value.items():
                write(f"custom.{name}", by_id.get(name) or by_name.get(name), item)
            continue
        if not client_key.startswith("custom."):
            continue
        rest = client_key[len("custom.") :]
        for op in ("add", "remove"):
            base = rest.removesuffix("." + op)
            if base != rest and (base in by_id or base in by_name):
                write(client_key, by_id.get(base) or by_name.get(base), value, op)
                break
        else:
            write(client_key, by_id.get(rest) or by_name.get(rest), value)
    return touched


def legacy_custom(record: dict[str, Any], fields: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The deprecated ``custom`` dict keyed by field name, as 2023 lead responses still carry it."""
    out = {}
    for definition in fields:
        key = f"custom.{definition['id']}"
        if key in record:
            out[definition["name"]] = record[key]
    return out
