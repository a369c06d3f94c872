"""The declared streams: one row per Close list closeflow extracts, interpreted by ``_engine``.

A stream is data (path, strategy, fields, event types), not code: adding a Close list is adding a
row here. Strategies, and the Close behaviour that forces each (close-api.md §3, §7):

- ``keyset`` (leads, contacts): Advanced Filtering sorted by ``date_updated``, re-queried from the
  last position, because offset lists stop at a ``_skip`` cap and search walks at 10k results.
- ``updated_filter`` (opportunities, tasks): ``date_updated__gte`` windows on the list endpoint.
  Tasks cannot be ordered by ``date_updated`` (``_order_by`` takes only ``date``/``date_created``),
  so their window is walked in ``date_created`` order instead; see ``_walk.py``.
- ``created_paging`` (the ten activity types): there is no ``date_updated`` filter on activities,
  so they are paged on ``date_created`` and their edits and deletions come from the event log.
- ``reference`` (users, statuses, pipelines, custom-field definitions): small, re-read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from closeflow.close import ConfigError
from closeflow.sync.store import ModelSpec

Strategy = Literal["keyset", "updated_filter", "created_paging", "reference"]


@dataclass(frozen=True)
class Stream:
    name: str  # unique; the key of the stream's state in the store
    model: str  # the store model it writes
    path: str  # Close list path ("/opportunity/"); for keyset streams, informative only
    strategy: Strategy
    object_type: str = ""  # keyset: the /data/search/ object type ("lead")
    fields: tuple[str, ...] = ()  # keyset: every field of the record (search returns only these)
    event_types: tuple[str, ...] = ()  # event-log object types of this stream's records
    order_by: str = "date_updated"  # updated_filter / created_paging: the list's sort field
    params: tuple[tuple[str, str], ...] = ()  # fixed list parameters (tasks: _type=all)
    page_size: int = 100
    extra: tuple[tuple[str, str], ...] = ()  # keys added to every record (custom fields: object_type)
    group: str = ""  # rate-limit endpoint group: streams in different groups run concurrently

    @property
    def refetch_edits(self) -> bool:
        """Edits must be re-fetched from the event log (no ``date_updated`` filter exists)."""
        return self.strategy == "created_paging"


LEAD_FIELDS = (
    "id",
    "name",
    "display_name",
    "description",
    "url",
    "status_id",
    "status_label",
    "addresses",
    "contact_ids",
    "integration_links",
    "html_url",
    "organization_id",
    "created_by",
    "created_by_name",
    "updated_by",
    "updated_by_name",
    "date_created",
    "date_updated",
    "custom",  # every custom.cf_… value
)
CONTACT_FIELDS = (
    "id",
    "lead_id",
    "name",
    "title",
    "display_name",
    "emails",
    "phones",
    "urls",
    "integration_links",
    "organization_id",
    "created_by",
    "updated_by",
    "date_created",
    "date_updated",
    "custom",
)
TASK_TYPES = (
    "lead",
    "incoming_email",
    "email_followup",
    "missed_call",
    "answered_detached_call",
    "voicemail",
    "opportunity_due",
    "incoming_sms",
    "outgoing_call",
)
# (path segment after /activity/, event-log object types). Close's docs name the opportunity
# status-change events both ways (§7.1), so both are listened for.
ACTIVITY_TYPES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("created", "created/", ("activity.created",)),
    ("call", "call/", ("activity.call",)),
    ("email", "email/", ("activity.email",)),
    ("emailthread", "emailthread/", ("activity.emailthread", "activity.email_thread")),
    ("meeting", "meeting/", ("activity.meeting",)),
    ("note", "note/", ("activity.note",)),
    ("sms", "sms/", ("activity.sms",)),
    ("task_completed", "task_completed/", ("activity.task_completed",)),
    ("lead_status_change", "status_change/lead/", ("activity.lead_status_change",)),
    (
        "opportunity_status_change",
        "status_change/opportunity/",
        ("activity.opportunity_status_change", "status_change.opportunity"),
    ),
)
CUSTOM_FIELD_TYPES = ("lead", "contact", "opportunity", "activity", "shared")

STREAMS: tuple[Stream, ...] = (
    Stream("leads", "leads", "/lead/", "keyset", object_type="lead", fields=LEAD_FIELDS,
           event_types=("lead",), page_size=200, group="data_search"),
    Stream("contacts", "contacts", "/contact/", "keyset", object_type="contact", fields=CONTACT_FIELDS,
           event_types=("contact",), page_size=200, group="data_search"),
    Stream("opportunities", "opportunities", "/opportunity/", "updated_filter",
           event_types=("opportunity",), order_by="date_updated", page_size=250, group="opportunity:read"),
    Stream("tasks", "tasks", "/task/", "updated_filter", event_types=tuple(f"task.{t}" for t in TASK_TYPES),
           order_by="date_created", params=(("_type", "all"),), page_size=250,
           group="task:read"),
    *(
        Stream(f"activities.{name}", "activities", f"/activity/{segment}", "created_paging",
               event_types=events, order_by="date_created", page_size=100, group="activity:read")
        for name, segment, events in ACTIVITY_TYPES
    ),
    Stream("users", "users", "/user/", "reference", page_size=100, group="user:read"),
    Stream("lead_statuses", "lead_statuses", "/status/lead/", "reference", group="status:read"),
    Stream("opportunity_statuses", "opportunity_statuses", "/status/opportunity/", "reference",
           group="status:read"),
    Stream("pipelines", "pipelines", "/pipeline/", "reference", group="pipeline:read"),
    *(
        Stream(f"custom_fields.{kind}", "custom_fields", f"/custom_field/{kind}/", "reference",
               extra=(("object_type", kind),), page_size=100, group="custom_field:read")
        for kind in CUSTOM_FIELD_TYPES
    ),
)  # fmt: skip

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("leads", ("date_created", "date_updated", "status_id", "display_name")),
    ModelSpec("contacts", ("date_created", "date_updated", "lead_id", "display_name")),
    ModelSpec("opportunities", ("date_created", "date_updated", "lead_id", "status_id", "status_type")),
    ModelSpec("tasks", ("date_created", "date_updated", "lead_id", "_type")),
    ModelSpec("activities", ("date_created", "date_updated", "lead_id", "_type", "activity_at")),
    ModelSpec("users", ("email",)),
    ModelSpec("lead_statuses", ("label",)),
    ModelSpec("opportunity_statuses", ("label", "pipeline_id")),
    ModelSpec("pipelines", ("name",)),
    ModelSpec("custom_fields", ("object_type", "name", "type")),
)
MODEL_NAMES = tuple(spec.name for spec in MODELS)
# The reference models follow from the others: always synced (a handful of requests), since
# views and the records' ids point into them.
REFERENCE_MODELS = frozenset(s.model for s in STREAMS if s.strategy == "reference")


def streams_for(models: tuple[str, ...] | list[str] | None = None) -> tuple[Stream, ...]:
    """The streams writing ``models`` (all when empty or None), reference streams always included."""
    if not models:
        return STREAMS
    unknown = sorted(set(models) - set(MODEL_NAMES))
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODEL_NAMES)}")
    wanted = set(models) | REFERENCE_MODELS
    return tuple(s for s in STREAMS if s.model in wanted)


def model_of_event(object_type: str) -> str | None:
    """The model an event-log ``object_type`` belongs to (unknown task types included)."""
    model = _EVENT_MODELS.get(object_type)
    if model is None and object_type.startswith("task."):
        return "tasks"
    return model


def stream_of_event(object_type: str) -> Stream | None:
    return _EVENT_STREAMS.get(object_type)


_EVENT_STREAMS = {event_type: s for s in STREAMS for event_type in s.event_types}
_EVENT_MODELS = {event_type: s.model for event_type, s in _EVENT_STREAMS.items()}
