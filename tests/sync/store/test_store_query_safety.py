"""The query path stays harmless even for a superuser: no shell, no server files, no locks that
block the sync, no settings changed, no query running forever. Each layer is tested on its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from closeflow.sync.store import ModelSpec, Store, StoreError, open_store
from closeflow.sync.store import _postgres as postgres_module
from closeflow.sync.store import _sqlite as sqlite_module
from closeflow.sync.store._postgres import PostgresStore
from tests.sync.store._helpers import Ticks
from tests.sync.store.conftest import POSTGRES_URL, READ_ROLE


@pytest.fixture
def leads(store: Store, tick: Ticks) -> Store:
    store.ensure_models([ModelSpec("leads")])
    store.commit_page("leads", "leads", upserts=[{"id": "lead_1"}], now=tick())
    return store


def _no_lexical_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn off the first line of defence, to show the database-side ones hold without it."""
    for module in (postgres_module, sqlite_module):
        monkeypatch.setattr(module, "check_read_only_sql", lambda *_args, **_kwargs: None)


def test_copy_to_program_is_refused_and_runs_nothing(leads: Store, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"closeflow-copy-{uuid.uuid4().hex}"

    with pytest.raises(StoreError, match="read-only: COPY statements are refused"):
        leads.query(f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'")
    with pytest.raises(StoreError, match="read-only: COPY statements are refused"):
        leads.query(f"/* hidden */ -- still\n  copy (select 1) to '{marker}'")

    assert not marker.exists()


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT pg_advisory_lock(42)", "pg_advisory_lock"),
        ("select pg_catalog.pg_try_advisory_lock(1, 2)", "pg_try_advisory_lock"),
        ('SELECT "pg_advisory_xact_lock" (7)', "pg_advisory_xact_lock"),
        ("SELECT set_config('role', 'none', false)", "set_config"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
        ("SELECT lo_import('/etc/passwd')", "lo_import"),
        ("SELECT dblink_exec('dbname=test', 'DROP TABLE leads')", "dblink_exec"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
        ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
        ("SELECT pg_reload_conf()", "pg_reload_conf"),
        ("SELECT query_to_xml('SELECT pg_advisory_lock(1)', true, true, '')", "query_to_xml"),
        ("WITH x AS (SELECT load_extension('evil')) SELECT 1", "load_extension"),
    ],
)
def test_dangerous_functions_are_refused_by_name(leads: Store, sql: str, function: str) -> None:
    with pytest.raises(StoreError, match=f"refuses {function}\\(\\)"):
        leads.query(sql)


def test_names_inside_strings_and_comments_are_only_text(leads: Store) -> None:
    columns, rows = leads.query("SELECT 'pg_advisory_lock(1)' AS note /* set_config( */ -- lo_import(\n")

    assert (columns, rows) == (["note"], [("pg_advisory_lock(1)",)])


@pytest.mark.parametrize("sql", ["SELECT 1; COPY leads TO STDOUT", "", "  -- nothing\n", "CALL p()"])
def test_only_one_reading_statement_is_accepted(leads: Store, sql: str) -> None:
    with pytest.raises(StoreError, match=r"one statement at a time|is empty|read-only: CALL"):
        leads.query(sql)


@pytest.mark.parametrize("sql", ["SELECT load_extension('/tmp/evil')", "ATTACH DATABASE ':memory:' AS other"])
def test_sqlite_refuses_extensions_and_attach_even_without_the_lexical_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    _no_lexical_check(monkeypatch)
    store = open_store(str(tmp_path / "closeflow.db"))
    try:
        with pytest.raises(StoreError, match=r"not authorized|read-only"):
            store.query(sql)
        assert store.query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'store_meta'")[1] == [(1,)]
    finally:
        store.close()


def test_an_endless_sqlite_query_is_cancelled_at_its_time_limit(tmp_path: Path) -> None:
    store = sqlite_module.SQLiteStore(str(tmp_path / "closeflow.db"), statement_timeout=0.3)
    try:
        store.ensure_models([ModelSpec("leads")])
        endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
        with pytest.raises(StoreError, match=r"ran longer than its 0.3 s limit and was cancelled"):
            store.query(endless)
        assert store.query("SELECT COUNT(*) FROM leads")[1] == [(0,)]  # the store still answers
    finally:
        store.close()


# --- Postgres: the database-side layers ---


@pytest.fixture
def pg_store(pg_schema: str, tick: Ticks) -> Iterator[PostgresStore]:
    store = PostgresStore(POSTGRES_URL, schema=pg_schema, read_role=READ_ROLE, statement_timeout=0.3)
    store.ensure_models([ModelSpec("leads")])
    store.commit_page("leads", "leads", upserts=[{"id": "lead_1"}], now=tick())
    yield store
    store.close()


def _advisory_locks() -> int:
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else -1


def test_no_advisory_lock_outlives_a_query(pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_lexical_check(monkeypatch)
    before = _advisory_locks()

    assert pg_store.query("SELECT pg_advisory_lock(4242)")[0] == ["pg_advisory_lock"]  # taken…

    assert _advisory_locks() == before  # …and released when the query ended
    assert pg_store.query("SELECT id FROM leads")[1] == [("lead_1",)]


def test_a_superuser_query_runs_as_the_read_role(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_lexical_check(monkeypatch)
    marker = Path("/tmp") / f"closeflow-copy-{uuid.uuid4().hex}"

    assert pg_store.query("SELECT current_user")[1] == [(READ_ROLE,)]
    with pytest.raises(StoreError, match=f"read role '{READ_ROLE}' may not do that"):
        pg_store.query(f"SELECT pg_read_file('{marker}')")
    with pytest.raises(StoreError):
        pg_store.query(f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'")

    assert not marker.exists()
    assert pg_store.query("SELECT COUNT(*) FROM leads")[1] == [(1,)]


def test_a_long_query_is_cancelled_at_the_time_budget(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StoreError, match=r"refuses pg_sleep\(\) beyond its 0.3 s time budget"):
        pg_store.query("SELECT pg_sleep(60)")
    _no_lexical_check(monkeypatch)

    with pytest.raises(StoreError, match=r"ran longer than its 0.3 s limit and was cancelled"):
        pg_store.query("SELECT pg_sleep(60)")

    assert pg_store.query("SELECT COUNT(*) FROM leads")[1] == [(1,)]


def test_a_superuser_without_a_read_role_is_refused_with_how_to_make_one(pg_schema: str) -> None:
    store = open_store(POSTGRES_URL, schema=pg_schema)
    try:
        store.ensure_models([ModelSpec("leads")])
        with pytest.raises(StoreError, match=r"refuses to run as .*superuser.*read_role=NAME") as caught:
            store.query("SELECT 1")
        assert "CREATE ROLE" in str(caught.value) and "GRANT SELECT ON ALL TABLES" in str(caught.value)
    finally:
        store.close()


def test_a_missing_or_powerful_read_role_is_refused(pg_schema: str) -> None:
    missing = f"closeflow_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StoreError, match=f"read role '{missing}' does not exist.*CREATE ROLE"):
        open_store(f"{POSTGRES_URL}?schema={pg_schema}&read_role={missing}")
    with psycopg.connect(POSTGRES_URL) as conn:
        me = conn.execute("SELECT current_user").fetchone()
    assert me is not None
    with pytest.raises(StoreError, match=f"read role '{me[0]}' is not read-only \\(superuser\\)"):
        open_store(POSTGRES_URL, schema=pg_schema, read_role=str(me[0]))


def test_the_read_role_can_read_views_built_after_it_was_granted(pg_store: PostgresStore) -> None:
    from closeflow.sync.store import ViewColumn

    pg_store.rebuild_view("leads", "leads_view", [ViewColumn("id", "id", "text")])

    assert pg_store.query("SELECT id FROM leads_view")[1] == [("lead_1",)]
