"""The run ledger's SQL: every play and tool run, its status, and each node attempt's input, output and error.

It lives in the same database as the sync store, in tables of its own (``play_runs``,
``play_run_nodes``, ``play_enrolments``, ``play_cursors``), so a runner needs one connection string.
Every status change and node record commits in its own transaction: a runner killed at any moment
leaves a history the interpreter can resume from. Enrolment uniqueness is a primary key, not a
check-then-insert, so two runners racing on one change enrol the record once. Driving a run is
guarded by a lease (``claim``): one conditional UPDATE, so two runners on one database never drive the
same run at once.

The SQL is the subset SQLite and Postgres share (``?`` placeholders are rewritten for psycopg); the
backends in ``_ledger.py`` supply the connection and transactions.
"""

# Table names are constants and identifiers pass through quote(); values are always parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from closeflow._clock import Clock, SystemClock
from closeflow.plays._runs import UNFINISHED, AlreadyRetried, NodeRecord, RunRecord, RunSource, RunStatus
from closeflow.plays._sandbox import size_of
from closeflow.sync.store import StoreError
from closeflow.sync.store._names import quote

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS play_runs (
        id TEXT PRIMARY KEY, play TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL,
        record_id TEXT, change_seq BIGINT, trigger_json TEXT, context_json TEXT NOT NULL,
        output_json TEXT, error TEXT, wake_at DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS play_runs_by_status ON play_runs (status, play)",
    """CREATE TABLE IF NOT EXISTS play_run_nodes (
        run_id TEXT NOT NULL, position INTEGER NOT NULL, node_id TEXT NOT NULL, attempt INTEGER NOT NULL,
        status TEXT NOT NULL, input_json TEXT, output_json TEXT, error TEXT, error_class TEXT,
        retryable INTEGER NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, position))""",
    """CREATE TABLE IF NOT EXISTS play_enrolments (
        play TEXT NOT NULL, enrol_key TEXT NOT NULL, record_id TEXT NOT NULL, change_seq BIGINT NOT NULL,
        mode TEXT NOT NULL, run_id TEXT, created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (play, enrol_key))""",
    "CREATE TABLE IF NOT EXISTS play_cursors (play TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
]
_RUN_COLUMNS = (
    "id, play, source, status, record_id, change_seq, trigger_json, context_json, output_json, error, "
    "wake_at, created_at, updated_at, retried_by"
)
# Columns added after the first release: (name, SQL type), added to older ledgers on open.
# ``lease_owner``/``lease_until``: which runner drives the run, and until when (see ``claim``).
_ADDED_RUN_COLUMNS = (
    ("retried_by", "TEXT"),
    ("lease_owner", "TEXT"),
    ("lease_until", "DOUBLE PRECISION"),
)
_NODE_COLUMNS = (
    "node_id, attempt, status, input_json, output_json, error, error_class, retryable, "
    "started_at, finished_at"
)


# A node output bigger than this is not stored whole (a JMESPath or HTTP answer can be huge).
MAX_STORED = 1_000_000


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    if size_of(value, MAX_STORED) > MAX_STORED:
        value = {"error": f"value over the run ledger's size cap ({MAX_STORED:,} characters); not stored"}
    return json.dumps(value, default=str, ensure_ascii=False)


def _load(text: Any) -> Any:
    return None if text is None else json.loads(text)


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:20]}"


