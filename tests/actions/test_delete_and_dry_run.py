"""Guarded deletes and dry runs: nothing is written unless it is meant to be."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from closeflow.actions import (
    DeleteContacts,
    DeleteLeads,
    DeleteRefused,
    InsertLead,
    UpsertContacts,
    run_action,
)
from closeflow.cli import app
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, new_contact, new_lead
from tests.conftest import Served


def test_a_delete_without_criteria_is_refused() -> None:
    with pytest.raises(ValidationError, match="a delete needs criteria"):
        DeleteLeads()
    with pytest.raises(ValidationError, match="where is empty"):
        DeleteLeads(where="  ")


async def _leads(client: CloseClient, count: int, status: str = "Bad Fit") -> list[str]:
    return [(await new_lead(client, name=f"Lead {i}", status=status))["id"] for i in range(count)]


async def test_a_delete_above_max_affected_deletes_nothing(client: CloseClient, emulator: Emulator) -> None:
    await _leads(client, 12)
    requests = Requests(emulator)

    with pytest.raises(DeleteRefused, match="refusing to delete 12 leads: more than max_affected=10"):
        await run_action(client, DeleteLeads(where='status = "Bad Fit"')).collect()

    assert requests.count("DELETE") == 0
    assert len(emulator.org.leads) == 12


async def test_force_deletes_above_max_affected(client: CloseClient, emulator: Emulator) -> None:
    await _leads(client, 12)
    keep = await new_lead(client, name="Keeper", status="Customer")

    run = run_action(client, DeleteLeads(where='status = "Bad Fit"', force=True))
    outcomes = await run.collect()

    assert [o.status for o in outcomes] == ["deleted"] * 12
    assert list(emulator.org.leads) == [keep["id"]]


async def test_a_delete_dry_run_shows_the_count_and_deletes_nothing(
    client: CloseClient, emulator: Emulator
) -> None:
    await _leads(client, 12)
    requests = Requests(emulator)

    run = run_action(client, DeleteLeads(where='status = "Bad Fit"', dry_run=True))
    outcomes = await run.collect()

    assert [(o.status, o.plan) for o in outcomes] == [("planned", "delete")] * 12
    assert "12 lead(s) would be deleted" in run.summary.notes
    assert any("would refuse" in note for note in run.summary.notes)
    assert requests.count("DELETE") == 0 and requests.count("PUT") == 0


async def test_delete_contacts_by_email_follows_on_many(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client)
    one = await new_contact(client, lead["id"], "gob@example.com")
    two = await new_contact(client, lead["id"], "gob@example.com")
    solo = await new_contact(client, lead["id"], "maeby@example.com")
    spec = DeleteContacts(match=[{"property": "email", "value": "email"}])
    rows = [{"email": "gob@example.com"}, {"email": "maeby@example.com"}, {"email": "nobody@example.com"}]

    outcomes = await run_action(client, spec, rows).collect()

    assert [o.status for o in outcomes] == ["failed", "deleted", "skipped"]
    assert set(emulator.org.contacts) == {one["id"], two["id"]}
    both = await run_action(client, spec.model_copy(update={"on_many": "all"}), rows[:1]).collect()
    assert both[0].status == "deleted" and sorted(both[0].ids) == sorted([one["id"], two["id"]])
    assert solo["id"] not in emulator.org.contacts


async def test_dry_run_sends_no_write_and_reports_the_plan(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client)
    await new_contact(client, lead["id"], "gob@example.com", name="Gob")
    await new_contact(client, lead["id"], "maeby@example.com", name="Maeby")
    spec = UpsertContacts(
        match_property="email", match_value="email", email="email", mappings={"name": "name"}, dry_run=True
    )
    rows = [
        {"email": "gob@example.com", "name": "Gob Bluth"},
        {"email": "maeby@example.com", "name": "Maeby"},
        {"email": "new@example.com", "name": "New"},
    ]
    requests = Requests(emulator)

    run = run_action(client, spec, rows)
    outcomes = await run.collect()

    assert [(o.status, o.plan) for o in outcomes] == [
        ("planned", "update"),
        ("unchanged", "unchanged"),
        ("planned", "create"),
    ]
    assert [(c.field, c.before, c.after) for c in outcomes[0].changes] == [("name", "Gob", "Gob Bluth")]
    assert requests.count("PUT") == requests.count("DELETE") == 0
    assert requests.count("POST") == requests.count("POST", "/data/search/") == 1
    assert run.summary.by_plan == {"update": 1, "unchanged": 1, "create": 1}


async def test_insert_dry_run_sends_nothing(client: CloseClient, emulator: Emulator) -> None:
    requests = Requests(emulator)
    outcomes = await run_action(
        client, InsertLead(mappings={"name": "n"}, dry_run=True), [{"n": "A"}]
    ).collect()
    assert [(o.status, o.plan) for o in outcomes] == [("planned", "create")]
    assert requests.count("POST") == 0 and not emulator.org.leads


def test_a_dry_run_from_the_cli_leaves_no_ledger_file(served_emulator: Served, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("company,site\nBluth,https://bluth.example\n", encoding="utf-8")
    ledger = tmp_path / "l.db"
    env = {"CLOSE_BASE_URL": served_emulator.base_url, "CLOSE_API_KEY": served_emulator.emulator.api_key}
    command = ["leads", "upsert", "--input", str(tmp_path / "in.csv"), "--match", "url=site"]
    command += ["--map", "name=company", "--ledger", str(ledger), "--dry-run"]

    result = CliRunner().invoke(app, command, env=env)

    assert result.exit_code == 0, result.output
    assert not ledger.exists()
    assert len(served_emulator.emulator.org.leads) == 120  # the emulator's seed leads, no more
