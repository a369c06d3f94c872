"""The write ledger: what a batch meant to write and what it did, so creates happen at most once.

Close has no idempotency keys: a create whose answer was lost may or may not exist. Before each
create the ledger commits an *intent* row keyed by (batch id, record key, action); after it, the
outcome and the created id. A re-run of the batch skips completed records, and a record whose
intent has no outcome (the process died, or the answer was lost) is looked up in Close by its
match key before anything is re-sent.

``Ledger`` is the interface. ``SqlLedger`` holds its SQL, the subset SQLite and Postgres share (``?``
placeholders are rewritten for psycopg); ``SqliteLedger`` (a stdlib SQLite file in WAL mode, the
default) and ``PostgresLedger`` (beside the store and the run ledger, so runners on several machines
share it) only connect. Every write is one statement committed before it returns, and the row's key
is the table's primary key, so two runners recording the same intent leave one row, never an error.
"""

# Only "?" placeholders are formatted into statements; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DONE_STATUSES",
    "Ledger",
    "LedgerEntry",
    "PostgresLedger",
    "SqliteLedger",
    "open_write_ledger",
]

DEFAULT_PATH = "closeflow.db"
# Outcomes a re-run does not repeat; failed and skipped records are tried again.
DONE_STATUSES = frozenset({"created", "updated", "unchanged", "deleted"})


@dataclass(frozen=True)
class LedgerEntry:
    batch_id: str
    record_key: str
    action: str
    run_id: str
    row: int | None
    intent_at: float | None
    status: str | None  # None: intent recorded, outcome unknown
    close_ids: tuple[str, ...]
    error: str | None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def pending(self) -> bool:
        """An intent without an outcome: the write may or may not have happened."""
        return self.status is None and self.intent_at is not None


