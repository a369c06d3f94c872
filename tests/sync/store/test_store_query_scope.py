"""``query(..., hidden=…)``: a query may read the data models, their views and the change log, but
not the tables named hidden (closeflow's run and write ledgers, which share the store's file or
schema), however it reaches them. SQLite's authorizer sees every table a statement reads; Postgres
refuses hidden names in the text and then checks the statement's plan, which sees through views."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from closeflow.actions import SqliteLedger
from closeflow.plays import open_run_ledger
from closeflow.sync.store import LEDGER_TABLES, ModelSpec, Store, StoreError, ViewColumn, open_store
from closeflow.sync.store import _sqlite as sqlite_module
from closeflow.sync.store._postgres import PostgresStore
from closeflow.sync.store._sqlite import SQLiteStore
from tests.sync.store._helpers import Ticks
from tests.sync.store.conftest import POSTGRES_URL


def _as_owner(store: Store, *statements: str) -> None:
    """Run DDL/DML as the store's owner would, outside the query path."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()
        return
    assert isinstance(store, PostgresStore) and store.schema is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{store.schema}"')
        for statement in statements:
            conn.execute(statement)


def _schema(store: Store) -> str:
    return store.schema if isinstance(store, PostgresStore) and store.schema else "main"


@pytest.fixture
def ledgered(store: Store, tick: Ticks) -> Store:
    """A store with a model, its view and a change, beside a real run ledger (and a write ledger:
    the real one on SQLite; on Postgres a table of the same name stands in for it),
    each holding a row, and a view someone made over a ledger table."""
    store.ensure_models([ModelSpec("leads")])
    store.commit_page("leads", "leads", upserts=[{"id": "lead_1"}], state={"cursor": "c1"}, now=tick())
    store.rebuild_view("leads", "leads_view", [ViewColumn("id", "id", "text")])
    if isinstance(store, SQLiteStore):
        runs = open_run_ledger(store.path)
        writes = SqliteLedger(store.path)
        writes.record_intent("batch_1", "lead_1", "upsert_lead", run_id="run_1", row=1, at=1.0)
        writes.close()
    else:
        assert isinstance(store, PostgresStore)
        runs = open_run_ledger(POSTGRES_URL, schema=store.schema)
        _as_owner(
            store,
            "CREATE TABLE action_ledger (batch_id TEXT, record_key TEXT)",
            "INSERT INTO action_ledger VALUES ('batch_1', 'lead_1')",
        )
    runs.set_cursor("welcome", 7)
    runs.close()
    _as_owner(store, "CREATE VIEW ledger_peek AS SELECT play, seq FROM play_cursors")
    return store


def _refused(store: Store, sql: str, name: str, **kwargs: object) -> None:
    with pytest.raises(StoreError, match=f"^{name} is not readable through this query path; read the data"):
        store.query(sql, hidden=LEDGER_TABLES, **kwargs)  # type: ignore[arg-type]


def test_ledger_tables_are_exactly_the_tables_the_run_and_write_ledgers_create(tmp_path: Path) -> None:
    path = str(tmp_path / "closeflow.db")
    store = open_store(path)

    def tables() -> set[str]:
        return {name for (name,) in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")[1]}

    try:
        before = tables()
        open_run_ledger(path).close()
        SqliteLedger(path).close()
        assert tables() - before == LEDGER_TABLES
    finally:
        store.close()


def test_the_postgres_run_ledger_creates_only_ledger_tables(pg_schema: str) -> None:
    open_run_ledger(POSTGRES_URL, schema=pg_schema).close()

    with psycopg.connect(POSTGRES_URL) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,)).fetchall()

    assert {name for (name,) in rows} == LEDGER_TABLES - {"action_ledger"}


_WRITTEN = {"play_cursors", "action_ledger"}  # the ledger tables the fixture puts a row in


