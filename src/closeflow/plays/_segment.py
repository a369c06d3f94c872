"""Whether a stored record is in a play's segment, and whether a change triggers a play.

Triggers are decided locally, over the records the sync stored, with the same ``--where`` language
as search (``closeflow.close.parse_where``), so a cycle costs no Close requests. Semantics follow
Close's search where they can be reproduced on one record: text ``=`` is case-insensitive,
``contains`` / ``starts_with`` look at whole text and at each word, a multi-valued field (a
contact's emails, a lead's addresses, a multiple-choice custom field) matches when any of its
values does and ``!=`` when none does, dates compare as dates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from closeflow.close import And, Condition, Filter, FilterError, Not, Or
from closeflow.plays._expressions import Evaluator

if TYPE_CHECKING:
    from closeflow.plays._spec import Trigger
    from closeflow.sync import Change

__all__ = ["change_context", "field_values", "named_custom_fields", "segment_matches", "trigger_matches"]

# Filter words that name a list inside the stored record: field -> (array key, item key).
_ARRAYS: dict[str, tuple[str, str]] = {
    "email": ("emails", "email"),
    "phone": ("phones", "phone"),
    "contact_url": ("urls", "url"),
}
_ALIASES = {"status": "status_label"}
_WORD = re.compile(r"\w+")


def segment_matches(
    filter: Filter | None, record: Mapping[str, Any], custom_names: Mapping[str, str]
) -> bool:
    """Whether ``record`` (a stored Close record) satisfies ``filter``; no filter matches everything.

    ``custom_names`` maps a custom field's name to the record key holding it (``custom.cf_…``).
    """
    if filter is None:
        return True
    if isinstance(filter, And):
        return all(segment_matches(item, record, custom_names) for item in filter.items)
    if isinstance(filter, Or):
        return any(segment_matches(item, record, custom_names) for item in filter.items)
    if isinstance(filter, Not):
        return not segment_matches(filter.item, record, custom_names)
    return _condition(filter, field_values(filter.field, record, custom_names))


def field_values(field: str, record: Mapping[str, Any], custom_names: Mapping[str, str]) -> list[Any]:
    """The values a filter's ``field`` has in ``record`` (empty when absent or null)."""
    if field.startswith("custom."):
        name = field.removeprefix("custom.")
        key = name if name.startswith("cf_") else custom_names.get(name)
        if key is None:
            known = ", ".join(sorted(custom_names)) or "none synced yet"
            raise FilterError(f'no custom field named "{name}" (known: {known})')
        return _flatten(record.get(key if key.startswith("custom.") else f"custom.{key}"))
    field = _ALIASES.get(field, field)
    if field == "status_label" and "status_label" not in record:
        field = "status_id"
    if field in _ARRAYS and field not in record:
        array, item = _ARRAYS[field]
        return _flatten([entry.get(item) for entry in record.get(array) or [] if isinstance(entry, dict)])
    if field == "url" and isinstance(record.get("urls"), list):  # contacts: url means their urls
        return _flatten([entry.get("url") for entry in record["urls"] if isinstance(entry, dict)])
    if field.startswith("address."):
        part = field.removeprefix("address.")
        return _flatten(
            [entry.get(part) for entry in record.get("addresses") or [] if isinstance(entry, dict)]
        )
    values = _flatten(record.get(field))
    if field in ("created_by", "updated_by") and record.get(f"{field}_name"):
        values.append(record[f"{field}_name"])  # users are written by id or by name
    return values


def named_custom_fields(record: Mapping[str, Any], custom_names: Mapping[str, str]) -> dict[str, Any]:
    """``record`` plus ``custom.<Name>`` keys beside its ``custom.cf_…`` ones, for templates
    (``record['custom.Tier']``)."""
    named = dict(record)
    for name, key in custom_names.items():
        stored = key if key.startswith("custom.") else f"custom.{key}"
        if stored in record:
            named.setdefault(f"custom.{name}", record[stored])
    return named