class Ledger(Protocol):
    def entries(self, batch_id: str, action: str, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        """The ledger rows of these record keys (missing keys have none)."""
        ...

    def record_intent(
        self, batch_id: str, key: str, action: str, *, run_id: str, row: int | None, at: float
    ) -> None:
        """Durably note that a create is about to be sent (committed before returning)."""
        ...

    def record_outcome(
        self,
        batch_id: str,
        key: str,
        action: str,
        *,
        run_id: str,
        row: int | None,
        status: str,
        close_ids: Sequence[str],
        error: str | None,
        at: float,
    ) -> None: ...

    def recorded(self, close_ids: Sequence[str]) -> set[str]:
        """Which of these Close ids some ledger row records as its outcome (in any batch)."""
        ...

    def close(self) -> None: ...


# DOUBLE PRECISION, not REAL: Postgres' REAL is 4 bytes, too coarse for epoch seconds (SQLite reads
# both as its 8-byte REAL).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_ledger (
    batch_id   TEXT NOT NULL,
    record_key TEXT NOT NULL,
    action     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    row_number INTEGER,
    intent_at  DOUBLE PRECISION,
    status     TEXT,
    close_ids  TEXT NOT NULL DEFAULT '[]',
    error      TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (batch_id, record_key, action)
)
"""
_UPSERT = """
INSERT INTO action_ledger
    (batch_id, record_key, action, run_id, row_number, intent_at, status, close_ids, error, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (batch_id, record_key, action) DO UPDATE SET
    run_id = excluded.run_id, row_number = excluded.row_number,
    intent_at = COALESCE(excluded.intent_at, action_ledger.intent_at),
    status = excluded.status, close_ids = excluded.close_ids, error = excluded.error,
    updated_at = excluded.updated_at
"""
_COLUMNS = "batch_id, record_key, action, run_id, row_number, intent_at, status, close_ids, error"
_CHUNK = 500  # stay under SQLite's bound-parameter limit
_LIKE_CHUNK = 100  # patterns OR-ed in one statement (SQLite bounds the expression depth)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlLedger:
    """The ledger's SQL over a DB-API connection; a backend supplies ``_rows`` and ``close``."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _create_table(self) -> None:
        self._rows(_SCHEMA)

    def entries(self, batch_id: str, action: str, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            part = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._rows(
                f"SELECT {_COLUMNS} FROM action_ledger "
                f"WHERE batch_id = ? AND action = ? AND record_key IN ({marks})",
                [batch_id, action, *part],
            )
            for row in rows:
                found[row[1]] = LedgerEntry(
                    batch_id=row[0],
                    record_key=row[1],
                    action=row[2],
                    run_id=row[3],
                    row=row[4],
                    intent_at=row[5],
                    status=row[6],
                    close_ids=tuple(json.loads(row[7])),
                    error=row[8],
                )
        return found

    def record_intent(
        self, batch_id: str, key: str, action: str, *, run_id: str, row: int | None, at: float
    ) -> None:
        self._rows(_UPSERT, (batch_id, key, action, run_id, row, at, None, "[]", None, at))

    def record_outcome(
        self,
        batch_id: str,
        key: str,
        action: str,
        *,
        run_id: str,
        row: int | None,
        status: str,
        close_ids: Sequence[str],
        error: str | None,
        at: float,
    ) -> None:
        self._rows(
            _UPSERT,
            (batch_id, key, action, run_id, row, None, status, json.dumps(list(close_ids)), error, at),
        )

    def recorded(self, close_ids: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(close_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _LIKE_CHUNK):
            part = wanted[start : start + _LIKE_CHUNK]
            # close_ids holds a JSON list: find the rows whose text has a quoted id (LIKE, as both
            # dialects have it; SQLite's ignores ASCII case), then read their lists for exact ids.
            where = " OR ".join(["close_ids LIKE ? ESCAPE '\\'"] * len(part))
            patterns = [f"%{_like_escaped(json.dumps(close_id))}%" for close_id in part]
            for (ids,) in self._rows(f"SELECT close_ids FROM action_ledger WHERE {where}", patterns):
                found.update(json.loads(ids))
        return found & set(wanted)


class SqliteLedger(SqlLedger):
    """The ledger in a SQLite file (``":memory:"`` for a run that need not survive the process)."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (only an OS crash can lose the last commits).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._create_table()

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        self._db.close()


class PostgresLedger(SqlLedger):
    """The ledger in Postgres, in ``schema`` (or the URL's ``?schema=NAME``, created if missing;
    without one, the first schema of the ``search_path``): where ``--postgres`` keeps the store and
    the run ledger, so every runner on that database sees every intent."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        import psycopg

        from closeflow.sync.store._postgres import connect, redact_url, split_schema, use_schema

        url, url_schema = split_schema(url)
        self.schema = url_schema if schema is None else schema
        self._shown = redact_url(url)
        self._db = connect(url, failure="cannot open the write ledger")
        use_schema(self._db, self.schema)
        # Runners starting at once may both create the table: then it exists, as wanted.
        with suppress(psycopg.errors.UniqueViolation):
            self._create_table()

    def __repr__(self) -> str:
        return f"PostgresLedger({self._shown!r}, schema={self.schema!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Without parameters psycopg reads the text as is (the DDL's literals stay untouched).
        cursor = self._db.execute(sql.replace("?", "%s"), tuple(params)) if params else self._db.execute(sql)
        return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        self._db.close()


def open_write_ledger(target: str | Path | None = None, *, schema: str | None = None) -> Ledger:
    """The write ledger in the database at ``target``: a SQLite path, ``sqlite:///path`` or
    ``:memory:``, or ``postgresql://…[?schema=NAME]`` (the forms ``closeflow.sync.open_store`` and
    ``closeflow.plays.open_run_ledger`` take, so one target can hold all three). ``StoreError`` names
    a target it cannot open."""
    from closeflow.sync.store import database_target

    kind, found = database_target(None if target is None else str(target), "write ledger", schema=schema)
    return PostgresLedger(found, schema=schema) if kind == "postgres" else SqliteLedger(found)