@pytest.mark.parametrize("table", sorted(LEDGER_TABLES))
def test_every_ledger_table_is_refused_and_readable_without_hidden(ledgered: Store, table: str) -> None:
    _refused(ledgered, f"SELECT * FROM {table}", table)

    assert ledgered.query(f"SELECT COUNT(*) FROM {table}")[1] == [(1 if table in _WRITTEN else 0,)]


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT COUNT(*) FROM action_ledger", "action_ledger"),
        ("SELECT l.id FROM leads l JOIN play_runs r ON r.record_id = l.id", "play_runs"),
        ("SELECT id FROM leads WHERE id IN (SELECT record_id FROM play_enrolments)", "play_enrolments"),
        ("SELECT (SELECT MAX(seq) FROM play_cursors) AS seq", "play_cursors"),
        ("SELECT 1 WHERE EXISTS (SELECT 1 FROM play_run_nodes)", "play_run_nodes"),
        ("WITH runs AS (SELECT * FROM play_runs) SELECT COUNT(*) FROM runs", "play_runs"),
        ("SELECT id FROM leads UNION ALL SELECT play FROM play_cursors", "play_cursors"),
        ('SELECT * FROM "play_cursors"', "play_cursors"),
        ("select * from PLAY_CURSORS", "play_cursors"),
        ("SELECT * FROM/**/play_cursors", "play_cursors"),
        ("SELECT * FROM {schema}.play_cursors", "play_cursors"),
        ('SELECT * FROM "{schema}"."play_cursors"', "play_cursors"),
        ("SELECT seq FROM ledger_peek", "play_cursors"),  # a view over a hidden table
        ("WITH p AS (SELECT * FROM ledger_peek) SELECT * FROM p", "play_cursors"),
        ("EXPLAIN SELECT seq FROM ledger_peek WHERE seq > 5", "play_cursors"),
    ],
)
def test_a_hidden_table_is_refused_however_the_query_reaches_it(ledgered: Store, sql: str, name: str) -> None:
    _refused(ledgered, sql.format(schema=_schema(ledgered)), name)


def test_models_views_and_the_change_log_stay_readable(ledgered: Store) -> None:
    def read(sql: str) -> list[tuple[object, ...]]:
        return ledgered.query(sql, hidden=LEDGER_TABLES)[1]

    assert read("SELECT id FROM leads") == [("lead_1",)]
    assert read('SELECT "id" FROM "leads_view"') == [("lead_1",)]
    assert read("SELECT model, record_id, kind FROM change_log") == [("leads", "lead_1", "added")]
    assert read("SELECT model FROM store_models") == [("leads",)]
    assert read("SELECT stream FROM sync_state") == [("leads",)]
    assert read("SELECT 'play_runs' AS note -- play_cursors\n") == [("play_runs",)]
    assert ledgered.query("SELECT id FROM leads", hidden=LEDGER_TABLES, max_rows=0) == (["id"], [])


def test_without_hidden_the_ledgers_and_views_over_them_read_as_before(ledgered: Store) -> None:
    assert ledgered.query("SELECT play, seq FROM play_cursors") == (["play", "seq"], [("welcome", 7)])
    assert ledgered.query("SELECT play FROM ledger_peek")[1] == [("welcome",)]
    assert ledgered.query("SELECT record_key FROM action_ledger")[1] == [("lead_1",)]


def test_a_query_refused_for_hidden_tables_is_not_remembered_by_the_next(ledgered: Store) -> None:
    sql = "SELECT seq FROM play_cursors"  # the same text: SQLite reuses its compiled statement

    assert ledgered.query(sql)[1] == [(7,)]
    _refused(ledgered, sql, "play_cursors")
    assert ledgered.query(sql)[1] == [(7,)]
    _refused(ledgered, sql, "play_cursors")


