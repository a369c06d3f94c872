"""Query-string filters of Close's list endpoints (§3.3) and the window they select.

Filters use Django suffixes: ``field``, ``field__in`` (comma list), ``field__gt|gte|lt|lte``.
Date bounds accept every form clients send (§2.2) and are normalised to the stored format, so a
range is two binary searches over a sorted ``(value, id)`` order instead of a scan.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

from closeflow.emulator._collection import SortValue
from closeflow.emulator._errors import field_error
from closeflow.emulator._ids import parse_datetime

_AFTER_ANY_ID = "\U0010ffff"
TRUE = frozenset({"true", "1", "yes", "True"})
FALSE = frozenset({"false", "0", "no", "False"})


@dataclass(frozen=True)
class Range:
    lower: str | None = None
    lower_inclusive: bool = True
    upper: str | None = None
    upper_inclusive: bool = True


def within(value: str | None, bounds: Range) -> bool:
    """Whether a stored value falls inside ``bounds`` (a missing value never does, unless unbounded)."""
    if bounds.lower is None and bounds.upper is None:
        return True
    if value is None:
        return False
    if bounds.lower is not None and (
        value < bounds.lower or (value == bounds.lower and not bounds.lower_inclusive)
    ):
        return False
    return not (
        bounds.upper is not None
        and (value > bounds.upper or (value == bounds.upper and not bounds.upper_inclusive))
    )


def date_bound(text: str, name: str, *, form: str = "utc") -> str:
    """A query date in the stored format: ``utc`` (objects), ``naive`` (events) or ``date``."""
    try:
        moment = parse_datetime(text)
    except ValueError:
        raise field_error(
            name, f"Invalid date {text!r}: use ISO 8601, e.g. 2026-01-31T12:00:00+00:00."
        ) from None
    if form == "date":
        return moment.date().isoformat()
    if form == "naive":
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def date_range(params: Mapping[str, str], field: str, *, form: str = "utc") -> Range:
    """``field__gt|gte|lt|lte`` (and a bare ``field`` as an exact day or moment) from the query."""
    lower: str | None = None
    upper: str | None = None
    lower_inclusive = upper_inclusive = True
    for suffix in ("gt", "gte"):
        raw = params.get(f"{field}__{suffix}")
        if raw:
            bound = date_bound(raw, f"{field}__{suffix}", form=form)
            if lower is None or bound > lower or (bound == lower and suffix == "gt"):
                lower, lower_inclusive = bound, suffix == "gte"
    for suffix in ("lt", "lte"):
        raw = params.get(f"{field}__{suffix}")
        if raw:
            bound = date_bound(raw, f"{field}__{suffix}", form=form)
            if upper is None or bound < upper or (bound == upper and suffix == "lt"):
                upper, upper_inclusive = bound, suffix == "lte"
    return Range(lower, lower_inclusive, upper, upper_inclusive)


def in_values(params: Mapping[str, str], field: str) -> set[str] | None:
    """``field=a`` or ``field__in=a,b`` (a bare value may be a comma list too, as for ``lead_id``)."""
    values: set[str] = set()
    found = False
    for name in (field, f"{field}__in"):
        raw = params.get(name)
        if raw is not None and raw != "":
            found = True
            values |= {part.strip() for part in raw.split(",") if part.strip()}
    return values if found else None


def boolean(params: Mapping[str, str], field: str) -> bool | None:
    raw = params.get(field)
    if raw is None or raw == "":
        return None
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise field_error(field, "Input should be a valid boolean (true or false).")


def order_by(
    params: Mapping[str, str], allowed: Mapping[str, SortValue], default: str
) -> tuple[str, SortValue, bool]:
    """``(field, value, descending)`` from ``_order_by``; an unsupported field is a 400 naming the choices."""
    raw = (params.get("_order_by") or default).strip()
    descending = raw.startswith("-")
    name = raw.lstrip("-")
    if name not in allowed:
        choices = ", ".join(sorted(allowed))
        raise field_error(
            "_order_by", f"Cannot order by {name!r}: use one of {choices} (prefix - for descending)."
        )
    return name, allowed[name], descending


def select(
    order: Sequence[tuple[str, str]],
    bounds: Range,
    *,
    descending: bool,
    keep: Callable[[str], bool] | None,
    skip: int,
    limit: int,
    count_total: bool = False,
) -> tuple[list[str], bool, int | None]:
    """The ids of one page: ``(ids, has_more, total)``; ``total`` only when asked or free."""
    lo = 0
    if bounds.lower is not None:
        if bounds.lower_inclusive:
            lo = bisect.bisect_left(order, (bounds.lower,))
        else:
            lo = bisect.bisect_right(order, (bounds.lower, _AFTER_ANY_ID))
    hi = len(order)
    if bounds.upper is not None:
        if bounds.upper_inclusive:
            hi = bisect.bisect_right(order, (bounds.upper, _AFTER_ANY_ID))
        else:
            hi = bisect.bisect_left(order, (bounds.upper,))
    hi = max(hi, lo)
    if keep is None:
        total = hi - lo
        if descending:
            start, stop = max(hi - skip - limit, lo), max(hi - skip, lo)
            ids = [pair[1] for pair in reversed(order[start:stop])]
        else:
            ids = [pair[1] for pair in order[lo + skip : min(lo + skip + limit, hi)]]
        return ids, skip + limit < total, total
    indices = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
    matched: list[str] = []
    needed = skip + limit + 1
    count = 0
    for index in indices:
        record_id = order[index][1]
        if keep(record_id):
            count += 1
            if count > skip and len(matched) < limit:
                matched.append(record_id)
            if count >= needed and not count_total:
                break
    return matched, count > skip + limit, count if count_total else None


def matching_ids(
    order: Sequence[tuple[str, str]],
    bounds: Range,
    *,
    descending: bool,
    keep: Callable[[str], bool] | None,
) -> list[str]:
    """Every id in ``order`` inside ``bounds`` that ``keep`` accepts, in list order."""
    ids, _, _ = select(
        order, bounds, descending=descending, keep=keep, skip=0, limit=len(order), count_total=True
    )
    return ids


def query_key(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The filters of a list request, without its paging: one cached result serves every page."""
    return tuple(sorted((k, v) for k, v in params.items() if k not in ("_skip", "_limit", "_fields")))
