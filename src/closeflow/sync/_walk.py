"""Walking a Close list endpoint in sort order, re-filtered from the last value on every page.

Plain offset paging (``_skip`` += page) loses records twice over: Close refuses ``_skip`` past a
per-resource cap (§3.1), and when a record earlier in the order changes or is deleted mid-walk,
everything after it shifts and one record is never returned. So every request asks again for
``<order_by>__gte=<last value seen>`` from the start and drops the ids already returned at exactly
that value. ``_skip`` stays 0, except when more records share one value than fit on a page.

The sort field must only grow for a record (``date_created`` never changes; ``date_updated`` only
moves forward), so a record edited mid-walk is met again later, never skipped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from closeflow.close import CloseError, ValidationError

_AT_MOST = re.compile(r"less than or equal to (\d+)")


class _Getter(Protocol):
    async def get(
        self, path: str, *, params: Mapping[str, str | int | float | bool | None] | None = None
    ) -> dict[str, Any]: ...


@dataclass
class Position:
    """Where a walk is: the sort value of the last record returned and the ids returned at it."""

    value: str | None = None
    seen: list[str] = field(default_factory=list)

    def as_state(self) -> dict[str, Any]:
        return {"value": self.value, "seen": list(self.seen)}

    @classmethod
    def from_state(cls, state: Any) -> Position:
        if not isinstance(state, dict):
            return cls()
        value = state.get("value")
        seen = state.get("seen")
        return cls(value if isinstance(value, str) else None, [str(s) for s in seen or []])


async def get_page(requester: _Getter, path: str, query: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """One list page; when Close refuses ``_limit`` as too high (per-resource maxima are not
    published, §3.1), ask again with the maximum its error names. Returns the page and the limit
    that worked, for the next request."""
    try:
        return await requester.get(path, params=query), int(query["_limit"])
    except ValidationError as error:
        found = _AT_MOST.search(str(error.field_errors.get("_limit", "")))
        if found is None or int(found.group(1)) < 1 or int(found.group(1)) >= int(query["_limit"]):
            raise
        query = {**query, "_limit": int(found.group(1))}
        return await requester.get(path, params=query), int(query["_limit"])


async def walk_list(
    requester: _Getter,
    path: str,
    *,
    order_by: str,
    position: Position,
    params: Mapping[str, Any],
    page_size: int,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of records not returned before, in ``order_by`` order; ``position`` moves in place
    before each page is yielded, so the caller can commit it with that page."""
    rewalk: int | None = None  # the _skip of a re-walk of one tied value from its start, if any
    while True:
        seen = set(position.seen)
        query: dict[str, Any] = {**params, "_order_by": order_by, "_limit": page_size}
        if position.value is not None:
            query[f"{order_by}__gte"] = position.value
        if rewalk is not None:
            query["_skip"] = rewalk
        elif len(seen) >= page_size:
            # More records share one value than a page holds: they come first, in Close's stable
            # order, so step over them, less an overlap (deduped through ``seen``): a record of the
            # tie deleted mid-walk shifts the rest back, and a plain skip would jump one of them.
            query["_skip"] = len(seen) - page_size // 2
        tie = position.value
        body, page_size = await get_page(requester, path, query)
        data = body.get("data")
        records = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
        if (
            rewalk is None
            and query.get("_skip")
            and records
            and records[0].get(order_by) == tie
            and records[0].get("id") not in seen
        ):
            # More of the tie vanished than the overlap covers: the page starts past records never
            # returned. Walk this value again from its start; ``seen`` drops what was returned.
            rewalk = 0
            continue
        fresh: list[dict[str, Any]] = []
        for record in records:
            record_id, value = record.get("id"), record.get(order_by)
            if not isinstance(record_id, str) or not isinstance(value, str):
                raise CloseError(f"{path} returned a record without id/{order_by}; cannot page it safely")
            if value == position.value and record_id in seen:
                continue
            if position.value is None or value > position.value:
                position.value, seen = value, set()
                position.seen = []
            seen.add(record_id)
            position.seen.append(record_id)
            fresh.append(record)
        if rewalk is not None:
            rewalk = None if position.value != tie else rewalk + len(records)
        if fresh:
            yield fresh
        if not body.get("has_more") or not records:
            return
        if not fresh and rewalk is None:
            raise CloseError(
                f"{path}: a full page of records already returned at {order_by} {position.value}; "
                "the list's order is not stable, refusing to loop"
            )
