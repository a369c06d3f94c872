"""The embedded store: one SQLite file in WAL mode.

WAL lets the read-only query connection (and other processes) read while a sync writes; with
synchronous=NORMAL a commit costs no fsync, and a power loss can lose only the last commits, never
corrupt the file or split a page from its cursor, which is what a resumable sync needs.
"""

# Identifiers in these SQL strings pass through quote() (or are validated names); values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from closeflow.sync.store._base import _CHUNK, CHANGE_COLUMNS, ChangeRow, SqlStore, Written
from closeflow.sync.store._guard import (
    DEFAULT_STATEMENT_TIMEOUT,
    check_read_only_sql,
    hidden_names,
    not_readable,
)
from closeflow.sync.store._names import quote
from closeflow.sync.store._records import Incoming
from closeflow.sync.store._types import Dialect, StoreError

# The read-only path admits only reading: whatever the SQL text says (PRAGMA, ATTACH, a write inside
# a CTE), SQLite asks this authorizer while compiling and the statement is refused before it runs.
_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


def _read_only(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _read_only_except(hidden: frozenset[str], refused: list[str]) -> Callable[..., int]:
    """``_read_only``, also denying reads of the ``hidden`` tables (noted in ``refused``).

    SQLite reports every table and view a statement reads, however it is reached (a join, a
    subquery, a CTE, a view over the table, ``count(*)`` with no column), as SQLITE_READ of it."""

    def authorize(action: int, table: str | None, *_args: Any) -> int:
        if action == sqlite3.SQLITE_READ and table is not None and table.lower() in hidden:
            refused.append(table)
            return sqlite3.SQLITE_DENY
        return _read_only(action)

    return authorize


class SQLiteStore(SqlStore):
    dialect: Dialect = "sqlite"
    json_type: ClassVar[str] = "TEXT"
    id_type: ClassVar[str] = "TEXT"
    seq_type: ClassVar[str] = "INTEGER"

    def __init__(
        self, path: str, *, create: bool = True, statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    ) -> None:
        super().__init__()
        if not statement_timeout > 0:
            raise StoreError(f"statement_timeout={statement_timeout!r}: give a positive number of seconds")
        self.statement_timeout = float(statement_timeout)
        if path == ":memory:":
            # A private in-memory database both connections can see (the query path needs its own).
            self._uri = f"file:closeflow-{uuid.uuid4().hex}?mode=memory&cache=shared"
            self._reader_uri = self._uri
            self.path = path
        else:
            resolved = Path(path).expanduser().resolve()
            if not resolved.parent.is_dir():
                raise StoreError(
                    f"cannot create the store {path!r}: the folder {resolved.parent} does not exist"
                )
            if not create and not resolved.is_file():
                raise StoreError(
                    f"no store at {path!r} ({resolved} does not exist); check the path, "
                    "or run `closeflow sync` to create it"
                )
            self._uri = resolved.as_uri() + ("?mode=rwc" if create else "?mode=rw")
            self._reader_uri = resolved.as_uri() + "?mode=ro"
            self.path = str(resolved)
        try:
            self._conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 10000")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {path!r}: {exc}") from exc
        self._reader: sqlite3.Connection | None = None
        if not create and not self._rows("SELECT 1 FROM sqlite_master WHERE name = 'store_meta'"):
            self._conn.close()
            raise StoreError(f"{path!r} is not a closeflow store (no store_meta table); check the path")
        self._create_schema()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._conn.in_transaction:  # nested use (ensure_models inside a caller's transaction)
            yield
            return
        # IMMEDIATE takes the write lock up front, so seq allocation (MAX(seq) + 1) cannot race.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _json(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def _extra_schema(self) -> list[str]:
        return []

    def _upsert(self, model: str, promoted: tuple[str, ...], page: list[Incoming], now: str) -> list[Written]:
        table = quote(model)
        known: dict[str, tuple[str, bool]] = {}
        for start in range(0, len(page), _CHUNK):
            chunk = [item.id for item in page[start : start + _CHUNK]]
            marks = ", ".join("?" for _ in chunk)
            for record_id, hash_, deleted in self._rows(
                f"SELECT id, hash, deleted_at IS NOT NULL FROM {table} WHERE id IN ({marks})", chunk
            ):
                known[record_id] = (hash_, bool(deleted))
        changed = [item for item in page if known.get(item.id) != (item.hash, False)]
        if not changed:
            return []
        updated_ids = [item.id for item in changed if item.id in known and not known[item.id][1]]
        old: dict[str, Any] = {}
        for start in range(0, len(updated_ids), _CHUNK):
            chunk = updated_ids[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            old.update(self._rows(f"SELECT id, data FROM {table} WHERE id IN ({marks})", chunk))
        columns = ["id", "data", "hash", *map(quote, promoted), "first_seen", "last_seen", "deleted_at"]
        refresh = ", ".join(
            f"{column} = excluded.{column}" for column in ["data", "hash", *map(quote, promoted)]
        )
        self._many(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT (id) DO UPDATE SET {refresh}, last_seen = excluded.last_seen, deleted_at = NULL",
            [(item.id, item.text, item.hash, *item.promoted, now, now, None) for item in changed],
        )
        return [(item, json.loads(old[item.id]) if item.id in old else None) for item in changed]

    def _insert_changes(self, rows: Sequence[ChangeRow]) -> None:
        self._many(f"INSERT INTO change_log ({CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int | None = None,
        hidden: Collection[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        names_hidden = hidden_names(hidden, "sqlite")
        check_read_only_sql(sql, "sqlite", time_budget=0)  # the authorizer decides what is hidden
        refused: list[str] = []
        with self._lock:
            reader = self._reader_connection()
            # SQLite has no statement timeout (a recursive WITH can run forever): the progress handler
            # aborts the statement once its time is up, as Postgres's statement_timeout does.
            deadline = time.monotonic() + self.statement_timeout
            reader.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                if names_hidden:
                    # Setting an authorizer expires every prepared statement, so a statement cached
                    # by an earlier query is compiled (and authorized) again under this one, and after.
                    reader.set_authorizer(_read_only_except(names_hidden, refused))
                cursor = reader.execute(sql, tuple(params))
                if max_rows is None:
                    rows = cursor.fetchall()
                else:  # fetchmany(0) would mean "the default size" to the DB-API
                    rows = cursor.fetchmany(max_rows) if max_rows > 0 else []
                names = [column[0] for column in cursor.description or ()]
                cursor.close()
            except sqlite3.Error as exc:
                if refused:
                    raise not_readable(refused[0]) from None
                if time.monotonic() > deadline and "interrupted" in str(exc):
                    raise StoreError(
                        f"the query ran longer than its {self.statement_timeout:g} s limit and was cancelled"
                    ) from None
                raise _query_error(sql, exc) from exc
            finally:
                reader.set_progress_handler(None, 0)
                if names_hidden:
                    reader.set_authorizer(_read_only)
                if reader.in_transaction:
                    reader.execute("ROLLBACK")
        return names, rows

    def _reader_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = sqlite3.connect(
                self._reader_uri, uri=True, isolation_level=None, check_same_thread=False
            )
            self._reader.execute("PRAGMA busy_timeout = 10000")
            self._reader.execute("PRAGMA query_only = ON")
            self._reader.set_authorizer(_read_only)
        return self._reader

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._conn.close()


def _query_error(sql: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "one statement at a time" in text:
        return StoreError(f"the SQL query path runs one statement at a time ({text}); send them separately")
    if "not authorized" in text or "readonly" in text or "query_only" in text:
        verb = (sql.strip().split() or ["this"])[0].upper()
        return StoreError(
            f"the SQL query path is read-only: {verb} statements are refused ({text}); "
            "use SELECT (or WITH … SELECT) to read the data models and the change log"
        )
    return StoreError(f"the query failed: {text}")
