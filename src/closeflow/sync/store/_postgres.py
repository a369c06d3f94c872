"""The scale-out store: Postgres through psycopg 3.

A page travels as one COPY into a session temp table and one statement that upserts only rows whose
hash differs (or that were tombstoned) and hands back their previous value, so an unchanged page costs
a COPY and an index probe per record and writes nothing. Writers of one schema take a transaction-level
advisory lock: change-log seqs are then allocated gap-free and become visible in seq order, which is
what lets a consumer read the log by offset without ever skipping a row committed late.
"""

# Identifiers in these SQL strings pass through quote() (or are validated names); values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from closeflow.sync.store._base import CHANGE_COLUMNS, ChangeRow, SqlStore, Written
from closeflow.sync.store._guard import (
    DEFAULT_STATEMENT_TIMEOUT,
    check_read_only_sql,
    hidden_names,
    not_readable,
)
from closeflow.sync.store._names import MAX_IDENTIFIER_BYTES, quote
from closeflow.sync.store._pg_access import (
    grant_read_role,
    hidden_relation,
    hidden_word,
    query_error,
    query_role,
)
from closeflow.sync.store._records import Incoming, canonical_json
from closeflow.sync.store._types import Dialect, StoreError
from closeflow.sync.store._views import POSTGRES_FUNCTIONS

_LOCK_CLASS = 0x0C10_5EF1  # advisory-lock namespace for closeflow writers; the schema picks the key


def redact_url(url: str) -> str:
    """The connection URL without its password, for messages and reprs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"{user}@{host}"
    query = [(key, "***" if key.lower() == "password" else value) for key, value in parse_qsl(parts.query)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


_OWN_PARAMS = ("schema", "read_role")  # closeflow's, not libpq's: taken out before connecting


def split_params(url: str) -> tuple[str, dict[str, str]]:
    """Take closeflow's own ``schema=`` and ``read_role=`` parameters out of the URL (libpq would
    reject them)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in query if key in _OWN_PARAMS}
    rest = urlencode([(key, value) for key, value in query if key not in _OWN_PARAMS])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), own


def connect(
    url: str, *, autocommit: bool = True, failure: str = "cannot connect to Postgres"
) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection to ``url``; a failure is a ``StoreError`` that starts with ``failure`` and shows
    the URL without its password."""
    try:
        return psycopg.connect(url, autocommit=autocommit)
    except psycopg.Error as exc:
        raise StoreError(
            f"{failure} at {redact_url(url)}: {exc}; check the URL "
            "(postgresql://user@host:port/database) and that the server is running"
        ) from None


def use_schema(conn: psycopg.Connection[tuple[Any, ...]], schema: str | None, *, create: bool = True) -> None:
    """Work in ``schema`` (created first when ``create``); ``None`` keeps the search_path's first.
    Two processes may create it at the same moment: then it exists, which is all that is needed."""
    if schema is None:
        return
    if create:
        with suppress(psycopg.errors.UniqueViolation):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
    conn.execute(f"SET search_path TO {quote(schema)}")


def split_schema(url: str) -> tuple[str, str | None]:
    """The URL without closeflow's own parameters, and its ``schema=`` if any."""
    url, own = split_params(url)
    return url, own.get("schema")


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _without_nul_text(text: str | None) -> str | None:
    # jsonb and text columns cannot hold U+0000; rather than stall a sync on one record, store U+FFFD
    # (the hash still covers the original, so the record is not seen as changed next time).
    if text is None or "\\u0000" not in text:
        return text
    return canonical_json(_without_nul(json.loads(text)))


