"""The organization's event log as ``GET /event/`` serves it (§7.1, §3.2).

Ordering is newest first by ``date_updated``; events sharing a ``date_updated`` keep the order
they were recorded in (a log position), which is how Close can promise that "two or more events
for the same object are returned in the proper order" at millisecond precision.

Consolidation: an ``updated`` event for an object that already has an ``updated`` event from the
same source (user, API key, OAuth client) created less than ``consolidation_window`` seconds ago
is merged into it instead of appended: ``date_updated`` moves to now (so the event moves to the
top of the log), ``changed_fields`` is the union, ``data`` is the latest object and
``previous_data`` keeps the first value of every field. The event keeps its id, ``date_created``
and first ``request_id``. The window is measured from the event's creation so a stream of edits
cannot keep one event open forever (Close does not document its window; 60 s is our choice).

Retention hides events whose ``date_updated`` is older than the retention period (30 days)
against the emulator's clock; they stay in ``entries`` for tests to inspect.
"""

from __future__ import annotations

import bisect
import copy
from typing import Any

from closeflow._clock import Clock
from closeflow.emulator._events import WriteContext, event
from closeflow.emulator._ids import IdFactory, iso_naive

Event = dict[str, Any]
# (date_updated, log position, event id): the log's total order.
Key = tuple[str, int, str]


class EventLog:
    def __init__(self, clock: Clock, ids: IdFactory, organization_id: str) -> None:
        self.clock = clock
        self.ids = ids
        self.organization_id = organization_id
        self.consolidation_window = 60.0
        self.entries: list[Event] = []  # in recording order (what tests read as org.events)
        self.by_id: dict[str, Event] = {}
        self.order: list[Key] = []
        self._keys: dict[str, Key] = {}
        self._created_at: dict[str, float] = {}
        self._open_updates: dict[tuple[str, str], str] = {}  # (object_type, object_id) -> event id
        self._position = 0

    def __len__(self) -> int:
        return len(self.entries)

    def record(
        self,
        context: WriteContext,
        *,
        object_type: str,
        object_id: str,
        lead_id: str | None,
        action: str,
        data: dict[str, Any] | None,
        previous_data: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> Event:
        now = self.clock.now()
        if action == "updated":
            merged = self._consolidate(context, object_type, object_id, now, data, previous_data, fields)
            if merged is not None:
                return merged
        entry = event(
            event_id=self.ids.new("ev_"),
            timestamp=now,
            organization_id=self.organization_id,
            context=context,
            object_type=object_type,
            object_id=object_id,
            lead_id=lead_id,
            action=action,
            data=data,
            previous_data=previous_data,
            fields=fields,
        )
        self.entries.append(entry)
        self.by_id[entry["id"]] = entry
        self._created_at[entry["id"]] = now
        self._place(entry)
        key = (object_type, object_id)
        if action == "updated":
            self._open_updates[key] = entry["id"]
        else:
            self._open_updates.pop(key, None)
        return entry

    def _consolidate(
        self,
        context: WriteContext,
        object_type: str,
        object_id: str,
        now: float,
        data: dict[str, Any] | None,
        previous_data: dict[str, Any] | None,
        fields: list[str] | None,
    ) -> Event | None:
        open_id = self._open_updates.get((object_type, object_id))
        if open_id is None or self.consolidation_window <= 0:
            return None
        existing = self.by_id[open_id]
        same_source = (existing["user_id"], existing["api_key_id"], existing["oauth_client_id"]) == (
            context.user_id,
            context.api_key_id,
            context.oauth_client_id,
        )
        if not same_source or now - self._created_at[open_id] > self.consolidation_window:
            return None
        existing["changed_fields"] = sorted(set(existing["changed_fields"]) | set(fields or []))
        earlier = existing["previous_data"] or {}
        later = copy.deepcopy(previous_data or {})
        existing["previous_data"] = {**later, **earlier}
        existing["data"] = copy.deepcopy(data) if data is not None else None
        existing["date_updated"] = iso_naive(now)
        self._unplace(open_id)
        self._place(existing)
        return existing

    def _place(self, entry: Event) -> None:
        self._position += 1
        key = (entry["date_updated"], self._position, entry["id"])
        self._keys[entry["id"]] = key
        if not self.order or key > self.order[-1]:
            self.order.append(key)
        else:  # a clock that stepped back (SystemClock): keep the order sorted anyway
            bisect.insort(self.order, key)

    def _unplace(self, event_id: str) -> None:
        key = self._keys.pop(event_id)
        index = bisect.bisect_left(self.order, key)
        if index < len(self.order) and self.order[index] == key:
            del self.order[index]

    def key_of(self, event_id: str) -> Key | None:
        return self._keys.get(event_id)

    def oldest_visible(self, retention: float) -> str:
        """The smallest ``date_updated`` still inside the retention period."""
        return iso_naive(self.clock.now() - retention)
