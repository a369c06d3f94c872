"""The reading commands (`models`, `changes`, `sql`) read an existing store and never make one, and
cap what they print by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeflow.cli import app
from closeflow.sync import ModelSpec, open_store

runner = CliRunner(env={"COLUMNS": "200", "CLOSEFLOW_POSTGRES": None})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store holding 150 added leads (150 changes), written directly: no Close needed."""
    path = str(tmp_path / "crm.db")
    store = open_store(path)
    store.ensure_models([ModelSpec("leads")])
    upserts = [{"id": f"lead_{n:03}", "name": f"Lead {n}"} for n in range(150)]
    store.commit_page("leads", "leads", upserts=upserts, now=datetime(2026, 1, 2, tzinfo=UTC))
    store.close()
    return path


@pytest.mark.parametrize("command", [["models"], ["changes"], ["sql", "select 1"]])
def test_a_mistyped_db_is_an_error_and_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "crm-typo.db"

    result = runner.invoke(app, [*command, "--db", str(missing)])

    assert result.exit_code == 1, result.output
    assert "no store at" in result.output and "crm-typo.db" in result.output
    assert not missing.exists()


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()

    result = runner.invoke(app, ["models", "--db", str(other)])

    assert result.exit_code == 1 and "is not a closeflow store" in result.output
    names = sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall()
    assert names == [("t",)]


@pytest.mark.parametrize("command", [["models"], ["changes"], ["sql", "select 1"], ["sync"]])
def test_db_and_postgres_together_are_refused(db: str, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--db", db, "--postgres", "postgresql://nobody@127.0.0.1:1/x"])

    assert result.exit_code == 2
    assert "--db and --postgres" in result.output and "only one" in result.output


def test_changes_show_100_by_default_and_say_so(db: str) -> None:
    as_json = runner.invoke(app, ["changes", "--db", db, "--format", "json"])
    as_table = runner.invoke(app, ["changes", "--db", db])

    assert as_json.exit_code == 0, as_json.output
    assert [c["seq"] for c in json.loads(as_json.output)] == list(range(1, 101))
    assert "100 changes (the first 100; --since 100 for more, --limit 0 for all)" in as_table.output


def test_changes_limit_0_streams_all_of_them(db: str) -> None:
    result = runner.invoke(app, ["changes", "--db", db, "--format", "json", "--limit", "0", "--since", "5"])

    assert result.exit_code == 0, result.output
    changes = json.loads(result.output)
    assert [c["seq"] for c in changes] == list(range(6, 151))
    assert changes[0]["record_id"] == "lead_005" and changes[0]["kind"] == "added"


def test_sql_caps_rows_at_max_rows_and_says_output_was_cut(db: str) -> None:
    capped = runner.invoke(app, ["sql", "select id from leads order by id", "--db", db, "--format", "json"])
    small = runner.invoke(
        app, ["sql", "select id from leads order by id", "--db", db, "--format", "json", "--max-rows", "2"]
    )
    everything = runner.invoke(
        app, ["sql", "select id from leads", "--db", db, "--format", "csv", "--max-rows", "0"]
    )

    assert len(json.loads(capped.stdout)) == 150 and "cut" not in capped.output  # under the default 1000
    assert json.loads(small.stdout) == [{"id": "lead_000"}, {"id": "lead_001"}]
    assert "output cut at 2 rows" in small.stderr
    assert len(everything.stdout.splitlines()) == 151 and "cut" not in everything.stderr


def test_sql_json_keeps_every_column_of_a_repeated_name(db: str) -> None:
    result = runner.invoke(
        app, ["sql", "select 1 as a, 2 as a, 3 as a_2, 4 as a", "--db", db, "--format", "json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"a": 1, "a_2": 2, "a_2_2": 3, "a_3": 4}]
