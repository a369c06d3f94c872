"""The data-model store: Close records per model, a change log, sync state and SQL views.

    store = open_store("closeflow.db")                       # or "postgresql://user@host/db?schema=crm"
    store.ensure_models([ModelSpec("leads", promoted=("date_updated", "status_id"))])
    changes = store.commit_page("leads", "leads", upserts=page, state={"cursor": …}, now=datetime.now(UTC))
    store.changes(since=last_seen_seq, model="leads")

One interface (``Store``), two backends: SQLite (embedded default) and Postgres (psycopg 3).
"""

from __future__ import annotations

from typing import Literal

from closeflow.sync.store._names import json_keys
from closeflow.sync.store._types import (
    Change,
    ChangeKind,
    ModelInfo,
    ModelSpec,
    Store,
    StoreError,
    ViewColumn,
    ViewType,
)

DEFAULT_PATH = "closeflow.db"


def database_target(
    target: str | None, what: str, *, schema: str | None = None
) -> tuple[Literal["sqlite", "postgres"], str]:
    """Where a store, run ledger or write ledger lives: ``("postgres", url)`` for
    ``postgresql://…``, else ``("sqlite", path)`` for a path, ``sqlite:///path`` or ``:memory:``
    (``None``: ``closeflow.db``). ``StoreError`` for another scheme, or a ``schema`` with SQLite."""
    target = DEFAULT_PATH if target is None else str(target)
    if target.startswith(("postgresql://", "postgres://")):
        return "postgres", target
    if schema is not None:
        raise StoreError(f"schema= applies to Postgres only; a SQLite {what} is one file")
    if target.startswith("sqlite://"):
        return "sqlite", target.removeprefix("sqlite://").removeprefix("/") or ":memory:"
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise StoreError(
            f"unsupported {what} URL scheme {scheme!r}: use a file path, sqlite:///path or postgresql://…"
        )
    return "sqlite", target


# Tables other parts of closeflow keep beside the data models in the default layout (one SQLite file,
# one Postgres schema): not data, so an agent's queries run with ``hidden=LEDGER_TABLES``. Written out
# rather than imported so the store depends on nothing above it; tests/sync/store/
# test_store_query_scope.py checks the list against what the ledgers create.
LEDGER_TABLES = frozenset(
    {
        # the run ledger: closeflow/plays/_ledger_sql.py, _SCHEMA
        "play_runs",
        "play_run_nodes",
        "play_enrolments",
        "play_cursors",
        # the actions' write ledger: closeflow/actions/_ledger.py, _SCHEMA
        "action_ledger",
    }
)


def open_store(
    target: str | None = None,
    *,
    schema: str | None = None,
    read_role: str | None = None,
    create: bool = True,
) -> Store:
    """Open (creating if needed) the store at ``target``.

    ``None`` → ``closeflow.db``; a path or ``sqlite:///path`` (``:memory:`` for a throwaway store) →
    SQLite; ``postgresql://…`` or ``postgres://…`` → Postgres. On Postgres the tables live in
    ``schema`` (or the URL's ``?schema=NAME``), created if missing; without one, in the first schema
    of the connection's ``search_path`` (normally ``public``).

    ``read_role`` (or the URL's ``?read_role=NAME``) is the Postgres role ``query()`` reads as; it
    is granted SELECT on the schema's tables. It is required when the connected role is a superuser
    (or may run server programs / read server files), since such a role escapes a read-only
    transaction. See docs/sync.md.

    ``create=False`` opens an existing store only (for commands that just read it): a missing file,
    schema or store raises ``StoreError`` naming it instead of leaving an empty store behind.
    """
    kind, target = database_target(target, "store", schema=schema)
    if kind == "postgres":
        from closeflow.sync.store._postgres import PostgresStore

        return PostgresStore(target, schema=schema, read_role=read_role, create=create)
    if read_role is not None:
        raise StoreError("read_role= applies to Postgres stores only; SQLite's query path is read-only as is")
    from closeflow.sync.store._sqlite import SQLiteStore

    return SQLiteStore(target, create=create)


__all__ = [
    "DEFAULT_PATH",
    "LEDGER_TABLES",
    "Change",
    "ChangeKind",
    "ModelInfo",
    "ModelSpec",
    "Store",
    "StoreError",
    "ViewColumn",
    "ViewType",
    "database_target",
    "json_keys",
    "open_store",
]
