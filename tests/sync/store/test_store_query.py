"""The SQL query path (``closeflow sql``) reads anything and changes nothing."""

from __future__ import annotations

import pytest

from closeflow.sync.store import ModelSpec, Store, StoreError
from tests.sync.store._helpers import Ticks


@pytest.fixture
def leads(store: Store, tick: Ticks) -> Store:
    store.ensure_models([ModelSpec("leads", promoted=("status_id",))])
    store.commit_page(
        "leads",
        "leads",
        upserts=[{"id": f"lead_{n}", "status_id": f"s{n % 2}"} for n in range(5)],
        now=tick(),
    )
    return store


def test_select_returns_column_names_and_rows(leads: Store) -> None:
    columns, rows = leads.query(
        "SELECT status_id, COUNT(*) AS n FROM leads WHERE deleted_at IS NULL "
        "GROUP BY status_id ORDER BY status_id"
    )

    assert columns == ["status_id", "n"]
    assert rows == [("s0", 3), ("s1", 2)]


def test_the_change_log_is_queryable(leads: Store) -> None:
    _, rows = leads.query("SELECT seq, record_id, kind FROM change_log ORDER BY seq DESC LIMIT 2")

    assert rows == [(5, "lead_4", "added"), (4, "lead_3", "added")]


def test_parameters_use_the_backends_placeholder(leads: Store) -> None:
    mark = "?" if leads.dialect == "sqlite" else "%s"

    _, rows = leads.query(f"SELECT id FROM leads WHERE status_id = {mark} ORDER BY id", ["s1"])

    assert rows == [("lead_1",), ("lead_3",)]


def test_max_rows_caps_the_result(leads: Store) -> None:
    columns, rows = leads.query("SELECT id FROM leads ORDER BY id", max_rows=2)

    assert (columns, rows) == (["id"], [("lead_0",), ("lead_1",)])


def test_an_empty_result_still_names_its_columns(leads: Store) -> None:
    assert leads.query("SELECT id, status_id FROM leads WHERE id = 'none'") == (["id", "status_id"], [])


@pytest.mark.parametrize(
    ("sql", "verb"),
    [
        (
            "INSERT INTO leads (id, data, hash, first_seen, last_seen) VALUES ('x', '{}', 'h', 'a', 'b')",
            "INSERT",
        ),
        (
            "insert into change_log (seq, model, record_id, kind, changed_fields, at) "
            "values (99, 'm', 'r', 'k', '[]', 'a')",
            "INSERT",
        ),
        ("UPDATE leads SET status_id = 'hacked'", "UPDATE"),
        ("DELETE FROM change_log", "DELETE"),
        ("DROP TABLE leads", "DROP"),
        ("drop table sync_state", "DROP"),
        ("CREATE TABLE sneaky (x INTEGER)", "CREATE"),
        ("ALTER TABLE leads ADD COLUMN sneaky TEXT", "ALTER"),
    ],
)
def test_writes_are_refused_with_a_clear_error(leads: Store, sql: str, verb: str) -> None:
    with pytest.raises(StoreError, match=f"the SQL query path is read-only: {verb} statements are refused"):
        leads.query(sql)

    assert list(leads.live_ids("leads")) == [f"lead_{n}" for n in range(5)]
    assert leads.last_seq() == 5


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE leads",
        "COMMIT; DROP TABLE leads",
        "WITH gone AS (DELETE FROM leads RETURNING id) SELECT * FROM gone",
        "PRAGMA query_only = OFF",
        "ATTACH DATABASE 'elsewhere.db' AS elsewhere",
    ],
)
def test_tricks_to_escape_read_only_fail_and_change_nothing(leads: Store, sql: str) -> None:
    with pytest.raises(StoreError):
        leads.query(sql)

    assert leads.query("SELECT COUNT(*) FROM leads")[1] == [(5,)]
    assert leads.query("SELECT id FROM leads WHERE id = 'lead_0'")[1] == [("lead_0",)]


def test_a_multi_statement_query_is_refused_as_such(leads: Store) -> None:
    with pytest.raises(StoreError, match="runs one statement at a time"):
        leads.query("SELECT 1; SELECT 2")


def test_the_query_path_sees_pages_committed_after_it_was_first_used(leads: Store, tick: Ticks) -> None:
    assert leads.query("SELECT COUNT(*) FROM leads")[1] == [(5,)]
    leads.commit_page("leads", "leads", upserts=[{"id": "lead_new"}], now=tick())

    assert leads.query("SELECT COUNT(*) FROM leads")[1] == [(6,)]


def test_a_broken_query_says_what_the_database_said(leads: Store) -> None:
    with pytest.raises(StoreError, match=r"the query failed: .*no_such_table"):
        leads.query("SELECT * FROM no_such_table")

    assert leads.query("SELECT COUNT(*) FROM leads")[1] == [(5,)]  # the path still works afterwards
