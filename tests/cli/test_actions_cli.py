"""`closeflow leads|contacts insert|update|upsert|search|delete` against the emulator on a real port."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner, Result

from closeflow.actions import (
    DeleteContacts,
    DeleteLeads,
    InsertContact,
    InsertLead,
    SearchContacts,
    SearchLeads,
    UpdateContacts,
    UpdateLeads,
    UpsertContacts,
    UpsertLeads,
)
from closeflow.cli import app
from closeflow.cli._actions import NOT_OPTIONS, SPEC_OPTIONS
from tests.conftest import Served

runner = CliRunner()


@pytest.fixture
def env(served_emulator: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # the default ledger, closeflow.db, lands in the test's folder
    return {
        "CLOSE_BASE_URL": served_emulator.base_url,
        "CLOSE_API_KEY": served_emulator.emulator.api_key,
        "CLOSEFLOW_CONFIG_DIR": str(tmp_path / "config"),
    }


@pytest.fixture
def close(served_emulator: Served) -> httpx2.Client:
    """A plain HTTP client for setting up records the way any Close integration would."""
    return httpx2.Client(base_url=served_emulator.base_url, auth=(served_emulator.emulator.api_key, ""))


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(app, list(args), env=env, input=stdin)


def said(text: str) -> str:
    """Output with rich's line wrapping undone, for matching messages."""
    return " ".join(text.split())


def write_csv(path: Path, header: str, *rows: str) -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def report_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def contacts_with(served: Served, email: str) -> list[dict[str, Any]]:
    return [c for c in served.emulator.org.contacts.values() if any(e["email"] == email for e in c["emails"])]


def ledger_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM action_ledger").fetchone()[0])


def writes(served: Served, start: int) -> list[tuple[str, str]]:
    """Requests after ``start`` that change Close (searches are POSTs too, but read-only)."""
    return [
        (r.method, r.path)
        for r in served.emulator.request_log[start:]
        if r.method in ("POST", "PUT", "DELETE") and r.path != "/data/search/"
    ]


# -- options come from the specs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        InsertLead,
        InsertContact,
        UpdateLeads,
        UpdateContacts,
        UpsertLeads,
        UpsertContacts,
        SearchLeads,
        SearchContacts,
        DeleteLeads,
        DeleteContacts,
    ],
)
def test_every_spec_field_has_a_cli_option(spec: Any) -> None:
    covered = {option.field for option in SPEC_OPTIONS}
    assert set(spec.model_fields) - NOT_OPTIONS - covered == set()