class PostgresStore(SqlStore):
    dialect: Dialect = "postgres"
    json_type: ClassVar[str] = "JSONB"
    id_type: ClassVar[str] = 'TEXT COLLATE "C"'  # byte order = Python's sorted(), for live_ids()
    seq_type: ClassVar[str] = "BIGINT"

    def __init__(
        self,
        url: str,
        schema: str | None = None,
        *,
        read_role: str | None = None,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        create: bool = True,
    ) -> None:
        super().__init__()
        url, own = split_params(url)
        self._url = url
        self.schema = schema if schema is not None else own.get("schema")
        self.read_role = read_role if read_role is not None else own.get("read_role")
        if self.read_role is not None and (not self.read_role or "\x00" in self.read_role):
            raise StoreError(f"read_role {self.read_role!r} must be a role name (non-empty, no NUL)")
        if not statement_timeout > 0:
            raise StoreError(f"statement_timeout={statement_timeout!r}: give a positive number of seconds")
        self.statement_timeout = float(statement_timeout)
        if self.schema is not None and (
            not self.schema or "\x00" in self.schema or len(self.schema.encode()) > MAX_IDENTIFIER_BYTES
        ):
            raise StoreError(f"Postgres schema name {self.schema!r} must be 1–63 bytes without NUL")
        self._conn = self._connect(autocommit=True)
        # psycopg would prepare a statement run 5 times; a prepared page upsert keeps the plan made for
        # the temp table as first seen and, as the model table grows, that plan scans all of it.
        self._conn.prepare_threshold = None
        use_schema(self._conn, self.schema, create=create)
        if not create and self._rows("SELECT to_regclass('store_meta')") == [(None,)]:
            self._conn.close()
            where = f"schema {self.schema!r}" if self.schema is not None else "the search_path"
            raise StoreError(
                f"no closeflow store in {where} at {redact_url(self._url)}; check the URL's "
                "?schema=, or run `closeflow sync` to create it"
            )
        self._reader: psycopg.Connection[tuple[Any, ...]] | None = None
        self._query_role: str | None = None  # checked on the query path's first use
        self._create_schema()
        if self.read_role is not None:
            grant_read_role(self._conn, self.read_role)

    def __repr__(self) -> str:
        role = f", read_role={self.read_role!r}" if self.read_role is not None else ""
        return f"PostgresStore({redact_url(self._url)!r}, schema={self.schema!r}{role})"

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[tuple[Any, ...]]:
        return connect(self._url, autocommit=autocommit)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # Only parameterised statements are rewritten: DDL may hold a literal "?" (a regex, a view
        # column called "Is VIP?"), and without parameters psycopg leaves "%" alone too.
        if params:
            cursor = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        else:
            cursor = self._conn.execute(sql)
        return cursor.fetchall() if cursor.description else []

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_LOCK_CLASS,))
            yield

    def _json(self, value: Any) -> Any:
        return value  # psycopg decodes jsonb already

    def _extra_schema(self) -> list[str]:
        return list(POSTGRES_FUNCTIONS)

    def _upsert(self, model: str, promoted: tuple[str, ...], page: list[Incoming], now: str) -> list[Written]:
        table = quote(model)
        incoming = f"closeflow_incoming_{model}_{len(promoted)}"
        slots = [f"p{n}" for n in range(len(promoted))]
        self._rows(
            f"CREATE TEMP TABLE IF NOT EXISTS {incoming} "
            f'(id TEXT COLLATE "C", data TEXT, hash TEXT{"".join(f", {slot} TEXT" for slot in slots)}) '
            "ON COMMIT DELETE ROWS"
        )
        with (
            self._conn.cursor() as cursor,
            cursor.copy(
                f"COPY {incoming} (id, data, hash{''.join(', ' + s for s in slots)}) FROM STDIN"
            ) as copy,
        ):
            for item in page:
                values = item.promoted
                if any(value is not None and "\x00" in value for value in values):
                    values = tuple(_without_nul(value) for value in values)
                copy.write_row((item.id, _without_nul_text(item.text), item.hash, *values))
        columns = ", ".join(
            ["id", "data", "hash", *map(quote, promoted), "first_seen", "last_seen", "deleted_at"]
        )
        refresh = ", ".join(
            f"{column} = EXCLUDED.{column}" for column in ["data", "hash", *map(quote, promoted)]
        )
        # Every part of one statement reads the same snapshot, so the final SELECT still sees each row
        # as it was before this INSERT: the previous values come back in the same round trip.
        # Unchanged rows are filtered out before the INSERT, so they are neither parsed into jsonb
        # nor row-locked by ON CONFLICT (which locks even when its WHERE is false).
        rows = self._rows(
            f"WITH written AS (INSERT INTO {table} AS t ({columns}) "
            f"SELECT i.id, i.data::jsonb, i.hash{''.join(', i.' + s for s in slots)}, ?, ?, NULL "
            f"FROM {incoming} i LEFT JOIN {table} o ON o.id = i.id "
            "WHERE o.id IS NULL OR o.hash <> i.hash OR o.deleted_at IS NOT NULL "
            f"ON CONFLICT (id) DO UPDATE SET {refresh}, last_seen = EXCLUDED.last_seen, deleted_at = NULL "
            "WHERE t.hash <> EXCLUDED.hash OR t.deleted_at IS NOT NULL RETURNING t.id) "
            "SELECT w.id, o.id IS NOT NULL AND o.deleted_at IS NULL, "
            "CASE WHEN o.deleted_at IS NULL THEN o.data END "
            f"FROM written w LEFT JOIN {table} o ON o.id = w.id",
            (now, now),
        )
        written = {record_id: old if was_live else None for record_id, was_live, old in rows}
        return [(item, written[item.id]) for item in page if item.id in written]

    def _insert_changes(self, rows: Sequence[ChangeRow]) -> None:
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY change_log ({CHANGE_COLUMNS}) FROM STDIN") as copy,
        ):
            for seq, model, record_id, kind, fields, before, after, at in rows:
                copy.write_row(
                    (
                        seq,
                        model,
                        record_id,
                        kind,
                        fields,
                        _without_nul_text(before),
                        _without_nul_text(after),
                        at,
                    )
                )

    def query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        max_rows: int | None = None,
        hidden: Collection[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        names_hidden = hidden_names(hidden, "postgres")
        verb = check_read_only_sql(sql, "postgres", time_budget=self.statement_timeout, hidden=names_hidden)
        # An EXPLAIN's rows are its plan: all of it is checked for hidden names, then cut to max_rows.
        whole_plan = bool(names_hidden) and verb == "explain"
        with self._lock:
            reader = self._reader_connection()
            try:
                with reader.cursor() as cursor:
                    # Both settings are LOCAL: the rollback below ends them with the transaction.
                    timeout_ms = max(1, round(self.statement_timeout * 1000))
                    cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                    if self._query_role is not None:
                        cursor.execute(f"SET LOCAL ROLE {quote(self._query_role)}")
                    # binary=True forces the extended protocol, which runs exactly one statement, so
                    # "COMMIT; DROP …" cannot step out of the read-only transaction.
                    cursor.execute(sql, tuple(params) or None, binary=True)
                    names = [column.name for column in cursor.description or ()]
                    if cursor.description is None:
                        rows: list[tuple[Any, ...]] = []
                    elif max_rows is None or whole_plan:
                        rows = cursor.fetchall()
                    else:  # fetchmany(0) would mean "the default size" to the DB-API
                        rows = cursor.fetchmany(max_rows) if max_rows > 0 else []
                    if names_hidden:
                        found = (
                            hidden_word(rows, names_hidden)
                            if whole_plan
                            else hidden_relation(cursor, sql, tuple(params) or None, names_hidden)
                        )
                        if found is not None:
                            raise not_readable(found)
                        rows = rows[:max_rows] if max_rows is not None else rows
            except psycopg.Error as exc:
                raise query_error(sql, exc, self.statement_timeout, self._query_role) from None
            finally:
                self._end_query(reader)
        return names, rows

    def _end_query(self, reader: psycopg.Connection[tuple[Any, ...]]) -> None:
        try:
            reader.rollback()
            # Session-level advisory locks outlive the transaction; one left behind would block
            # every later sync of this schema, so none survives a query.
            reader.execute("SELECT pg_advisory_unlock_all()")
            reader.rollback()
        except psycopg.Error:
            reader.close()
            self._reader = None

    def _reader_connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._reader is None or self._reader.closed:
            reader = self._connect(autocommit=False)
            try:
                self._query_role = query_role(reader, self.read_role)
                if self.schema is not None:
                    reader.execute(f"SET search_path TO {quote(self.schema)}")
                reader.commit()
            except BaseException:
                reader.close()
                raise
            reader.read_only = True  # every transaction starts with BEGIN READ ONLY
            self._reader = reader
        return self._reader

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self._conn.close()
