"""`insert_note`: a note on a lead's timeline, created at most once per batch, lead and text."""

from __future__ import annotations

import pytest

from closeflow.actions import InsertNote, SqliteLedger, execute, parse_spec
from closeflow.close import CloseClient
from closeflow.emulator import Emulator

SPEC = InsertNote(lead_id="lead", note="text")


async def _lead(client: CloseClient) -> str:
    return str((await client.post("/lead/", json={"name": "Bluth Company"}))["id"])


def _notes(emulator: Emulator, lead_id: str) -> list[dict[str, object]]:
    return [a for a in emulator.org.children(lead_id, "activity") if a["_type"] == "Note"]


async def test_a_note_lands_on_the_lead_once(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    lead_id = await _lead(client)
    record = {"lead": lead_id, "text": "Qualified: call back Tuesday"}
    first = await execute(client, SPEC, record, ledger=ledger, batch_id="run-1:note")
    again = await execute(client, SPEC, record, ledger=ledger, batch_id="run-1:note")
    assert first.status == "created" and again.status == "skipped"
    assert again.ids == first.ids
    assert [n["note"] for n in _notes(emulator, lead_id)] == ["Qualified: call back Tuesday"]
    assert emulator.requests("POST", "/activity/note/") == 1


async def test_a_lost_answer_is_found_on_the_lead_instead_of_posting_twice(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    lead_id = await _lead(client)
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern="/activity/note/")
    outcome = await execute(client, SPEC, {"lead": lead_id, "text": "hello"}, ledger=ledger, batch_id="b")
    assert outcome.status == "created" and outcome.note and "recovered" in outcome.note
    assert len(_notes(emulator, lead_id)) == 1


async def test_dry_run_plans_the_note_and_sends_nothing(client: CloseClient, emulator: Emulator) -> None:
    lead_id = await _lead(client)
    spec = parse_spec({"action": "insert_note", "lead_id": "lead", "note": "text", "dry_run": True})
    outcome = await execute(client, spec, {"lead": lead_id, "text": "plan me"})
    assert (outcome.status, outcome.plan) == ("planned", "create")
    assert emulator.requests("POST", "/activity/note/") == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"lead": "cont_x", "text": "t"}, "lead: expected a lead id"),
        ({"lead": "lead_x", "text": " "}, "empty"),
    ],
)
async def test_bad_input_fails_the_record_before_any_write(
    client: CloseClient, emulator: Emulator, record: dict[str, str], message: str
) -> None:
    outcome = await execute(client, SPEC, record)
    assert outcome.status == "failed" and outcome.error and message in outcome.error
    assert emulator.requests("POST") == 0
