"""The write ledger: what a batch meant to write and what it did, so creates happen at most once.

Close has no idempotency keys: a create whose answer was lost may or may not exist. Before each
create the ledger commits an *intent* row keyed by (batch id, record key, action); after it, the
outcome and the created id. A re-run of the batch skips completed records, and a record whose
intent has no outcome (the process died, or the answer was lost) is looked up in Close by its
match key before anything is re-sent.

``Ledger`` is the interface (a Postgres ledger can implement it later); ``SqliteLedger`` is the
default, a stdlib SQLite file in WAL mode.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["DONE_STATUSES", "Ledger", "LedgerEntry", "SqliteLedger"]

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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_ledger (
    batch_id   TEXT NOT NULL,
    record_key TEXT NOT NULL,
    action     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    row_number INTEGER,
    intent_at  REAL,
    status     TEXT,
    close_ids  TEXT NOT NULL DEFAULT '[]',
    error      TEXT,
    updated_at REAL NOT NULL,
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


class SqliteLedger:
    """The ledger in a SQLite file (``":memory:"`` for a run that need not survive the process)."""

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (only an OS crash can lose the last commits).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteLedger({self.path!r})"

    def entries(self, batch_id: str, action: str, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            part = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            # Only "?" placeholders are formatted in; every value is a bound parameter.
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM action_ledger "  # noqa: S608
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
        self._db.execute(_UPSERT, (batch_id, key, action, run_id, row, at, None, "[]", None, at))

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
        self._db.execute(
            _UPSERT,
            (batch_id, key, action, run_id, row, None, status, json.dumps(list(close_ids)), error, at),
        )

    def recorded(self, close_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for close_id in dict.fromkeys(close_ids):
            # close_ids holds a JSON list: look for the quoted id, then read the lists that have it.
            rows = self._db.execute(
                "SELECT close_ids FROM action_ledger WHERE instr(close_ids, ?) > 0", [json.dumps(close_id)]
            )
            if any(close_id in json.loads(ids) for (ids,) in rows):
                found.add(close_id)
        return found

    def close(self) -> None:
        self._db.close()
