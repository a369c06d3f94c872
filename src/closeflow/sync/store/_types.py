"""The store's vocabulary: what a data model is, what a change is, and the interface both backends keep.

The sync engine depends on these names only, never on a backend module, so SQLite and Postgres are
interchangeable behind ``open_store()``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

ChangeKind = Literal["added", "updated", "removed"]
ViewType = Literal["text", "number", "date", "datetime", "boolean", "json"]
Dialect = Literal["sqlite", "postgres"]


class StoreError(Exception):
    """The store refused an operation or the database failed; the message says what and how to fix it.

    Never carries a connection string's password (see ``redact_url``)."""


@dataclass(frozen=True)
class ModelSpec:
    """A data model: one table of Close records of one kind, keyed by Close's ``id``.

    ``promoted`` names top-level record keys copied into their own TEXT columns so SQL can filter and
    join on them without JSON functions (``date_updated``, ``lead_id``, ``_type``, …)."""

    name: str
    promoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One row of the change log: a record added, updated or removed by a committed page."""

    seq: int
    model: str
    record_id: str
    kind: ChangeKind
    changed_fields: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI and plays use:
        ``{seq, model, record_id, kind, changed_fields, before, after, at}``."""
        return {
            "seq": self.seq,
            "model": self.model,
            "record_id": self.record_id,
            "kind": self.kind,
            "changed_fields": list(self.changed_fields),
            "before": self.before,
            "after": self.after,
            "at": self.at,
        }


@dataclass(frozen=True)
class ModelInfo:
    """What ``closeflow models`` shows for one data model.

    ``cursor`` maps each stream that has committed pages into this model to that stream's state."""

    name: str
    rows: int
    deleted: int
    last_sync: str | None
    cursor: dict[str, Any] | None


@dataclass(frozen=True)
class ViewColumn:
    """One typed column of a model's view: ``name`` is the human name (e.g. a custom field's name, made
    safe and unique by the store), ``key`` the top-level record key it reads (e.g. ``custom.cf_abc``)."""

    name: str
    key: str
    type: ViewType


class Store(Protocol):
    """The data-model store. Every method is synchronous and safe to call from several threads."""

    dialect: Dialect

    def ensure_models(self, specs: Sequence[ModelSpec]) -> None: ...

    def commit_page(
        self,
        stream: str,
        model: str,
        *,
        upserts: Sequence[Mapping[str, Any]] = (),
        removals: Sequence[str] = (),
        state: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> list[Change]: ...

    def save_state(self, stream: str, state: Mapping[str, Any], *, now: datetime) -> None:
        """Write one stream's state alone: no records, no model's ``last_sync`` or cursor listing."""
        ...

    def state(self, stream: str) -> dict[str, Any] | None: ...

    def recent_ids(self, model: str, since: datetime) -> set[str]:
        """Live ids of ``model`` written (added or changed) at or after ``since``."""
        ...

    def all_states(self) -> dict[str, dict[str, Any]]: ...

    def live_ids(self, model: str) -> Iterator[str]: ...

    def get(self, model: str, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None: ...

    def changes(
        self, since: int = 0, *, model: str | None = None, limit: int | None = None
    ) -> list[Change]: ...

    def last_seq(self) -> int: ...

    def models(self) -> list[ModelInfo]: ...

    def query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int | None = None,
        hidden: Collection[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement; its column names and (at most ``max_rows``) rows.

        ``hidden`` names tables and views (any case) the statement may not read, however it reaches
        them; one that does raises ``StoreError`` ("… NAME is not readable through this query path …")
        and returns no rows. ``LEDGER_TABLES`` hides closeflow's ledgers from an agent."""
        ...

    def rebuild_view(self, model: str, view: str, columns: Sequence[ViewColumn]) -> None: ...

    def close(self) -> None: ...
