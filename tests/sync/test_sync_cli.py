"""`closeflow sync`, `models`, `changes` and `sql` against the emulator on a real port."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeflow.cli import app
from tests.conftest import Served

runner = CliRunner()


@pytest.fixture
def env(served_emulator: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("CLOSE_BASE_URL", raising=False)
    return {
        "CLOSE_API_KEY": served_emulator.emulator.api_key,
        "CLOSEFLOW_CONFIG_DIR": str(tmp_path / "config"),
        "COLUMNS": "160",
    }


@pytest.fixture
def synced_db(env: dict[str, str], served_emulator: Served, tmp_path: Path) -> str:
    db = str(tmp_path / "crm.db")
    result = runner.invoke(app, ["sync", "--db", db, "--base-url", served_emulator.base_url], env=env)
    assert result.exit_code == 0, result.output
    return db


def _rows(output: str) -> list[list[str]]:
    """The first two cells of every table row in rich's output."""
    return [
        [cell.strip() for cell in line.split("│")[1:3]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_sync_summary_counts_every_lead_and_a_second_run_adds_nothing(
    env: dict[str, str], served_emulator: Served, tmp_path: Path
) -> None:
    db = str(tmp_path / "crm.db")
    first = runner.invoke(app, ["sync", "--db", db, "--base-url", served_emulator.base_url], env=env)
    assert first.exit_code == 0, first.output
    leads = len(served_emulator.emulator.org.leads)
    assert ["leads", str(leads)] in _rows(first.output), first.output
    assert "views rebuilt: leads_view" in first.output

    second = runner.invoke(
        app, ["sync", "leads", "--db", db, "--base-url", served_emulator.base_url], env=env
    )
    assert second.exit_code == 0, second.output
    assert ["leads", "0"] in _rows(second.output), second.output


def test_models_lists_rows_per_model(synced_db: str, served_emulator: Served, env: dict[str, str]) -> None:
    result = runner.invoke(app, ["models", "--db", synced_db], env=env)
    assert result.exit_code == 0, result.output
    leads_row = next(line for line in result.output.splitlines() if line.startswith("│ leads "))
    assert f"│ {len(served_emulator.emulator.org.leads)} " in leads_row


def test_changes_as_json_have_the_documented_shape_and_respect_since_and_limit(
    synced_db: str, env: dict[str, str]
) -> None:
    result = runner.invoke(
        app,
        [
            "changes",
            "--db",
            synced_db,
            "--model",
            "leads",
            "--since",
            "3",
            "--limit",
            "2",
            "--format",
            "json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    changes = json.loads(result.output)
    assert len(changes) == 2
    assert all(
        set(c) == {"seq", "model", "record_id", "kind", "changed_fields", "before", "after", "at"}
        for c in changes
    )
    assert all(c["seq"] > 3 and c["model"] == "leads" and c["kind"] == "added" for c in changes)
    assert changes[0]["after"]["id"] == changes[0]["record_id"]


def test_sql_reads_views_as_csv_and_refuses_writes(
    synced_db: str, env: dict[str, str], served_emulator: Served
) -> None:
    result = runner.invoke(
        app, ["sql", "select count(*) as n from leads_view", "--db", synced_db, "--format", "csv"], env=env
    )
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["n"],
        [str(len(served_emulator.emulator.org.leads))],
    ]

    refused = runner.invoke(app, ["sql", "delete from leads", "--db", synced_db], env=env)
    assert refused.exit_code == 1
    assert "error" in refused.output.lower()


def test_unknown_models_are_refused_with_the_list_of_known_ones(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", "leeds", "--db", str(tmp_path / "x.db")], env=env)
    assert result.exit_code == 2
    assert "leeds" in result.output and "leads" in result.output
