"""Advanced Filtering conditions (§3.5): each one compiled once into a predicate over a field value.

A condition tests the value of one field. Multi-value fields (custom fields that accept several
values, arrays of emails) match when any element matches, which is how Close treats them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from closeflow._clock import Clock
from closeflow.emulator._ids import parse_datetime

ValueTest = Callable[[Any], bool]

TEXT_MODES = ("full_words", "phrase", "beginning_of_words", "exact_value")
_WORD = re.compile(r"\w+")
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


class SearchError(Exception):
    """A query Close would refuse with a 400; ``to_json`` is the body Close sends."""

    def __init__(
        self,
        message: str,
        *,
        field_errors: dict[str, str] | None = None,
        errors: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.field_errors: dict[str, str] = dict(field_errors or {})
        self.errors: list[str] = list(errors) if errors is not None else ([] if field_errors else [message])

    def to_json(self) -> dict[str, Any]:
        return {"errors": self.errors, "field-errors": self.field_errors}


def as_moment(value: Any) -> datetime | None:
    """A record's stored date (string, date or datetime) as an aware UTC datetime, else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and _DATE_PREFIX.match(value):
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _phone_matches(stored: str, wanted: str) -> bool:
    # Close stores E.164 ("+18004445555") but callers search with what they have ("8004445555",
    # "+1 800-444-5555"): compare digits, letting the query omit the country code.
    have, want = _digits(stored), _digits(wanted)
    if not want:
        return False
    return have == want or (len(want) >= 7 and have.endswith(want))


def _text_test(value_text: str, mode: str, *, phone: bool) -> ValueTest:
    wanted_words = _words(value_text)
    folded = value_text.strip().casefold()

    def test(stored: Any) -> bool:
        if stored is None or isinstance(stored, dict):
            return False
        text = str(stored)
        if phone and _phone_matches(text, value_text):
            return True
        if mode == "exact_value":
            return text.strip().casefold() == folded
        have = _words(text)
        if not wanted_words:
            return False
        if mode == "full_words":
            return set(wanted_words) <= set(have)
        if mode == "beginning_of_words":
            return all(any(word.startswith(w) for word in have) for w in wanted_words)
        # phrase: the query's words appear next to each other, in order.
        n = len(wanted_words)
        return any(have[i : i + n] == wanted_words for i in range(len(have) - n + 1))

    return test


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, str) and isinstance(wanted, str):
        return stored.casefold() == wanted.casefold()
    return bool(stored == wanted)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _require(condition: dict[str, Any], key: str, where: str) -> Any:
    if key not in condition:
        raise SearchError(f"{where}: condition {condition.get('type')!r} needs {key!r}")
    return condition[key]


def _range_test(condition: dict[str, Any], where: str) -> ValueTest:
    bounds: dict[str, float] = {}
    for key in ("gt", "gte", "lt", "lte"):
        if condition.get(key) is not None:
            number = _number(condition[key])
            if number is None:
                raise SearchError(f"{where}: number_range {key!r} must be a number")
            bounds[key] = number
    if not bounds:
        raise SearchError(f"{where}: number_range needs at least one of gt, gte, lt, lte")

    def test(stored: Any) -> bool:
        number = _number(stored)
        if number is None:
            return False
        return (
            ("gt" not in bounds or number > bounds["gt"])
            and ("gte" not in bounds or number >= bounds["gte"])
            and ("lt" not in bounds or number < bounds["lt"])
            and ("lte" not in bounds or number <= bounds["lte"])
        )

    return test


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def resolve_moment(spec: Any, clock: Clock, where: str) -> datetime:
    """A moment of a ``moment_range`` bound: fixed, now, or an offset from another moment.

    Relative forms are resolved in UTC: the emulator ignores ``X-TZ-Offset`` for searches.
    """
    if not isinstance(spec, dict):
        raise SearchError(f"{where}: a moment must be an object with a 'type'")
    kind = spec.get("type")
    try:
        if kind == "fixed_utc":
            return parse_datetime(str(_require(spec, "value", where)))
        if kind == "fixed_local_date":
            day = parse_datetime(str(_require(spec, "value", where))[:10])
            return day + timedelta(days=1) if spec.get("which") == "end" else day
    except ValueError as exc:
        raise SearchError(f"{where}: {spec.get('value')!r} is not an ISO date") from exc
    if kind == "now":
        return datetime.fromtimestamp(clock.now(), UTC)
    if kind == "offset":
        base = resolve_moment(spec.get("moment", {"type": "now"}), clock, where)
        amounts = spec.get("offset", spec)
        sign = 1 if spec.get("direction", "past") == "future" else -1
        seconds = sum(
            float(amounts.get(unit) or 0) * size
            for unit, size in (("weeks", 604_800), ("days", 86_400), ("hours", 3600), ("minutes", 60))
        ) + float(amounts.get("seconds") or 0)
        moved = base + sign * timedelta(seconds=seconds)
        months = int(amounts.get("months") or 0) + 12 * int(amounts.get("years") or 0)
        return _add_months(moved, sign * months)
    raise SearchError(f"{where}: unsupported moment type {kind!r}")