class SqlRunLedger:
    """The ledger's logic over a DB-API connection; backends supply the connection and transactions."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()

    # -- backend hooks ------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError

    def _columns(self, table: str) -> set[str]:
        raise NotImplementedError

    def _create_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA:
                self._rows(statement)
            present = self._columns("play_runs")
            for name, sql_type in _ADDED_RUN_COLUMNS:
                if name not in present:
                    self._rows(f"ALTER TABLE play_runs ADD COLUMN {quote(name)} {sql_type}")

    # -- runs ----------------------------------------------------------------------------------
    def _insert_run(
        self,
        run_id: str,
        play: str,
        source: str,
        record_id: str | None,
        change_seq: int | None,
        trigger: dict[str, Any] | None,
        context: dict[str, Any],
    ) -> None:
        now = self.clock.now()
        self._rows(
            f"INSERT INTO play_runs ({_RUN_COLUMNS}) "
            "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, NULL)",
            (run_id, play, source, record_id, change_seq, _dump(trigger), _dump(context), now, now),
        )

    def create_run(
        self,
        *,
        play: str,
        source: RunSource,
        record_id: str | None,
        change_seq: int | None,
        trigger: dict[str, Any] | None,
        context: dict[str, Any],
        run_id: str | None = None,
        nodes: Sequence[NodeRecord] = (),
        retry_of: str | None = None,
    ) -> str:
        """A new ``pending`` run; ``run_id`` may be given when the caller needs a stable id (tool calls);
        ``nodes`` are outputs reused from an earlier run (replay), written in the same transaction.
        ``retry_of``: the run this one retries, marked ``retried_by`` in the same transaction;
        ``AlreadyRetried`` if another retry got there first."""
        run_id = run_id or new_run_id()
        with self._transaction():
            if retry_of is not None:
                claimed = self._rows(
                    "UPDATE play_runs SET retried_by = ? WHERE id = ? AND retried_by IS NULL RETURNING id",
                    (run_id, retry_of),
                )
                if not claimed:
                    by = self._rows("SELECT retried_by FROM play_runs WHERE id = ?", (retry_of,))
                    raise AlreadyRetried(retry_of, str(by[0][0]) if by else "?")
            self._insert_run(run_id, play, source, record_id, change_seq, trigger, context)
            for node in nodes:
                self._insert_node(run_id, node)
        return run_id

    @staticmethod
    def _enrol_key(record_id: str, change_seq: int, mode: str) -> str:
        if mode == "once":
            return record_id
        if mode == "every_change":
            return f"{record_id}@{change_seq}"
        raise StoreError(f"unknown enrolment mode {mode!r}: use 'once' or 'every_change'")

    def _try_enrol(self, play: str, record_id: str, change_seq: int, mode: str, run_id: str | None) -> bool:
        key = self._enrol_key(record_id, change_seq, mode)
        taken = self._rows(
            "INSERT INTO play_enrolments (play, enrol_key, record_id, change_seq, mode, run_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (play, enrol_key) DO NOTHING RETURNING play",
            (play, key, record_id, change_seq, mode, run_id, self.clock.now()),
        )
        return bool(taken)

    def enrol(self, play: str, record_id: str, change_seq: int, mode: str) -> bool:
        """Enrol a record (``once``: per record, ever; ``every_change``: per change); False if it was."""
        with self._transaction():
            return self._try_enrol(play, record_id, change_seq, mode, None)

    def enrolments(self, play: str) -> list[tuple[str, int, str]]:
        """The play's enrolments as (record_id, change_seq, mode), oldest first (a dry run copies them)."""
        rows = self._rows(
            "SELECT record_id, change_seq, mode FROM play_enrolments WHERE play = ? ORDER BY created_at",
            (play,),
        )
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def enrol_run(
        self,
        *,
        play: str,
        record_id: str,
        change_seq: int,
        mode: str,
        trigger: dict[str, Any] | None,
        context: dict[str, Any],
    ) -> str | None:
        """Enrol and create the run in one transaction (a crash cannot leave an enrolment without a
        run); None when the record was already enrolled."""
        run_id = new_run_id()
        with self._transaction():
            if not self._try_enrol(play, record_id, change_seq, mode, run_id):
                return None
            self._insert_run(run_id, play, "play", record_id, change_seq, trigger, context)
        return run_id

    def _run_from_row(self, row: tuple[Any, ...], nodes: list[NodeRecord]) -> RunRecord:
        (run_id, play, source, status, record_id, seq, trig, ctx, out, error, wake_at, created, updated) = (
            row[:13]
        )
        return RunRecord(
            id=run_id,
            play=play,
            source=source,
            status=status,
            record_id=record_id,
            change_seq=None if seq is None else int(seq),
            trigger=_load(trig),
            context=_load(ctx),
            error=error,
            created_at=float(created),
            updated_at=float(updated),
            wake_at=None if wake_at is None else float(wake_at),
            output=_load(out),
            retried_by=row[13],
            nodes=nodes,
        )

    def _nodes(self, run_id: str) -> list[NodeRecord]:
        rows = self._rows(
            f"SELECT {_NODE_COLUMNS} FROM play_run_nodes WHERE run_id = ? ORDER BY position", (run_id,)
        )
        return [
            NodeRecord(
                node_id=r[0],
                attempt=int(r[1]),
                status=r[2],
                input=_load(r[3]),
                output=_load(r[4]),
                error=r[5],
                error_class=r[6],
                retryable=bool(r[7]),
                started_at=float(r[8]),
                finished_at=float(r[9]),
            )
            for r in rows
        ]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._rows(f"SELECT {_RUN_COLUMNS} FROM play_runs WHERE id = ?", (run_id,))
        return self._run_from_row(rows[0], self._nodes(run_id)) if rows else None

    def runs(
        self,
        *,
        play: str | None = None,
        status: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Newest first, with their node records."""
        where, params = [], []
        for column, value in (("play", play), ("status", status), ("source", source)):
            if value is not None:
                where.append(f"{quote(column)} = ?")
                params.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT {_RUN_COLUMNS} FROM play_runs {clause} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, int(limit)),
        )
        return [self._run_from_row(row, self._nodes(row[0])) for row in rows]

    def unfinished(self) -> list[RunRecord]:
        """Runs a restarted runner must finish (pending, running, waiting), oldest first."""
        rows = self._rows(
            f"SELECT {_RUN_COLUMNS} FROM play_runs WHERE status IN (?, ?, ?) ORDER BY created_at, id",
            UNFINISHED,
        )
        return [self._run_from_row(row, self._nodes(row[0])) for row in rows]

    def record_node(self, run_id: str, node: NodeRecord) -> None:
        with self._transaction():
            self._insert_node(run_id, node)
            # A recorded attempt ends any wait: clearing wake_at here, in the same transaction, means a
            # crash before the next status change cannot leave a stale wake-up for a later delay node.
            self._rows(
                "UPDATE play_runs SET updated_at = ?, wake_at = NULL WHERE id = ?", (self.clock.now(), run_id)
            )

    def _insert_node(self, run_id: str, node: NodeRecord) -> None:
        position = self._rows("SELECT COUNT(*) FROM play_run_nodes WHERE run_id = ?", (run_id,))[0][0]
        self._rows(
            f"INSERT INTO play_run_nodes (run_id, position, {_NODE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                int(position),
                node.node_id,
                node.attempt,
                node.status,
                _dump(node.input),
                _dump(node.output),
                node.error,
                node.error_class,
                int(node.retryable),
                node.started_at,
                node.finished_at,
            ),
        )

    def set_status(
        self, run_id: str, status: RunStatus, *, error: str | None = None, wake_at: float | None = None
    ) -> None:
        with self._transaction():
            self._rows(
                "UPDATE play_runs SET status = ?, error = ?, wake_at = ?, updated_at = ? WHERE id = ?",
                (status, error, wake_at, self.clock.now(), run_id),
            )

    def set_output(self, run_id: str, output: dict[str, Any]) -> None:
        """A tool run's checked outputs."""
        with self._transaction():
            self._rows("UPDATE play_runs SET output_json = ? WHERE id = ?", (_dump(output), run_id))

    # -- leases -------------------------------------------------------------------------------
    def claim(self, run_id: str, owner: str, *, until: float, now: float) -> bool:
        """Take (or renew) the lease on a run until ``until``; False while another owner's lease
        has not expired at ``now``. One conditional UPDATE, so of two racing runners exactly one wins.
        Times are the claiming runner's clock: runners sharing a database need roughly synced clocks."""
        with self._transaction():
            taken = self._rows(
                "UPDATE play_runs SET lease_owner = ?, lease_until = ? WHERE id = ? "
                "AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?) RETURNING id",
                (owner, until, run_id, now, owner),
            )
        return bool(taken)

    def release(self, run_id: str, owner: str) -> None:
        """Give the lease back (only the owner's own: an expired lease may have passed on)."""
        with self._transaction():
            self._rows(
                "UPDATE play_runs SET lease_owner = NULL, lease_until = NULL "
                "WHERE id = ? AND lease_owner = ?",
                (run_id, owner),
            )

    def lease_holder(self, run_id: str) -> str | None:
        """Who holds (or last held, if it expired) the run's lease; None when nobody does."""
        rows = self._rows("SELECT lease_owner FROM play_runs WHERE id = ?", (run_id,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def take_over(self, run_id: str, owner: str, *, holder: str, until: float) -> bool:
        """Take the lease from ``holder`` before it expires (the caller knows the holder is dead);
        False if it changed hands meanwhile, so two runners taking over at once cannot both win."""
        with self._transaction():
            taken = self._rows(
                "UPDATE play_runs SET lease_owner = ?, lease_until = ? WHERE id = ? AND lease_owner = ? "
                "RETURNING id",
                (owner, until, run_id, holder),
            )
        return bool(taken)

    # -- change-log position -------------------------------------------------------------------
    def cursor(self, play: str) -> int:
        rows = self._rows("SELECT seq FROM play_cursors WHERE play = ?", (play,))
        return int(rows[0][0]) if rows else 0

    def set_cursor(self, play: str, seq: int) -> None:
        with self._transaction():
            self._rows(
                "INSERT INTO play_cursors (play, seq) VALUES (?, ?) "
                "ON CONFLICT (play) DO UPDATE SET seq = excluded.seq",
                (play, seq),
            )
