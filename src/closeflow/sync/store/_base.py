"""The store's logic, written once over the SQL subset SQLite and Postgres share.

Backends supply a connection, a transaction, the per-page upsert (the hot path, where the dialects
differ most), the change-log insert and the read-only query path. SQL here uses ``?`` placeholders;
the Postgres backend turns them into ``%s``.
"""

# Identifiers in these SQL strings pass through quote() (or are validated names); values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar

from closeflow.sync.store._names import (
    STORE_TABLES,
    check_model_name,
    check_promoted_key,
    check_view_name,
    quote,
)
from closeflow.sync.store._records import (
    Incoming,
    canonical_json,
    diff,
    prepare_page,
    promoted_text,
    utc_text,
)
from closeflow.sync.store._types import Change, Dialect, ModelInfo, ModelSpec, StoreError, ViewColumn
from closeflow.sync.store._views import view_sql

SCHEMA_VERSION = 1
CHANGE_COLUMNS = 'seq, model, record_id, kind, changed_fields, "before", "after", at'
_CHUNK = 500  # ids per IN (…) list: well under SQLite's variable limit, small enough to plan quickly
_ID_BATCH = 2000  # ids per keyset step of live_ids()

# A change-log row as stored: JSON columns as canonical text.
ChangeRow = tuple[int, str, str, str, str, str | None, str | None, str]


def change_row(change: Change, *, after_text: str | None = None) -> ChangeRow:
    def encoded(value: dict[str, Any] | None) -> str | None:
        return None if value is None else canonical_json(value)

    after = after_text if after_text is not None else encoded(change.after)
    fields = canonical_json(change.changed_fields)
    return (
        change.seq,
        change.model,
        change.record_id,
        change.kind,
        fields,
        encoded(change.before),
        after,
        change.at,
    )


# What the upsert step found for one changed record: the record, and its previous live value
# (None when it is new or revived from a tombstone, i.e. an "added" change).
Written = tuple[Incoming, dict[str, Any] | None]


