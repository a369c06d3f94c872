"""Comparing Close values field by field: what counts as "already equal" (so nothing is written).

Close answers with more than it was sent (``is_unsubscribed`` on emails, ``phone_formatted`` and
``country`` on phones, ids and dates on records) and in its own spelling (E.164 phones, ISO dates
with offsets). Arrays are compared on the keys closeflow sends, values on normalised forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from closeflow.actions._normalise import email_key, phone_key, text_key, url_key
from closeflow.actions._specs import ADDRESS_PARTS
from closeflow.close import CustomField

ARRAY_KEYS: dict[str, tuple[str, ...]] = {
    "emails": ("email", "type"),
    "phones": ("phone", "type"),
    "urls": ("url", "type"),
    "addresses": ADDRESS_PARTS,
}
_ADDRESS_IDENTITY = ("address_1", "address_2", "city", "state", "zipcode", "country")


def _address_key(item: dict[str, Any]) -> str | None:
    parts = [text_key(item.get(part)) or "" for part in _ADDRESS_IDENTITY]
    return "|".join(parts) if any(parts) else None


_IDENTITY: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "emails": lambda item: email_key(item.get("email")),
    "phones": lambda item: phone_key(item.get("phone")),
    "urls": lambda item: url_key(item.get("url")),
    "addresses": _address_key,
}


def project(kind: str, items: Any) -> list[dict[str, Any]]:
    """The array as closeflow would send it: only the writable keys of each item."""
    keys = ARRAY_KEYS[kind]
    if not isinstance(items, list):
        return []
    return [{k: item.get(k) for k in keys if k in item} for item in items if isinstance(item, dict)]


def dedupe(kind: str, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = _IDENTITY[kind](item)
        if key is None or key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out


def array_change(
    kind: str, current: Any, incoming: list[dict[str, Any]], policy: str
) -> list[dict[str, Any]] | None:
    """The whole array to send (Close replaces arrays on PUT), or None when nothing would change.

    ``merge`` appends the incoming items whose value is not there yet and keeps every existing
    one; ``replace`` sends exactly the incoming items.
    """
    have = project(kind, current)
    identity = _IDENTITY[kind]
    if policy == "merge":
        present = {identity(item) for item in have}
        new = [item for item in dedupe(kind, incoming) if identity(item) not in present]
        return have + new if new else None
    wanted = dedupe(kind, incoming)

    def shape(items: list[dict[str, Any]]) -> list[tuple[str | None, Any]]:
        return [
            (identity(item), item.get("type") if kind != "addresses" else item.get("label")) for item in items
        ]

    return None if shape(wanted) == shape(have) else wanted


# -- custom-field values -------------------------------------------------------------------------


def scalar_key(field: CustomField, value: Any, *, fold: bool = True) -> str | None:
    """One custom value in a comparable form (numbers as numbers, datetimes in UTC).

    ``fold`` (for matching) ignores case and runs of spaces in text, as people type it; a diff
    compares text exactly (stripped only), since Close stores what it is sent and a case fix is
    a change the user asked for.
    """
    if value is None:
        return None
    text = text_key if fold else _stripped
    if field.type == "number" and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return text(value)
        return repr(int(number)) if number.is_integer() else repr(number)
    if field.type == "datetime":
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return text(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    if field.type == "date":
        return str(value).strip()[:10]
    if field.type in ("user", "contact", "custom_object"):
        return str(value).strip()
    return text(value)


def _stripped(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def _keys(field: CustomField, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [k for k in (scalar_key(field, item, fold=False) for item in items) if k is not None]


def custom_change(field: CustomField, current: Any, incoming: Any, policy: str) -> tuple[bool, Any]:
    """``(changed, value to send)`` for one custom field; multi-value fields follow the array policy."""
    if incoming is None:
        return (current not in (None, [], "")), None
    if field.accepts_multiple_values:
        have = current if isinstance(current, list) else ([] if current is None else [current])
        if policy == "merge":
            known = set(_keys(field, have))
            new = [item for item in incoming if scalar_key(field, item, fold=False) not in known]
            return (bool(new), have + new)
        return (set(_keys(field, have)) != set(_keys(field, incoming)), incoming)
    return (_keys(field, current) != _keys(field, incoming), incoming)


def text_changed(current: Any, incoming: Any) -> bool:
    """Standard text fields: Close keeps text as sent, so case matters; None and "" are the same."""
    return (current or None) != (incoming or None)
