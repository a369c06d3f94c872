"""One object type's records (opportunities, tasks or activities) with the indexes lists need.

Close lists these objects with range filters on dates and ``_skip``/``_limit`` paging. A sync
pages 500k activities a hundred at a time, so scanning every record per page would be quadratic:
each sort order is computed once, as ``(value, id)`` pairs, and reused until the next write.
A per-lead index answers ``lead_id`` filters, cascades and ``has_related`` searches directly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

Record = dict[str, Any]
# Values of a record's sort field, made comparable as strings (dates are already ISO strings).
SortValue = Callable[[Record], str]


def text_value(field: str) -> SortValue:
    def value(record: Record) -> str:
        raw = record.get(field)
        return "" if raw is None else str(raw)

    return value


def number_value(field: str) -> SortValue:
    # Zero-padded so numbers sort as strings; None sorts first, like Close's nulls.
    def value(record: Record) -> str:
        raw = record.get(field)
        return "" if raw is None else f"{float(raw) + 1e15:022.4f}"

    return value


class Collection:
    """Records by id (the same dict the search engine reads), plus per-lead and sort indexes."""

    def __init__(self, records: dict[str, Record]) -> None:
        self.records = records
        self.by_lead: dict[str, dict[str, None]] = {}
        self.version = 0
        self._orders: dict[tuple[str, str | None], tuple[int, list[tuple[str, str]]]] = {}
        self._results: dict[Hashable, tuple[int, Any]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records.values())

    def get(self, record_id: str) -> Record | None:
        return self.records.get(record_id)

    def add(self, record: Record) -> None:
        self.records[record["id"]] = record
        lead_id = record.get("lead_id")
        if lead_id:
            self.by_lead.setdefault(lead_id, {})[record["id"]] = None
        self.version += 1

    def load(self, records: list[Record]) -> None:
        """Bulk insert without per-record bookkeeping beyond the lead index (the seed uses it)."""
        store, by_lead = self.records, self.by_lead
        for record in records:
            store[record["id"]] = record
            by_lead.setdefault(record["lead_id"], {})[record["id"]] = None
        self.version += 1

    def remove(self, record_id: str) -> Record | None:
        record = self.records.pop(record_id, None)
        if record is not None:
            siblings = self.by_lead.get(record.get("lead_id") or "")
            if siblings is not None:
                siblings.pop(record_id, None)
                if not siblings:
                    del self.by_lead[record["lead_id"]]
            self.version += 1
        return record

    def touched(self) -> None:
        """A stored record changed in place: cached orders are stale."""
        self.version += 1

    def of_lead(self, lead_id: str) -> list[Record]:
        return [self.records[i] for i in self.by_lead.get(lead_id, ())]

    def ordered(
        self,
        name: str,
        value: SortValue,
        *,
        group: str | None = None,
        group_of: Callable[[Record], str] | None = None,
    ) -> list[tuple[str, str]]:
        """``(value, id)`` pairs ascending, for records whose ``group_of`` is ``group`` (or all)."""
        key = (name, group)
        cached = self._orders.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        if group is None or group_of is None:
            order = [(value(r), r["id"]) for r in self.records.values()]
        else:
            order = [(value(r), r["id"]) for r in self.records.values() if group_of(r) == group]
        order.sort()
        if len(self._orders) > 32:
            self._orders.clear()
        self._orders[key] = (self.version, order)
        return order

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A list query's result, reused while nothing changes (offset clients re-ask per page)."""
        found = self._results.get(key)
        if found is not None and found[0] == self.version:
            result: T = found[1]
            return result
        value = compute()
        if len(self._results) > 32:
            self._results.clear()
        self._results[key] = (self.version, value)
        return value