def change_context(change: Change, record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The change as plain data, with ``before`` and ``after`` as whole records.

    The change log keeps only the changed keys of an update; given the stored record after it,
    the unchanged keys are filled in on both sides, so ``change.before.status_label`` works whether
    or not the status changed.
    """
    data = change.as_dict()
    if change.kind == "updated" and record is not None:
        data["after"] = {**record, **(change.after or {})}
        data["before"] = {**record, **(change.before or {})}
    return data


def trigger_matches(
    trigger: Trigger,
    change: Change,
    evaluator: Evaluator,
    vars: Mapping[str, Any],
    custom_names: Mapping[str, str],
    *,
    record: Mapping[str, Any] | None = None,
) -> bool:
    """Whether ``change`` starts a run of a play with ``trigger``.

    ``record`` is the stored record after the change; pass it for ``updated`` changes (the change
    log holds only the changed keys). Added and removed changes carry the whole record already.
    """
    if change.model != trigger.model or change.kind not in trigger.on:
        return False
    if trigger.changed:
        changed = set(change.changed_fields)
        wanted = {_record_key(name, custom_names) for name in trigger.changed}
        if not changed & wanted:
            return False
    data = change_context(change, record)
    subject = data["before"] if change.kind == "removed" else data["after"]
    subject = dict(subject or {})
    if not segment_matches(trigger.filter, subject, custom_names):
        return False
    if trigger.when is None:
        return True
    context = {"record": named_custom_fields(subject, custom_names), "change": data, "vars": dict(vars)}
    return evaluator.truthy(trigger.when, context)


def _record_key(name: str, custom_names: Mapping[str, str]) -> str:
    if name.startswith("custom.") and not name.startswith("custom.cf_"):
        key = custom_names.get(name.removeprefix("custom."))
        if key is not None:
            return key if key.startswith("custom.") else f"custom.{key}"
    return _ALIASES.get(name, name)


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [item for item in value if item is not None and item != ""]
    return [] if value == "" else [value]


def _condition(condition: Condition, values: list[Any]) -> bool:
    op = condition.op
    if op == "exists":
        return bool(values)
    if op == "missing":
        return not values
    if op == "!=":
        return not any(_equal(value, condition.value) for value in values)
    if op == "in":
        wanted = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        return any(_equal(value, item) for value in values for item in wanted)
    return any(_compare(op, value, condition.value) for value in values)


def _equal(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return value is None
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    if isinstance(value, str) and isinstance(wanted, str):
        moments = _moments(value, wanted)
        if moments is not None:
            return moments[0] == moments[1]
        return value.casefold() == wanted.casefold()
    if isinstance(value, int | float) and isinstance(wanted, int | float):
        return value == wanted
    return False


def _compare(op: str, value: Any, wanted: Any) -> bool:
    if op == "=":
        return _equal(value, wanted)
    if op in ("contains", "starts_with"):
        if not isinstance(value, str) or not isinstance(wanted, str):
            return False
        text, part = value.casefold(), wanted.casefold()
        if op == "contains":
            return part in text
        return text.startswith(part) or any(word.startswith(part) for word in _WORD.findall(text))
    left: Any
    right: Any
    if isinstance(value, int | float) and isinstance(wanted, int | float) and not isinstance(value, bool):
        left, right = value, wanted
    elif isinstance(value, str) and isinstance(wanted, str):
        moments = _moments(value, wanted)
        left, right = moments if moments is not None else (value.casefold(), wanted.casefold())
    else:
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def _moments(value: str, wanted: str) -> tuple[datetime, datetime] | None:
    """Both texts as UTC datetimes when both are ISO dates or datetimes (a date is its midnight)."""
    left, right = _moment(value), _moment(wanted)
    return (left, right) if left is not None and right is not None else None


def _moment(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed: date = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None
    if not isinstance(parsed, datetime):
        return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
