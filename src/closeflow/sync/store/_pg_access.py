"""Who the Postgres query path reads as, and what it may read.

A read-only transaction does not stop a superuser: ``COPY … TO PROGRAM`` and server-file functions
still run. So when the connected role is a superuser (or holds one of the server-program/-file
roles), the query path runs its SQL as a separate read-only role the user names (``read_role``),
entered with ``SET LOCAL ROLE`` per query, and refuses to run without one.

Tables a caller hides from one query are still granted to that role (another caller may read
them), so the plan of each such query is checked for them before its rows are handed back.
"""

# Identifiers in these SQL strings pass through quote(); values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from closeflow.sync.store._names import quote
from closeflow.sync.store._types import StoreError

# Membership in any of these lets a role run programs or touch files as the server's OS user.
_POWERFUL = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


def how_to_create(role: str = "closeflow_reader", schema: str = "public") -> str:
    name, space = quote(role), quote(schema)
    return (
        f"CREATE ROLE {name} NOLOGIN; GRANT USAGE ON SCHEMA {space} TO {name}; "
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {space} TO {name};"
    )


def _powers(conn: psycopg.Connection[tuple[Any, ...]], role_sql: str, params: tuple[Any, ...]) -> list[str]:
    """What makes the role unsafe to read as: superuser and the powerful roles it belongs to."""
    checks = ", ".join(f"pg_has_role(r.oid, '{power}', 'MEMBER')" for power in _POWERFUL)
    row = conn.execute(f"SELECT r.rolsuper, {checks} FROM pg_roles r WHERE {role_sql}", params).fetchone()
    if row is None:
        return []
    if row[0]:
        return ["superuser"]  # a superuser is a member of every role; listing them says nothing more
    return [name for name, held in zip(_POWERFUL, row[1:], strict=True) if held]


def _schema(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row is not None and row[0] is not None else "public"


def _check_role(conn: psycopg.Connection[tuple[Any, ...]], role: str) -> None:
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        raise StoreError(
            f"the read role {role!r} does not exist; create it as a superuser: "
            f"{how_to_create(role, _schema(conn))}"
        )
    powers = _powers(conn, "r.rolname = %s", (role,))
    if powers:
        raise StoreError(
            f"the read role {role!r} is not read-only ({', '.join(powers)}); "
            f"name a role with only SELECT grants, e.g. {how_to_create(schema=_schema(conn))}"
        )


def grant_read_role(conn: psycopg.Connection[tuple[Any, ...]], role: str) -> None:
    """Let ``role`` read this store's schema: the tables now, and those created later by this user
    (views are dropped and re-created on every rebuild, so a one-off GRANT would not last)."""
    _check_role(conn, role)
    schema = _schema(conn)
    try:
        with conn.transaction():
            conn.execute(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {quote(role)}")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote(schema)} TO {quote(role)}")
            conn.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {quote(schema)} GRANT SELECT ON TABLES TO {quote(role)}"
            )
    except psycopg.Error as exc:
        raise StoreError(
            f"cannot let the read role {role!r} read schema {schema!r} ({str(exc).strip()}); "
            f"as the schema's owner run: {how_to_create(role, schema)}"
        ) from None


def query_role(conn: psycopg.Connection[tuple[Any, ...]], read_role: str | None) -> str | None:
    """The role the query path reads as (None: the connected role itself, which is safe)."""
    if read_role is not None:
        _check_role(conn, read_role)
        member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (read_role,)).fetchone()
        if member is None or not member[0]:
            raise StoreError(
                f"the connected role may not SET ROLE {read_role!r}; as a superuser run: "
                f"GRANT {quote(read_role)} TO {quote(str(conn.info.user))};"
            )
        return read_role
    powers = _powers(conn, "r.rolname = current_user", ())
    if powers:
        raise StoreError(
            f"the SQL query path refuses to run as {conn.info.user!r} ({', '.join(powers)}: a query could "
            "run shell commands or read server files); name a read-only role with ?read_role=NAME in "
            f"the URL (or open_store(..., read_role=NAME)); create one as a superuser: {how_to_create()}"
        )
    return None


def query_error(sql: str, exc: psycopg.Error, timeout: float, role: str | None) -> StoreError:
    text = str(exc).strip()
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        verb = (sql.strip().split() or ["this"])[0].upper()
        return StoreError(
            f"the SQL query path is read-only: {verb} statements are refused ({text}); "
            "use SELECT (or WITH … SELECT) to read the data models and the change log"
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StoreError(f"the query ran longer than its {timeout:g} s limit and was cancelled ({text})")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege) and role is not None:
        return StoreError(
            f"the query failed: the read role {role!r} may not do that ({text}); "
            "it reads the store's tables and views only"
        )
    if "multiple commands" in text:
        return StoreError(f"the SQL query path runs one statement at a time ({text}); send them separately")
    return StoreError(f"the query failed: {text}")


def hidden_relation(
    cursor: psycopg.Cursor[tuple[Any, ...]], sql: str, params: Sequence[Any] | None, hidden: frozenset[str]
) -> str | None:
    """The first table or view in ``hidden`` the plan of ``sql`` scans (``None``: none).

    A view is planned as the tables under it, so a view over a hidden table is seen; a materialized
    view (a copy) or a function reading a table in its body is not."""
    cursor.execute(f"EXPLAIN (FORMAT JSON)\n{sql}", params, binary=True)
    row = cursor.fetchone()
    for name in _relations(row[0] if row is not None else None):
        if name.lower() in hidden:
            return name
    return None


def _relations(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if isinstance(name := plan.get("Relation Name"), str):
            yield name
        for value in plan.values():
            yield from _relations(value)
    elif isinstance(plan, list):
        for item in plan:
            yield from _relations(item)


_WORD = re.compile(r"[A-Za-z0-9_$]+")


def hidden_word(rows: Sequence[tuple[Any, ...]], hidden: frozenset[str]) -> str | None:
    """For an EXPLAIN statement, whose rows are a plan (any format): the first hidden name in it. Its
    row counts (EXPLAIN ANALYZE) would otherwise tell what a hidden table holds, one filter at a time."""
    for row in rows:
        for cell in row:
            text = cell if isinstance(cell, str) else json.dumps(cell, default=str)
            for word in _WORD.findall(text):
                if word.lower() in hidden:
                    return str(word)
    return None