class SqlStore(ABC):
    dialect: Dialect
    json_type: ClassVar[str]
    id_type: ClassVar[str]
    seq_type: ClassVar[str]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._promoted: dict[str, tuple[str, ...]] = {}
        self._streams_seen: set[tuple[str, str]] = set()

    # --- what a backend provides ---

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the writer connection; the rows it returns (empty for DDL/DML)."""

    @abstractmethod
    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """One write transaction, exclusive against other writers of this store (seq allocation)."""

    @abstractmethod
    def _json(self, value: Any) -> Any:
        """A JSON column's value as Python (SQLite returns text, Postgres' jsonb is already decoded)."""

    @abstractmethod
    def _upsert(self, model: str, promoted: tuple[str, ...], page: list[Incoming], now: str) -> list[Written]:
        """Write the page's new, changed and revived records; report them in page order."""

    @abstractmethod
    def _insert_changes(self, rows: Sequence[ChangeRow]) -> None:
        """Append rows (in ``CHANGE_COLUMNS`` order) to the change log."""

    @abstractmethod
    def _extra_schema(self) -> list[str]:
        """Backend-only DDL run when the schema is created (Postgres' safe-cast functions)."""

    @abstractmethod
    def query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int | None = None,
        hidden: Collection[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    @abstractmethod
    def close(self) -> None: ...

    # --- schema ---

    def _create_schema(self) -> None:
        json_type, seq_type = self.json_type, self.seq_type
        with self._lock, self._transaction():
            for statement in (
                "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS store_models "
                "(model TEXT PRIMARY KEY, promoted TEXT NOT NULL, last_sync TEXT)",
                "CREATE TABLE IF NOT EXISTS model_streams "
                "(model TEXT NOT NULL, stream TEXT NOT NULL, PRIMARY KEY (model, stream))",
                f"CREATE TABLE IF NOT EXISTS sync_state "
                f"(stream TEXT PRIMARY KEY, state {json_type} NOT NULL, updated_at TEXT NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS change_log (seq {seq_type} PRIMARY KEY, model TEXT NOT NULL, "
                f"record_id TEXT NOT NULL, kind TEXT NOT NULL, changed_fields {json_type} NOT NULL, "
                f'"before" {json_type}, "after" {json_type}, at TEXT NOT NULL)',
                "CREATE INDEX IF NOT EXISTS change_log_model_seq ON change_log (model, seq)",
            ):
                self._rows(statement)
            found = self._rows("SELECT value FROM store_meta WHERE key = 'schema_version'")
            if not found:
                for statement in self._extra_schema():
                    self._rows(statement)
                self._rows(
                    "INSERT INTO store_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(found[0][0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"this store has schema version {found[0][0]}, written by a newer closeflow "
                    f"(this one reads up to {SCHEMA_VERSION}); upgrade closeflow"
                )
        self._load_models()

    def _load_models(self) -> None:
        rows = self._rows("SELECT model, promoted FROM store_models")
        self._promoted = {model: tuple(json.loads(promoted)) for model, promoted in rows}

    def _spec(self, model: str) -> tuple[str, ...]:
        if model not in self._promoted:
            self._load_models()  # another process may have added it since we opened
        if model not in self._promoted:
            known = ", ".join(sorted(self._promoted)) or "none yet"
            raise StoreError(
                f"unknown model {model!r} (known: {known}); "
                f"call ensure_models([ModelSpec({model!r}, …)]) first"
            )
        return self._promoted[model]

    def ensure_models(self, specs: Sequence[ModelSpec]) -> None:
        for spec in specs:
            check_model_name(spec.name)
            for key in spec.promoted:
                check_promoted_key(spec.name, key)
        with self._lock, self._transaction():
            self._load_models()
            for spec in specs:
                existing = self._promoted.get(spec.name)
                if existing is None:
                    self._create_model(spec.name, tuple(dict.fromkeys(spec.promoted)))
                else:
                    new = tuple(key for key in dict.fromkeys(spec.promoted) if key not in existing)
                    if new:
                        self._add_promoted(spec.name, existing, new)
            self._load_models()

    def _create_model(self, model: str, promoted: tuple[str, ...]) -> None:
        columns = [f"id {self.id_type} PRIMARY KEY", f"data {self.json_type} NOT NULL", "hash TEXT NOT NULL"]
        columns += [f"{quote(key)} TEXT" for key in promoted]
        columns += ["first_seen TEXT NOT NULL", "last_seen TEXT NOT NULL", "deleted_at TEXT"]
        self._rows(f"CREATE TABLE IF NOT EXISTS {quote(model)} ({', '.join(columns)})")
        self._rows("INSERT INTO store_models (model, promoted) VALUES (?, ?)", (model, json.dumps(promoted)))

    def _add_promoted(self, model: str, existing: tuple[str, ...], new: tuple[str, ...]) -> None:
        for key in new:
            self._rows(f"ALTER TABLE {quote(model)} ADD COLUMN {quote(key)} TEXT")
        # Fill the new columns for the rows already stored, so a promoted column never lies by omission.
        assignments = ", ".join(f"{quote(key)} = ?" for key in new)
        last = ""
        while batch := self._rows(
            f"SELECT id, data FROM {quote(model)} WHERE id > ? ORDER BY id LIMIT 1000", (last,)
        ):
            updates = []
            for record_id, data in batch:
                record = self._json(data)
                updates.append([*(promoted_text(record.get(key)) for key in new), record_id])
            self._many(f"UPDATE {quote(model)} SET {assignments} WHERE id = ?", updates)
            last = batch[-1][0]
        self._rows(
            "UPDATE store_models SET promoted = ? WHERE model = ?", (json.dumps(existing + new), model)
        )

    # --- the write path ---

    def commit_page(
        self,
        stream: str,
        model: str,
        *,
        upserts: Sequence[Mapping[str, Any]] = (),
        removals: Sequence[str] = (),
        state: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> list[Change]:
        at = utc_text(now)
        if not isinstance(stream, str) or not stream:
            raise StoreError("commit_page needs a stream name (the key of its sync state)")
        if isinstance(removals, str) or not all(isinstance(item, str) for item in removals):
            raise StoreError(f"{model}: removals must be a sequence of record ids (strings)")
        try:
            state_text = None if state is None else canonical_json(dict(state))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"stream {stream!r}: its state is not plain JSON ({exc})") from exc
        with self._lock:
            promoted = self._spec(model)
            page = prepare_page(model, upserts, promoted)
            try:
                with self._transaction():
                    changes = self._commit(
                        stream, model, promoted, page, list(dict.fromkeys(removals)), state_text, at
                    )
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"{model}: the page for stream {stream!r} was not stored "
                    f"(rolled back, nothing written): {exc}"
                ) from exc
            # Remembered only once committed: a rolled-back first page must not hide the mapping.
            if state_text is not None:
                self._streams_seen.add((model, stream))
            return changes

    def _commit(
        self,
        stream: str,
        model: str,
        promoted: tuple[str, ...],
        page: list[Incoming],
        removals: list[str],
        state_text: str | None,
        at: str,
    ) -> list[Change]:
        seq = self._max_seq()
        changes: list[Change] = []
        rows: list[ChangeRow] = []
        for item, old in self._upsert(model, promoted, page, at) if page else []:
            seq += 1
            if old is None:
                change = Change(seq, model, item.id, "added", sorted(item.record), None, item.record, at)
                rows.append(change_row(change, after_text=item.text))  # already canonical: not re-encoded
            else:
                fields, before, after = diff(old, item.record)
                change = Change(seq, model, item.id, "updated", fields, before, after, at)
                rows.append(change_row(change))
            changes.append(change)
        for record_id, record in self._remove(model, removals, at):
            seq += 1
            changes.append(Change(seq, model, record_id, "removed", [], record, None, at))
            rows.append(change_row(changes[-1]))
        if rows:
            self._insert_changes(rows)
        self._write_state(stream, state_text, at)
        self._note_sync(model, stream if state_text is not None else None, at)
        return changes

    def save_state(self, stream: str, state: Mapping[str, Any], *, now: datetime) -> None:
        if not isinstance(stream, str) or not stream:
            raise StoreError("save_state needs a stream name (the key of its sync state)")
        try:
            state_text = canonical_json(dict(state))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"stream {stream!r}: its state is not plain JSON ({exc})") from exc
        with self._lock, self._transaction():
            self._write_state(stream, state_text, utc_text(now))

    def _max_seq(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(seq), 0) FROM change_log")[0][0])

    def _remove(self, model: str, ids: list[str], at: str) -> list[tuple[str, dict[str, Any]]]:
        removed: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self._rows(
                f"UPDATE {quote(model)} SET deleted_at = ? WHERE deleted_at IS NULL AND id IN ({marks}) "
                "RETURNING id, data",
                (at, *chunk),
            )
            removed.update((record_id, self._json(data)) for record_id, data in rows)
        return [(record_id, removed[record_id]) for record_id in ids if record_id in removed]

    def _write_state(self, stream: str, state_text: str | None, at: str) -> None:
        if state_text is None:
            return
        self._rows(
            "INSERT INTO sync_state (stream, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (stream, state_text, at),
        )

    def _note_sync(self, model: str, stream: str | None, at: str) -> None:
        self._rows("UPDATE store_models SET last_sync = ? WHERE model = ?", (at, model))
        # Only a stream whose state is this model's position is listed as the model's cursor; one
        # that just drops records in (the event log's removals) is not.
        if stream is not None and (model, stream) not in self._streams_seen:
            self._rows(
                "INSERT INTO model_streams (model, stream) VALUES (?, ?) "
                "ON CONFLICT (model, stream) DO NOTHING",
                (model, stream),
            )

    # --- reads ---

    def state(self, stream: str) -> dict[str, Any] | None:
        with self._lock:
            rows = self._rows("SELECT state FROM sync_state WHERE stream = ?", (stream,))
        return dict(self._json(rows[0][0])) if rows else None

    def all_states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._rows("SELECT stream, state FROM sync_state ORDER BY stream")
        return {stream: dict(self._json(state)) for stream, state in rows}

    def live_ids(self, model: str) -> Iterator[str]:
        """Live ids in code-point order (Python's ``sorted``), fetched in batches so a model of any size
        streams, and so commits may interleave with the walk."""
        self._spec(model)
        last = ""
        while True:
            with self._lock:
                batch = self._rows(
                    f"SELECT id FROM {quote(model)} WHERE deleted_at IS NULL AND id > ? "
                    f"ORDER BY id LIMIT {_ID_BATCH}",
                    (last,),
                )
            for (record_id,) in batch:
                yield record_id
            if len(batch) < _ID_BATCH:
                return
            last = batch[-1][0]

    def recent_ids(self, model: str, since: datetime) -> set[str]:
        self._spec(model)
        with self._lock:
            rows = self._rows(
                f"SELECT id FROM {quote(model)} WHERE deleted_at IS NULL AND last_seen >= ?",
                (utc_text(since),),
            )
        return {record_id for (record_id,) in rows}

    def get(self, model: str, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        self._spec(model)
        live = "" if include_deleted else " AND deleted_at IS NULL"
        with self._lock:
            rows = self._rows(f"SELECT data FROM {quote(model)} WHERE id = ?{live}", (record_id,))
        return dict(self._json(rows[0][0])) if rows else None

    def changes(self, since: int = 0, *, model: str | None = None, limit: int | None = None) -> list[Change]:
        sql = f"SELECT {CHANGE_COLUMNS} FROM change_log WHERE seq > ?"
        params: list[Any] = [since]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        sql += " ORDER BY seq"
        if limit is not None:
            if limit < 1:
                raise StoreError(f"changes(limit={limit}): the limit must be at least 1")
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._rows(sql, params)
        return [
            Change(
                int(seq),
                model_name,
                record_id,
                kind,
                list(self._json(fields)),
                None if before is None else dict(self._json(before)),
                None if after is None else dict(self._json(after)),
                at,
            )
            for seq, model_name, record_id, kind, fields, before, after, at in rows
        ]

    def last_seq(self) -> int:
        with self._lock:
            return self._max_seq()

    def models(self) -> list[ModelInfo]:
        with self._lock:
            self._load_models()
            infos = []
            for model, last_sync in self._rows("SELECT model, last_sync FROM store_models ORDER BY model"):
                live, deleted = self._rows(
                    "SELECT COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN 1 ELSE 0 END), 0), "
                    f"COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END), 0) FROM {quote(model)}"
                )[0]
                states = self._rows(
                    "SELECT s.stream, s.state FROM model_streams m JOIN sync_state s ON s.stream = m.stream "
                    "WHERE m.model = ? ORDER BY s.stream",
                    (model,),
                )
                cursor = {stream: self._json(state) for stream, state in states} or None
                infos.append(ModelInfo(model, int(live), int(deleted), last_sync, cursor))
        return infos

    # --- views ---

    def rebuild_view(self, model: str, view: str, columns: Sequence[ViewColumn]) -> None:
        with self._lock:
            promoted = self._spec(model)
            check_view_name(view, (*STORE_TABLES, *self._promoted))
            statements, _names = view_sql(self.dialect, model, view, promoted, columns)
            try:
                with self._transaction():
                    for statement in statements:
                        self._rows(statement)
            except StoreError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"view {view!r} over {model} could not be built (nothing changed): {exc}"
                ) from exc
