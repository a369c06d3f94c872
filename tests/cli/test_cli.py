"""The `closeflow` command line against the emulator on a real port, as a user would run it."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from closeflow.cli import app
from tests._served import emulator_process
from tests.conftest import Served

runner = CliRunner()


@pytest.fixture
def env(served_emulator: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("CLOSE_API_KEY", raising=False)
    monkeypatch.delenv("CLOSE_BASE_URL", raising=False)
    return {
        "CLOSE_BASE_URL": served_emulator.base_url,
        "CLOSE_API_KEY": served_emulator.emulator.api_key,
        "CLOSEFLOW_CONFIG_DIR": str(tmp_path / "config"),
    }


def test_check_reports_user_organization_and_rate_limits(
    env: dict[str, str], served_emulator: Served
) -> None:
    result = runner.invoke(app, ["check", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    org = served_emulator.emulator.org
    assert report["organization"]["id"] == org.id
    assert report["user"]["id"] == org.owner_id
    assert report["connection"] == "env"


def test_check_with_a_wrong_api_key_fails_clearly_without_echoing_the_key(env: dict[str, str]) -> None:
    bad_key = "api_definitely_wrong_key_123"
    result = runner.invoke(app, ["check"], env={**env, "CLOSE_API_KEY": bad_key})
    assert result.exit_code == 1
    assert "401" in result.output and "Unauthorized" in result.output
    assert bad_key not in result.output


def test_login_stores_a_private_profile_that_later_commands_use(env: dict[str, str], tmp_path: Path) -> None:
    key = env["CLOSE_API_KEY"]
    login = runner.invoke(
        app,
        ["auth", "login", "--profile", "emu", "--base-url", env["CLOSE_BASE_URL"]],
        env={**env, "CLOSE_API_KEY": ""},
        input=key + "\n",
    )
    assert login.exit_code == 0, login.output
    credentials = tmp_path / "config" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    no_env = {"CLOSEFLOW_CONFIG_DIR": env["CLOSEFLOW_CONFIG_DIR"], "CLOSE_API_KEY": "", "CLOSE_BASE_URL": ""}
    status = runner.invoke(app, ["auth", "status"], env=no_env)
    assert status.exit_code == 0 and "emu" in status.output
    assert key not in status.output

    check = runner.invoke(app, ["check", "--profile", "emu", "--json"], env=no_env)
    assert check.exit_code == 0, check.output
    assert json.loads(check.output)["connection"] == "profile"

    logout = runner.invoke(app, ["auth", "logout", "--profile", "emu"], env=no_env)
    assert logout.exit_code == 0
    assert "emu" not in json.loads(credentials.read_text())["profiles"]


def test_lead_search_by_status_returns_exactly_the_emulators_qualified_leads(
    env: dict[str, str], served_emulator: Served
) -> None:
    result = runner.invoke(
        app,
        [
            "leads",
            "search",
            "--where",
            'status = "Qualified"',
            "--fields",
            "status_label",
            "--format",
            "jsonl",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    truth = {
        lead["id"]
        for lead in served_emulator.emulator.org.objects("lead")
        if lead["status_label"] == "Qualified"
    }
    assert truth and {row["id"] for row in rows} == truth
    assert len(rows) == len(truth)


def test_search_returns_custom_fields_by_name_as_csv(env: dict[str, str], served_emulator: Served) -> None:
    result = runner.invoke(
        app,
        [
            "leads",
            "search",
            "--where",
            'custom."Source" = "Referral"',
            "--fields",
            'display_name,custom."Source"',
            "--format",
            "csv",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "id,display_name,custom.Source"
    assert len(lines) > 1 and all(line.endswith(",Referral") for line in lines[1:])


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ('custom."Sorce" = "Referral"', 'did you mean "Source"'),
        ('status = "Qualified" and', "at column"),
        ('custom."Employees" >= "lots"', "Employees"),
        ('nonsense_field = "x"', "nonsense_field"),
    ],
)
def test_bad_search_input_fails_with_a_specific_message(
    env: dict[str, str], where: str, message: str
) -> None:
    result = runner.invoke(app, ["leads", "search", "--where", where], env=env)
    assert result.exit_code == 1
    assert message in result.output


def test_sorting_by_another_field_without_a_limit_explains_closes_cap(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["leads", "search", "--sort", "name"], env=env)
    assert result.exit_code == 1
    assert "10,000" in result.output and "date_updated" in result.output


@pytest.fixture
def served_by_cli() -> Iterator[tuple[str, str]]:
    with emulator_process(leads=7, options=("--api-key", "api_k1")) as served:
        yield served.base_url, served.api_key


def test_emulator_serve_prints_a_working_base_url_and_key(served_by_cli: tuple[str, str]) -> None:
    base_url, key = served_by_cli
    assert key == "api_k1"
    assert httpx2.get(f"{base_url}/me/", auth=(key, ""), timeout=10).status_code == 200
    listed = httpx2.get(f"{base_url}/lead/", params={"_limit": 100}, auth=(key, ""), timeout=10).json()
    assert len(listed["data"]) == 7 and listed["has_more"] is False
    assert httpx2.get(f"{base_url}/me/", auth=("api_wrong", ""), timeout=10).status_code == 401
