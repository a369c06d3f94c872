"""`closeflow plays|runs|tools|run` through typer's CliRunner, against the emulator on a loopback port."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from closeflow.cli import app
from closeflow.plays import open_run_ledger
from tests.conftest import Served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plays"
runner = CliRunner()


@pytest.fixture
def plays(tmp_path: Path) -> Path:
    folder = tmp_path / "plays"
    shutil.copytree(EXAMPLES, folder)
    return folder


def _env(served: Served) -> dict[str, str]:
    return {"CLOSE_API_KEY": served.emulator.api_key, "CLOSE_BASE_URL": served.base_url, "COLUMNS": "200"}


def test_plays_list_and_validate_show_the_example_folder(plays: Path) -> None:
    listed = runner.invoke(app, ["plays", "list", "--plays", str(plays)])
    assert listed.exit_code == 0, listed.output
    for name in ("qualified-follow-up", "status-changed-webhook", "removed-leads-log"):
        assert name in listed.output
    valid = runner.invoke(app, ["plays", "validate", "--plays", str(plays)])
    assert valid.exit_code == 0, valid.output
    assert "3 play(s) and 1 tool(s) are valid" in valid.output


def test_validate_names_the_file_and_line_of_a_bad_play(plays: Path) -> None:
    (plays / "broken.yaml").write_text(
        "kind: play\nname: broken\ntrigger: {model: leads}\nnodes:\n  - {id: a, type: emial}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["plays", "validate", "--plays", str(plays)])
    assert result.exit_code == 1
    assert "broken.yaml:5: node 'a'" in result.output.replace("\n", "")  # the console wraps long paths


def test_a_missing_plays_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plays", "list", "--plays", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no plays folder" in result.output


def test_tools_run_adds_a_note_and_prints_its_outputs(
    plays: Path, tmp_path: Path, served_emulator: Served
) -> None:
    lead_id = sorted(served_emulator.emulator.org.leads)[0]
    notes_before = served_emulator.emulator.requests("POST", "/activity/note/")
    db = str(tmp_path / "closeflow.db")
    result = runner.invoke(
        app,
        ["tools", "run", "add-note", "--plays", str(plays), "--db", db,
         "--input", json.dumps({"lead_id": lead_id, "text": "hello"})],
        env=_env(served_emulator),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert served_emulator.emulator.requests("POST", "/activity/note/") - notes_before == 1
    outputs = json.loads(result.output[result.output.rindex("{\n") :])
    assert outputs["note_id"].startswith("acti_")


def test_tools_run_refuses_inputs_of_the_wrong_type(
    plays: Path, tmp_path: Path, served_emulator: Served
) -> None:
    result = runner.invoke(
        app,
        ["tools", "run", "add-note", "--plays", str(plays), "--db", str(tmp_path / "c.db"),
         "--input", json.dumps({"lead_id": 5, "text": "hello"})],
        env=_env(served_emulator),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "lead_id" in result.output
    assert served_emulator.emulator.requests("POST", "/activity/note/") == 0


def test_run_then_runs_list_and_show(plays: Path, tmp_path: Path, served_emulator: Served) -> None:
    db = str(tmp_path / "closeflow.db")
    first = runner.invoke(app, ["run", "--plays", str(plays), "--db", db], env=_env(served_emulator))
    assert first.exit_code == 0, first.output
    assert "qualified-follow-up" in first.output
    # Nothing changed in Close yet: the example plays watch updates and removals only.
    ledger = open_run_ledger(db)
    assert ledger.runs() == []
    ledger.close()
    emu = served_emulator.emulator
    victim = sorted(emu.org.leads)[0]
    with httpx2.Client(base_url=served_emulator.base_url, auth=(emu.api_key, "")) as http:
        assert http.delete(f"/lead/{victim}/").status_code == 200
    second = runner.invoke(app, ["run", "--plays", str(plays), "--db", db], env=_env(served_emulator))
    assert second.exit_code == 0, second.output
    ledger = open_run_ledger(db)
    [run] = ledger.runs(play="removed-leads-log")
    ledger.close()
    assert run.record_id == victim
    assert run.status == "succeeded"  # the receiver is not running: the failure branch logs and ends
    listed = runner.invoke(app, ["runs", "list", "--db", db, "--play", "removed-leads-log"])
    assert listed.exit_code == 0 and run.id in listed.output
    shown = runner.invoke(app, ["runs", "show", run.id, "--db", db, "--json"])
    assert shown.exit_code == 0, shown.output
    nodes = [(n["node_id"], n["status"]) for n in json.loads(shown.output)["nodes"]]
    assert nodes == [("remember", "succeeded"), ("notify", "failed"), ("logged_only", "succeeded")]
    missing = runner.invoke(app, ["runs", "show", "run_nope", "--db", db])
    assert missing.exit_code == 1 and "no run 'run_nope'" in missing.output
