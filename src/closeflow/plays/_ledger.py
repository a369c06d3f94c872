"""The run ledger on SQLite or Postgres: the two backends of ``SqlRunLedger`` and ``open_run_ledger``.

What a ledger stores and how is in ``_ledger_sql.py``; the records it returns are in ``_runs.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from closeflow._clock import Clock
from closeflow.plays._ledger_sql import SqlRunLedger
from closeflow.plays._runs import NodeRecord as NodeRecord  # imported from here by tests
from closeflow.sync.store import database_target
from closeflow.sync.store._names import quote


class SqliteRunLedger(SqlRunLedger):
    def __init__(self, path: str, *, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._depth = 0
        self._create_schema()

    def __repr__(self) -> str:
        return f"SqliteRunLedger({self.path!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def _columns(self, table: str) -> set[str]:
        return {str(row[1]) for row in self._rows(f"PRAGMA table_info({quote(table)})")}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock up front, so two runners serialise instead of failing
        # to upgrade a read lock half-way through an enrolment.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class PostgresRunLedger(SqlRunLedger):
    def __init__(self, url: str, *, schema: str | None = None, clock: Clock | None = None) -> None:
        import psycopg

        from closeflow.sync.store._postgres import connect, redact_url, split_schema, use_schema

        super().__init__(clock)
        url, url_schema = split_schema(url)
        self._shown = redact_url(url)
        self.schema = schema if schema is not None else url_schema
        self._conn = connect(url)
        self._conn.prepare_threshold = None
        use_schema(self._conn, self.schema)
        with suppress(psycopg.errors.UniqueViolation):  # two runners creating the tables at once
            self._create_schema()

    def __repr__(self) -> str:
        return f"PostgresRunLedger({self._shown!r}, schema={self.schema!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = (
            self._conn.execute(sql.replace("?", "%s"), tuple(params)) if params else self._conn.execute(sql)
        )
        return cursor.fetchall() if cursor.description else []

    def _columns(self, table: str) -> set[str]:
        rows = self._rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema()",
            (table,),
        )
        return {str(row[0]) for row in rows}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def close(self) -> None:
        self._conn.close()


def open_run_ledger(
    target: str | None = None, *, schema: str | None = None, clock: Clock | None = None
) -> SqlRunLedger:
    """The run ledger in the database at ``target`` (same forms as ``closeflow.sync.open_store``:
    a path, ``sqlite:///path``, ``:memory:``, or ``postgresql://…[?schema=NAME]``)."""
    kind, target = database_target(target, "run ledger", schema=schema)
    if kind == "postgres":
        return PostgresRunLedger(target, schema=schema, clock=clock)
    return SqliteRunLedger(target, clock=clock)