def test_option_help_is_the_spec_fields_own_description() -> None:
    result = runner.invoke(app, ["contacts", "upsert", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    described = UpsertContacts.model_fields["lead_mismatch"].description
    assert described is not None and described[:60] in result.output


# -- happy paths -----------------------------------------------------------------------------------


def test_contacts_upsert_updates_the_match_creates_the_rest_and_reports_each_record(
    env: dict[str, str], served_emulator: Served, close: httpx2.Client, tmp_path: Path
) -> None:
    lead = close.post("/lead/", json={"name": "Bluth Company"}).json()
    existing = close.post(
        "/contact/",
        json={
            "lead_id": lead["id"],
            "name": "G.O.B.",
            "emails": [{"email": "gob@bluth.example", "type": "office"}],
        },
    ).json()
    people = write_csv(
        tmp_path / "people.csv",
        "full_name,email,source,lead",
        f"Gob Bluth,gob@bluth.example,Referral,{lead['id']}",
        f"Lindsay Fünke,lindsay@bluth.example,,{lead['id']}",
    )

    result = invoke(
        env,
        *("contacts", "upsert", "--input", people, "--match", "email", "--email", "email"),
        *("--map", "name=full_name", "--custom", "Source=source", "--lead-id", "lead"),
        *("--report", str(tmp_path / "out.jsonl")),
    )

    assert result.exit_code == 0, result.output
    report = report_lines(tmp_path / "out.jsonl")
    assert [(r["row"], r["key"], r["status"]) for r in report] == [
        (1, "email=gob@bluth.example", "updated"),
        (2, "email=lindsay@bluth.example", "created"),
    ]
    assert report[0]["ids"] == [existing["id"]]
    source = _custom_key(served_emulator, "Source", "contact")
    assert report[0]["changes"] == [  # custom fields are named as the user wrote them
        {"field": "name", "before": "G.O.B.", "after": "Gob Bluth"},
        {"field": "custom.Source", "before": None, "after": "Referral"},
    ]
    [gob] = contacts_with(served_emulator, "gob@bluth.example")
    assert gob["name"] == "Gob Bluth" and gob[source] == "Referral"
    [lindsay] = contacts_with(served_emulator, "lindsay@bluth.example")
    assert lindsay["lead_id"] == lead["id"] and lindsay["name"] == "Lindsay Fünke"
    assert "created" in result.stdout and "updated" in result.stdout and "batch id:" in result.output


def test_leads_insert_then_update_by_name_from_jsonl_on_stdin(
    env: dict[str, str], served_emulator: Served, tmp_path: Path
) -> None:
    rows = [{"company": "Sitwell Enterprises", "site": "https://sitwell.example"}]
    created = invoke(
        env,
        *("leads", "insert", "--input", "-", "--input-format", "jsonl"),
        *("--map", "name=company", "--map", "url=site", "--set", "status=Qualified"),
        stdin="".join(json.dumps(r) + "\n" for r in rows),
    )
    assert created.exit_code == 0, created.output
    [lead] = [x for x in served_emulator.emulator.org.leads.values() if x["name"] == "Sitwell Enterprises"]
    assert lead["status_label"] == "Qualified" and lead["url"] == "https://sitwell.example"

    updates = write_csv(tmp_path / "u.csv", "company,about", "sitwell enterprises,Rival developers")
    updated = invoke(
        env, "leads", "update", "--input", updates, "--match", "name=company", "--map", "description=about"
    )
    assert updated.exit_code == 0, updated.output
    assert served_emulator.emulator.org.leads[lead["id"]]["description"] == "Rival developers"


def test_search_contacts_as_json_with_custom_fields_by_name(
    env: dict[str, str], served_emulator: Served, close: httpx2.Client
) -> None:
    lead = close.post("/lead/", json={"name": "Bluth"}).json()
    close.post("/contact/", json={"lead_id": lead["id"], "name": "Buster", "title": "Army"})
    result = invoke(
        env, "contacts", "search", "--where", 'title = "Army"', "--fields", "name,title", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    truth = [c for c in served_emulator.emulator.org.contacts.values() if c.get("title") == "Army"]
    assert len(rows) == len(truth) >= 1
    assert {"name": "Buster", "title": "Army"}.items() <= next(
        r for r in rows if r["name"] == "Buster"
    ).items()


# -- dry run, resume, exit codes ---------------------------------------------------------------


def test_dry_run_shows_the_plan_with_field_diffs_and_sends_no_write(
    env: dict[str, str], served_emulator: Served, close: httpx2.Client, tmp_path: Path
) -> None:
    lead = close.post("/lead/", json={"name": "Bluth"}).json()
    close.post("/contact/", json={"lead_id": lead["id"], "name": "Tobias", "title": "Analyst"})
    close.post(
        "/contact/",
        json={"lead_id": lead["id"], "name": "Tobias", "emails": [{"email": "tobias@bluth.example"}]},
    )
    people = write_csv(
        tmp_path / "p.csv", "email,title", "tobias@bluth.example,Actor", "maeby@bluth.example,Producer"
    )
    start = len(served_emulator.emulator.request_log)

    result = invoke(
        env,
        *("contacts", "upsert", "--input", people, "--match", "email", "--email", "email"),
        *("--map", "title=title", "--dry-run", "--report", str(tmp_path / "plan.jsonl")),
    )

    assert result.exit_code == 0, result.output
    assert writes(served_emulator, start) == []
    plan = report_lines(tmp_path / "plan.jsonl")
    assert [(r["status"], r["plan"]) for r in plan] == [("planned", "update"), ("planned", "create")]
    assert plan[0]["changes"] == [{"field": "title", "before": None, "after": "Actor"}]
    assert "title: ∅ → Actor" in result.stdout and "dry run: nothing was written" in result.stdout
    assert ledger_rows(tmp_path / "closeflow.db") == 0


def test_running_the_same_command_again_resumes_the_batch_and_creates_nothing(
    env: dict[str, str], served_emulator: Served, tmp_path: Path
) -> None:
    rows = [f"Lead {i},https://lead{i}.example" for i in range(5)]
    leads = write_csv(tmp_path / "leads.csv", "company,site", *rows)
    command = [
        "leads",
        "upsert",
        "--input",
        leads,
        "--match",
        "url=site",
        "--map",
        "name=company",
        "--map",
        "url=site",
    ]
    first = invoke(env, *command)
    assert first.exit_code == 0, first.output
    start = len(served_emulator.emulator.request_log)

    again = invoke(env, *command, "--report", str(tmp_path / "again.jsonl"))

    assert again.exit_code == 0, again.output
    assert writes(served_emulator, start) == []
    assert [r["status"] for r in report_lines(tmp_path / "again.jsonl")] == ["skipped"] * 5
    batch = next(line for line in first.output.splitlines() if line.startswith("batch id:"))
    assert batch in again.output
    for i in range(5):
        assert sum(1 for x in served_emulator.emulator.org.leads.values() if x["name"] == f"Lead {i}") == 1


def test_a_failed_record_exits_1_after_the_rest_are_written(
    env: dict[str, str], served_emulator: Served, tmp_path: Path
) -> None:
    leads = write_csv(tmp_path / "l.csv", "company,staff", "Good Co,12", "Bad Co,many")

    result = invoke(
        env, "leads", "insert", "--input", leads, "--map", "name=company", "--custom", "Employees=staff"
    )

    assert result.exit_code == 1
    assert "Failed records" in result.stdout and "many" in result.stdout
    names = [x["name"] for x in served_emulator.emulator.org.leads.values()]
    assert names.count("Good Co") == 1 and names.count("Bad Co") == 0


# -- delete --------------------------------------------------------------------------------------


def test_delete_where_refuses_above_max_affected_and_deletes_with_force(
    env: dict[str, str], served_emulator: Served, close: httpx2.Client
) -> None:
    for i in range(3):
        close.post("/lead/", json={"name": f"Import {i}", "custom": {"Source": "Referral"}})
    org = served_emulator.emulator.org
    targets = {
        x["id"] for x in org.leads.values() if x.get(_custom_key(served_emulator, "Source")) == "Referral"
    }
    where = ["--where", 'custom."Source" = "Referral"']

    planned = invoke(env, "leads", "delete", *where, "--max-affected", "2", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert f"{len(targets)} lead(s) would be deleted" in planned.stdout
    assert "a real run would refuse" in planned.stdout

    refused = invoke(env, "leads", "delete", *where, "--max-affected", "2")
    assert refused.exit_code == 1
    assert "--max-affected" in refused.output and "--force" in refused.output
    assert targets <= set(org.leads)

    forced = invoke(env, "leads", "delete", *where, "--max-affected", "2", "--force")
    assert forced.exit_code == 0, forced.output
    assert targets.isdisjoint(org.leads)


def test_contacts_delete_by_match_from_input(
    env: dict[str, str], served_emulator: Served, close: httpx2.Client, tmp_path: Path
) -> None:
    lead = close.post("/lead/", json={"name": "Bluth"}).json()
    for email in ("annyong@bluth.example", "lucille@bluth.example"):
        close.post("/contact/", json={"lead_id": lead["id"], "emails": [{"email": email}]})
    gone = write_csv(tmp_path / "gone.csv", "email", "annyong@bluth.example", "nobody@bluth.example")

    result = invoke(
        env, "contacts", "delete", "--input", gone, "--match", "email", "--report", str(tmp_path / "d.jsonl")
    )

    assert result.exit_code == 0, result.output
    assert [r["status"] for r in report_lines(tmp_path / "d.jsonl")] == ["deleted", "skipped"]
    assert contacts_with(served_emulator, "annyong@bluth.example") == []
    assert len(contacts_with(served_emulator, "lucille@bluth.example")) == 1


def _custom_key(served: Served, name: str, object_type: str = "lead") -> str:
    [field] = [f for f in served.emulator.org.fields_for(object_type) if f["name"] == name]
    return f"custom.{field['id']}"


# -- bad options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["contacts", "upsert", "--input", "{csv}", "--email", "email"], "--match is required"),
        (["contacts", "upsert", "--input", "{csv}", "--match", "emale"], '--match: unknown field "emale"'),
        (["contacts", "insert", "--input", "{csv}", "--map", "nme=name"], '--map: unknown field "nme"'),
        (["contacts", "insert", "--input", "{csv}", "--map", "name"], "--map expects FIELD=COLUMN"),
        (["contacts", "insert", "--input", "{csv}", "--map", "name=nmae"], 'has no column "nmae"'),
        (["contacts", "insert", "--input", "{csv}", "--custom", "Sorce=name"], 'did you mean "Source"'),
        (["contacts", "insert", "--input", "missing.csv"], "--input missing.csv: no such file"),
        (["contacts", "insert", "--map", "name=name"], "--input is required"),
        (["leads", "delete"], "a delete needs criteria"),
        (["leads", "delete", "--where", " "], "--where: where is empty"),
        (["leads", "delete", "--match", "name"], "--match needs --input"),
        (["leads", "insert", "--input", "{csv}", "--map", "name=name", "--set", "status"], "--set expects"),
        (["leads", "insert", "--input", "{bad}", "--map", "name=name"], "line 2"),
        (["leads", "insert", "--input", "{csv}", "--report", "/nonexistent/dir/r.jsonl"], "--report"),
    ],
)
def test_bad_options_exit_2_naming_the_option_and_sending_nothing(
    env: dict[str, str], served_emulator: Served, tmp_path: Path, args: list[str], message: str
) -> None:
    good = write_csv(tmp_path / "in.csv", "name,email", "Gob,gob@bluth.example")
    bad = write_csv(tmp_path / "bad.csv", "name", 'Gob,"unterminated,extra,cells')
    start = len(served_emulator.emulator.request_log)

    result = invoke(env, *(a.format(csv=good, bad=bad) for a in args))

    assert result.exit_code == 2, result.output
    assert message in said(result.output)
    assert writes(served_emulator, start) == []