def test_hidden_must_be_a_collection_of_names_not_one_name(ledgered: Store) -> None:
    with pytest.raises(TypeError, match="hidden= takes a collection of table names, not one string"):
        ledgered.query("SELECT 1", hidden="play_runs")


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT table_to_xml('play_runs', true, false, '')", "table_to_xml"),
        ("SELECT table_to_xml_and_xmlschema('play_runs', true, false, '')", "table_to_xml_and_xmlschema"),
        ("SELECT pg_catalog.table_to_xmlschema('leads', true, false, '')", "table_to_xmlschema"),
        ("SELECT schema_to_xml('public', true, false, '')", "schema_to_xml"),
        ("SELECT schema_to_xml_and_xmlschema('public', true, false, '')", "schema_to_xml_and_xmlschema"),
        ("SELECT database_to_xml(true, false, '')", "database_to_xml"),
        ("SELECT database_to_xmlschema(true, false, '')", "database_to_xmlschema"),
        ("SELECT * FROM ts_stat('SELECT to_tsvector(play) FROM play_cursors')", "ts_stat"),
        ("SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM play_runs')", "ts_rewrite"),
    ],
)
def test_functions_reading_a_table_named_in_text_are_refused_for_every_query(
    ledgered: Store, sql: str, function: str
) -> None:
    for hidden in ((), LEDGER_TABLES):
        with pytest.raises(StoreError, match=f"refuses {function}\\(\\).*reads tables named in text"):
            ledgered.query(sql, hidden=hidden)


# --- where the backends differ ---


def _only(dialect: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("open_test_store", [dialect], indirect=True)


def test_postgres_refuses_a_hidden_name_even_as_a_mere_alias_sqlite_only_reads(ledgered: Store) -> None:
    sql = "SELECT id AS play_runs FROM leads"
    if ledgered.dialect == "postgres":  # the text check cannot tell an alias from a table
        _refused(ledgered, sql, "play_runs")
    else:
        assert ledgered.query(sql, hidden=LEDGER_TABLES) == (["play_runs"], [("lead_1",)])


@_only("postgres")
def test_postgres_table_statement_on_a_hidden_table_is_refused(ledgered: Store) -> None:
    _refused(ledgered, "TABLE play_cursors", "play_cursors")
    _refused(ledgered, "TABLE ledger_peek", "play_cursors")


@_only("postgres")
def test_postgres_explain_analyze_through_a_view_is_refused_even_when_cut_to_max_rows(
    ledgered: Store,
) -> None:
    sql = "EXPLAIN ANALYZE SELECT COUNT(*) FROM leads, ledger_peek WHERE seq > 5"

    assert len(ledgered.query(sql, max_rows=1)[1]) == 1  # without hidden: the plan, cut to one line
    _refused(ledgered, sql, "play_cursors", max_rows=1)


@_only("postgres")
def test_postgres_statistics_views_are_hidden_with_any_table_since_they_sample_its_values(
    ledgered: Store,
) -> None:
    _as_owner(ledgered, "ANALYZE play_cursors")
    sql = "SELECT attname FROM pg_stats WHERE tablename = 'play_cursors' ORDER BY attname"

    assert ledgered.query(sql)[1] == [("play",), ("seq",)]  # most_common_vals etc. of a ledger
    _refused(ledgered, sql, "pg_stats")
    _refused(ledgered, "SELECT COUNT(*) FROM pg_catalog.pg_stats_ext", "pg_stats_ext")


@_only("sqlite")
def test_sqlite_still_refuses_writes_and_attach_while_hiding_tables(
    ledgered: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "check_read_only_sql", lambda *_args, **_kwargs: "select")

    for sql in ("ATTACH DATABASE ':memory:' AS other", "DELETE FROM leads", "PRAGMA query_only = OFF"):
        with pytest.raises(StoreError, match="read-only"):
            ledgered.query(sql, hidden=LEDGER_TABLES)
    assert ledgered.query("SELECT COUNT(*) FROM leads", hidden=LEDGER_TABLES)[1] == [(1,)]
