"""One in-memory Close organization: users, statuses, pipelines, custom fields, records, events.

Records are stored Close-shaped (the dicts the API returns, ``custom.cf_…`` flat keys) so reads
and the search engine need no translation. A lead's ``contact_ids`` list is the per-lead index
of its contacts. Default list order for leads and contacts is ``date_created`` ascending, then
id (Close does not document one, §13.4); that order is kept as a sorted id list, updated on
create/delete, so paging 100k leads by offset stays linear. Opportunities, tasks and activities
live in ``Collection``s (per-lead index, cached sort orders); all four child types hang off a
lead, and deleting the lead deletes them (``delete_children``), each with its own event (§7.1).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any

from closeflow._clock import Clock
from closeflow.emulator._collection import Collection
from closeflow.emulator._event_log import EventLog
from closeflow.emulator._events import WriteContext
from closeflow.emulator._ids import IdFactory, iso_utc
from closeflow.emulator._object_types import event_object_type

CUSTOM_FIELD_OBJECT_TYPES = ("lead", "contact", "opportunity", "activity", "shared")
RECORD_TYPES = ("lead", "contact", "opportunity")
CHILD_TYPES = ("opportunity", "task", "activity")


class Organization:
    """Implements the ``SearchSource`` protocol of ``_search.py`` (objects/get/children/custom_field)."""

    def __init__(self, clock: Clock, *, seed: int | None = None, name: str = "Emulated Org") -> None:
        self.clock = clock
        self.ids = IdFactory(seed)
        self.id = self.ids.new("orga_")
        self.name = name
        self.currency = "USD"
        self.date_created = iso_utc(clock.now())
        self.users: dict[str, dict[str, Any]] = {}
        self.lead_statuses: list[dict[str, Any]] = []
        self.pipelines: list[dict[str, Any]] = []
        self.custom_fields: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in CUSTOM_FIELD_OBJECT_TYPES}
        # Per object type, the display order of /custom_field_schema/ (ids, shared ones included).
        self.schema_order: dict[str, list[str]] = {t: [] for t in RECORD_TYPES}
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            t: {} for t in (*RECORD_TYPES, "task", "activity")
        }
        self.collections = {t: Collection(self.records[t]) for t in CHILD_TYPES}
        self.event_log = EventLog(clock, self.ids, self.id)
        # Bumped on every lead or contact change; caches of derived orders key on it.
        self.version = 0
        # Legacy `query` results by query text: (version they were computed at, lead ids).
        self.query_cache: dict[str, tuple[int, list[str]]] = {}
        self._orders: dict[str, list[tuple[str, str]] | None] = {"lead": None, "contact": None}

    # -- convenience views -------------------------------------------------------------------

    @property
    def leads(self) -> dict[str, dict[str, Any]]:
        return self.records["lead"]

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        return self.records["contact"]

    @property
    def opportunities(self) -> Collection:
        return self.collections["opportunity"]

    @property
    def tasks(self) -> Collection:
        return self.collections["task"]

    @property
    def activities(self) -> Collection:
        return self.collections["activity"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event in recording order (consolidated ones updated in place), retention ignored."""
        return self.event_log.entries

    @property
    def owner_id(self) -> str:
        """The user API keys act as (the first user: the org's creator)."""
        return next(iter(self.users))

    def now(self) -> str:
        return iso_utc(self.clock.now())

    def user_name(self, user_id: str | None) -> str | None:
        user = self.users.get(user_id or "")
        if user is None:
            return None
        return f"{user['first_name']} {user['last_name']}".strip()

    # -- statuses and custom fields -----------------------------------------------------------

    def opportunity_statuses(self) -> Iterator[dict[str, Any]]:
        for pipeline in self.pipelines:
            for status in pipeline["statuses"]:
                yield {**status, "pipeline_id": pipeline["id"], "organization_id": self.id}

    def find_lead_status(
        self, *, status_id: str | None = None, label: str | None = None
    ) -> dict[str, Any] | None:
        for status in self.lead_statuses:
            if status["id"] == status_id or (label is not None and status["label"].lower() == label.lower()):
                return status
        return None

    def fields_for(self, object_type: str) -> list[dict[str, Any]]:
        """Every field usable on ``object_type``: its own plus shared fields associated with it."""
        own = list(self.custom_fields.get(object_type, {}).values())
        shared = [
            definition
            for definition in self.custom_fields["shared"].values()
            if any(a.get("object_type") == object_type for a in definition.get("associations", []))
        ]
        return own + shared

    def find_custom_field(self, field_id: str) -> tuple[str, dict[str, Any]] | None:
        for object_type, fields in self.custom_fields.items():
            if field_id in fields:
                return object_type, fields[field_id]
        return None

    # -- record storage -----------------------------------------------------------------------

    def add(self, object_type: str, record: dict[str, Any]) -> None:
        self.records[object_type][record["id"]] = record
        order = self._orders.get(object_type)
        if order is not None:
            bisect.insort(order, (record["date_created"], record["id"]))
        self.version += 1

    def remove(self, object_type: str, record_id: str) -> dict[str, Any] | None:
        record = self.records[object_type].pop(record_id, None)
        order = self._orders.get(object_type)
        if record is not None and order is not None:
            key = (record["date_created"], record_id)
            index = bisect.bisect_left(order, key)
            if index < len(order) and order[index] == key:
                del order[index]
        self.version += 1
        return record

    def touched(self) -> None:
        """Note an in-place change of a stored record (invalidates derived orders such as sort:updated)."""
        self.version += 1

    def ordered_ids(self, object_type: str) -> list[tuple[str, str]]:
        """``(date_created, id)`` pairs in the default list order."""
        order = self._orders.get(object_type)
        if order is None:
            order = sorted((r["date_created"], r["id"]) for r in self.records[object_type].values())
            self._orders[object_type] = order
        return order

    def invalidate_orders(self) -> None:
        """After bulk loading records directly into ``records`` (the seed generator does this)."""
        self._orders = {"lead": None, "contact": None}
        self.version += 1

    # -- SearchSource -------------------------------------------------------------------------

    def objects(self, object_type: str) -> Iterable[dict[str, Any]]:
        return self.records.get(object_type, {}).values()

    def get(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        return self.records.get(object_type, {}).get(object_id)

    def children(self, lead_id: str, object_type: str) -> Iterable[dict[str, Any]]:
        lead = self.leads.get(lead_id)
        if lead is None:
            return []
        if object_type == "contact":
            return [self.contacts[cid] for cid in lead["contact_ids"] if cid in self.contacts]
        if object_type in self.collections:
            return self.collections[object_type].of_lead(lead_id)
        return [r for r in self.records.get(object_type, {}).values() if r.get("lead_id") == lead_id]

    def custom_field(self, field_id: str) -> dict[str, Any] | None:
        found = self.find_custom_field(field_id)
        return found[1] if found else None

    # -- event log ----------------------------------------------------------------------------

    def record_event(
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
    ) -> dict[str, Any]:
        return self.event_log.record(
            context,
            object_type=object_type,
            object_id=object_id,
            lead_id=lead_id,
            action=action,
            data=data,
            previous_data=previous_data,
            fields=fields,
        )

    # -- children of a lead ------------------------------------------------------------------

    def bump_lead(self, lead_id: str | None, context: WriteContext) -> None:
        """A child changed: the lead's ``date_updated`` moves, without a lead event (§7.1)."""
        lead = self.leads.get(lead_id or "")
        if lead is not None:
            lead["date_updated"] = self.now()
            lead["updated_by"] = context.user_id
            lead["updated_by_name"] = self.user_name(context.user_id)
            self.touched()

    def child_changed(
        self,
        context: WriteContext,
        object_type: str,
        action: str,
        record: dict[str, Any],
        *,
        before: dict[str, Any] | None = None,
        fields: list[str] | None = None,
    ) -> None:
        """A lead's opportunity, task or activity was ``created``, ``updated`` (``before`` and the
        changed ``fields``) or ``deleted`` (``record`` as it was): its lead's ``date_updated`` moves
        and the child's own event is recorded (§7.1)."""
        self.bump_lead(record["lead_id"], context)
        data: dict[str, Any] | None = None if action == "deleted" else record
        previous: dict[str, Any] | None = record if action == "deleted" else None
        if before is not None and fields is not None:
            previous = {key: before.get(key) for key in fields}
        self.record_event(
            context,
            object_type=object_type,
            object_id=record["id"],
            lead_id=record["lead_id"],
            action=action,
            data=data,
            previous_data=previous,
            fields=fields,
        )

    def delete_children(self, lead_id: str, context: WriteContext) -> None:
        """Delete a lead's activities, tasks and opportunities, each with its ``deleted`` event.

        Called before the lead (and its contacts) go, so the log reads children first, as a
        cascade does. Event ``object_type``s come from the records (``task.lead``, ``activity.note``).
        """
        for object_type in ("activity", "task", "opportunity"):
            collection = self.collections[object_type]
            for record in collection.of_lead(lead_id):
                collection.remove(record["id"])
                self.record_event(
                    context,
                    object_type=event_object_type(object_type, record),
                    object_id=record["id"],
                    lead_id=lead_id,
                    action="deleted",
                    data=None,
                    previous_data=record,
                )
