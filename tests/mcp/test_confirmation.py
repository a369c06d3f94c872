"""Confirmed writes: a first call plans and writes nothing, and only the same call repeated with the
plan's single-use token writes, exactly once. Every call lands in the run ledger, never the token."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays import SqliteRunLedger
from tests.actions._org import contacts_with_email, new_lead
from tests.mcp.conftest import Build, answer, connected, writes

TOKEN = "confirmation_token"


@pytest.fixture
async def lead_id(client: CloseClient, emulator: Emulator) -> str:
    """One lead without contacts; the request log starts empty after it."""
    lead = await new_lead(client, name="Acme")
    emulator.request_log.clear()
    return str(lead["id"])


def upsert(lead: str, name: str = "Ann Lee") -> dict[str, Any]:
    return {
        "records": [{"email": "ann@acme.com", "name": name, "lead_id": lead}],
        "match_property": "email",
        "match_value": "email",
    }


def deletes(emulator: Emulator) -> list[str]:
    return [path for method, path in writes(emulator) if method == "DELETE"]


async def test_a_write_without_confirmation_sends_nothing_and_answers_a_plan_with_a_token(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    async with connected(build("read,write")) as session:
        result = await session.call_tool("upsert_contacts", upsert(lead_id))

    assert result.is_error is False
    planned = answer(result)
    assert writes(emulator) == []
    assert contacts_with_email(emulator, "ann@acme.com") == []
    assert [(o["status"], o["plan"]) for o in planned["outcomes"]] == [("planned", "create")]
    assert planned["mode"] == "dry run"
    assert planned[TOKEN].startswith("cft_")
    assert planned["expires_in_seconds"] == 600


async def test_the_same_call_with_the_token_writes_exactly_once(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        result = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})

    done = answer(result)
    assert result.is_error is False
    assert writes(emulator) == [("POST", "/contact/")]
    assert [(o["status"], o["plan"]) for o in done["outcomes"]] == [("created", "create")]
    assert done["mode"] == "executed" and TOKEN not in done
    [contact] = contacts_with_email(emulator, "ann@acme.com")
    assert (contact["name"], contact["lead_id"]) == ("Ann Lee", lead_id)


async def test_a_token_works_once(build: Build, emulator: Emulator, lead_id: str) -> None:
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        first = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})
        again = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})

    assert first.is_error is False
    assert again.is_error is True
    assert "unknown or was already used (each token works once)" in answer(again)["error"]
    assert writes(emulator) == [("POST", "/contact/")]
    assert len(contacts_with_email(emulator, "ann@acme.com")) == 1


async def test_a_token_does_not_confirm_other_arguments_and_is_spent_by_trying(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        other = await session.call_tool("upsert_contacts", {**upsert(lead_id, "Ann Smith"), TOKEN: token})
        original = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})

    assert other.is_error is True
    assert "the arguments differ from the ones this token's plan was made for" in answer(other)["error"]
    assert original.is_error is True
    assert "already used" in answer(original)["error"]
    assert writes(emulator) == []


async def test_a_token_from_one_tool_is_refused_by_another(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    insert = {"records": [{"lead_id": lead_id, "name": "Ann Lee", "email": "ann@acme.com"}]}
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        result = await session.call_tool("insert_contact", {**insert, TOKEN: token})

    assert result.is_error is True
    assert "issued for upsert_contacts, not insert_contact" in answer(result)["error"]
    assert writes(emulator) == []


async def test_a_token_expires_ten_minutes_after_its_plan(
    build: Build, emulator: Emulator, clock: FakeClock, lead_id: str
) -> None:
    async with connected(build("read,write")) as session:
        stale = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        clock.advance(601)
        expired = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: stale})
        assert writes(emulator) == []

        fresh = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        clock.advance(599)
        in_time = await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: fresh})

    assert expired.is_error is True
    assert "this confirmation token expired (600 s after its plan)" in answer(expired)["error"]
    assert in_time.is_error is False
    assert writes(emulator) == [("POST", "/contact/")]


async def test_an_update_that_changes_nothing_offers_no_token(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    same = {"records": [{"id": lead_id, "name": "Acme"}], "match_property": "id", "match_value": "id"}
    async with connected(build("read,write")) as session:
        result = await session.call_tool("update_leads", same)

    planned = answer(result)
    assert result.is_error is False
    assert [o["status"] for o in planned["outcomes"]] == ["unchanged"]
    assert TOKEN not in planned
    assert planned["next_step"].startswith("nothing to write")
    assert writes(emulator) == []


async def _bad_fit_leads(client: CloseClient, emulator: Emulator, count: int) -> set[str]:
    ids = {str((await new_lead(client, name=f"Bad {i}", status="Bad Fit"))["id"]) for i in range(count)}
    emulator.request_log.clear()
    return ids


async def test_a_delete_above_max_affected_is_refused_when_planned_and_deletes_nothing(
    build: Build, client: CloseClient, emulator: Emulator, lead_id: str
) -> None:
    await _bad_fit_leads(client, emulator, 4)
    async with connected(build("read,write,destructive", max_affected=3)) as session:
        refused = await session.call_tool("delete_leads", {"where": 'status = "Bad Fit"'})
        lifted = await session.call_tool("delete_leads", {"where": 'status = "Bad Fit"', "max_affected": 4})

    assert refused.is_error is True
    assert "refusing to delete 4 leads: more than max_affected=3" in answer(refused)["error"]
    assert TOKEN not in answer(refused)
    assert lifted.is_error is True
    assert "max_affected: 4 is greater than the maximum of 3" in answer(lifted)["error"]
    assert writes(emulator) == []
    assert len(emulator.org.leads) == 5


async def test_a_confirmed_delete_deletes_exactly_the_planned_leads(
    build: Build, client: CloseClient, emulator: Emulator, lead_id: str
) -> None:
    doomed = await _bad_fit_leads(client, emulator, 3)
    where = {"where": 'status = "Bad Fit"'}
    async with connected(build("read,write,destructive", max_affected=3)) as session:
        planned = answer(await session.call_tool("delete_leads", where))
        assert deletes(emulator) == []
        result = await session.call_tool("delete_leads", {**where, TOKEN: planned[TOKEN]})

    assert {i for o in planned["outcomes"] for i in o["ids"]} == doomed
    assert result.is_error is False
    assert sorted(deletes(emulator)) == sorted(f"/lead/{i}/" for i in doomed)
    assert set(emulator.org.leads) == {lead_id}


async def test_without_confirmation_a_write_runs_at_once_and_a_dry_run_writes_nothing(
    build: Build, emulator: Emulator, lead_id: str
) -> None:
    async with connected(build("read,write", confirm=False)) as session:
        dry = await session.call_tool("upsert_contacts", {**upsert(lead_id), "dry_run": True})
        assert writes(emulator) == []
        done = await session.call_tool("upsert_contacts", upsert(lead_id))

    assert [o["status"] for o in answer(dry)["outcomes"]] == ["planned"]
    assert TOKEN not in answer(dry)
    assert [o["status"] for o in answer(done)["outcomes"]] == ["created"]
    assert writes(emulator) == [("POST", "/contact/")]


async def test_every_call_is_in_the_run_ledger_and_the_token_text_is_not(
    build: Build,
    emulator: Emulator,
    clock: FakeClock,
    run_ledger: SqliteRunLedger,
    tmp_path: Path,
    lead_id: str,
) -> None:
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("upsert_contacts", upsert(lead_id)))[TOKEN]
        await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})
        await session.call_tool("upsert_contacts", {**upsert(lead_id), TOKEN: token})
        other = answer(await session.call_tool("upsert_contacts", upsert(lead_id, "Ann Smith")))[TOKEN]
        await session.call_tool("insert_contact", {"records": [{"lead_id": lead_id}], TOKEN: other})
        stale = answer(await session.call_tool("upsert_contacts", upsert(lead_id, "Ann Lee-Smith")))[TOKEN]
        clock.advance(601)
        await session.call_tool("upsert_contacts", {**upsert(lead_id, "Ann Lee-Smith"), TOKEN: stale})

    runs = run_ledger.runs(source="mcp")
    assert Counter((r.play, r.status) for r in runs) == {
        ("upsert_contacts", "succeeded"): 4,
        ("upsert_contacts", "failed"): 2,
        ("insert_contact", "failed"): 1,
    }
    assert Counter(r.context["mode"] for r in runs if r.status == "succeeded") == {"plan": 3, "execute": 1}
    # a refused confirmation is recorded as the execute it asked for
    assert {r.context["mode"] for r in runs if r.status == "failed"} == {"execute"}
    confirmed = [r for r in runs if r.context["mode"] == "execute" and r.status == "succeeded"]
    assert confirmed[0].context["input"] == {**upsert(lead_id), TOKEN: "***"}
    assert {r.error.split(";")[0] for r in runs if r.status == "failed" and r.error} == {
        "this confirmation token is unknown or was already used (each token works once)",
        "this confirmation token was issued for upsert_contacts, not insert_contact",
        "this confirmation token expired (600 s after its plan)",
    }
    assert writes(emulator) == [("POST", "/contact/")]

    db = sqlite3.connect(tmp_path / "closeflow.db")
    stored = "\n".join(db.iterdump())  # every row of every table, as text
    db.close()
    assert "upsert_contacts" in stored and "***" in stored
    for text in (token, other, stale):
        assert text not in stored