def _moment_test(condition: dict[str, Any], clock: Clock, where: str) -> ValueTest:
    start = condition.get("on_or_after")
    end = condition.get("before")
    if start is None and end is None:
        raise SearchError(f"{where}: moment_range needs 'on_or_after' or 'before'")
    low = resolve_moment(start, clock, where) if start is not None else None
    high = resolve_moment(end, clock, where) if end is not None else None

    def test(stored: Any) -> bool:
        moment = as_moment(stored)
        if moment is None:
            return False
        return (low is None or moment >= low) and (high is None or moment < high)

    return test


def compile_condition(
    condition: Any, *, clock: Clock, current_user_id: str | None, phone: bool, where: str
) -> tuple[ValueTest, bool]:
    """The test for one element, and whether it is an ``exists`` test (which looks at the whole value)."""
    if not isinstance(condition, dict) or "type" not in condition:
        raise SearchError(f"{where}: a condition must be an object with a 'type'")
    kind = condition["type"]
    if kind == "text":
        mode = condition.get("mode", "full_words")
        if mode not in TEXT_MODES:
            raise SearchError(f"{where}: unknown text mode {mode!r} (use one of {', '.join(TEXT_MODES)})")
        return _text_test(str(_require(condition, "value", where)), mode, phone=phone), False
    if kind == "term":
        values = _require(condition, "values", where)
        if not isinstance(values, list):
            raise SearchError(f"{where}: term 'values' must be a list")
        if phone:
            return (lambda v: v is not None and any(_phone_matches(str(v), str(w)) for w in values)), False
        return (lambda v: any(_same(v, w) for w in values)), False
    if kind == "reference":
        ids = _require(condition, "object_ids", where)
        if not isinstance(ids, list):
            raise SearchError(f"{where}: reference 'object_ids' must be a list")
        wanted = set(ids)
        return (lambda v: isinstance(v, str) and v in wanted), False
    if kind == "boolean":
        flag = _require(condition, "value", where)
        if not isinstance(flag, bool):
            raise SearchError(f"{where}: boolean 'value' must be true or false")
        return (lambda v: isinstance(v, bool) and v is flag), False
    if kind == "exists":
        return (lambda v: v is not None and v != "" and v != []), True
    if kind == "current_user":
        return (lambda v: current_user_id is not None and v == current_user_id), False
    if kind == "number_range":
        return _range_test(condition, where), False
    if kind == "moment_range":
        return _moment_test(condition, clock, where), False
    raise SearchError(f"{where}: unknown condition type {kind!r}")


def value_matches(value: Any, test: ValueTest, *, whole: bool) -> bool:
    """Apply a compiled test to a stored value; lists match when any element matches."""
    if whole:
        return test(value)
    if isinstance(value, list):
        return any(test(item) for item in value)
    return test(value)
