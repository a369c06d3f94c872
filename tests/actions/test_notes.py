"""`insert_note`: a note on a lead's timeline, created at most once per batch, lead and text."""

from __future__ import annotations

import hashlib

import pytest

from closeflow._clock import FakeClock
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


# --- a lost answer with an identical note already on the lead (another batch wrote it) ---

TEXT = "Called, no answer."


async def _first_note(client: CloseClient, ledger: SqliteLedger, lead_id: str) -> str:
    first = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="first")
    assert first.status == "created"
    return first.ids[0]


async def test_a_lost_answer_is_not_mistaken_for_an_identical_note_written_a_minute_before(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    lead_id = await _lead(client)
    first_id = await _first_note(client, ledger, lead_id)
    clock.advance(60)  # well inside the clock-skew margin recovery allows
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern="/activity/note/")

    second = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="second")

    notes = {str(n["id"]) for n in _notes(emulator, lead_id)}
    assert second.status == "created" and second.note and "recovered" in second.note
    assert len(notes) == 2 and notes == {first_id, *second.ids}
    assert second.ids != [first_id]
    assert emulator.requests("POST", "/activity/note/") == 2  # one each: the lost one was not re-sent


async def test_a_refused_post_is_sent_again_instead_of_adopting_the_earlier_identical_note(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    lead_id = await _lead(client)
    first_id = await _first_note(client, ledger, lead_id)
    clock.advance(60)
    emulator.faults.fail_next(1, status=500, method="POST", path_pattern="/activity/note/")

    second = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="second")

    notes = {str(n["id"]) for n in _notes(emulator, lead_id)}
    assert second.status == "created" and second.note is None
    assert len(notes) == 2 and notes == {first_id, *second.ids}
    assert second.ids != [first_id]
    assert emulator.requests("POST", "/activity/note/") == 3  # the first, the refused one, its resend


async def test_a_note_refused_twice_fails_rather_than_reporting_the_earlier_one_as_created(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    lead_id = await _lead(client)
    first_id = await _first_note(client, ledger, lead_id)
    clock.advance(60)
    emulator.faults.fail_next(2, status=500, method="POST", path_pattern="/activity/note/")

    second = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="second")

    assert second.status == "failed" and second.ids == []
    assert second.error and "lost twice" in second.error
    assert [str(n["id"]) for n in _notes(emulator, lead_id)] == [first_id]
    assert ledger.entries("second", "insert_note", [second.key])[second.key].pending


async def test_resuming_a_dead_intent_does_not_adopt_another_batchs_identical_note(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    lead_id = await _lead(client)
    first_id = await _first_note(client, ledger, lead_id)
    clock.advance(30)
    key = f"note:{lead_id}:" + hashlib.sha256(TEXT.encode()).hexdigest()[:16]
    # The process died between this intent and its POST: Close never saw the second note.
    ledger.record_intent("second", key, "insert_note", run_id="dead", row=None, at=clock.now())
    clock.advance(30)

    second = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="second")

    notes = {str(n["id"]) for n in _notes(emulator, lead_id)}
    assert second.key == key and second.status == "created" and second.note is None
    assert len(notes) == 2 and notes == {first_id, *second.ids}


async def test_a_lost_answer_is_still_recovered_when_closes_clock_runs_behind_ours(
    emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    ahead = FakeClock(clock.now() + 90)  # Close dates the note 90 s before our intent
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=ahead
    ) as client:
        lead_id = await _lead(client)
        emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern="/activity/note/")
        outcome = await execute(client, SPEC, {"lead": lead_id, "text": TEXT}, ledger=ledger, batch_id="b")

    assert outcome.status == "created" and outcome.note and "recovered" in outcome.note
    assert [str(n["id"]) for n in _notes(emulator, lead_id)] == outcome.ids
    assert emulator.requests("POST", "/activity/note/") == 1


def test_the_ledger_tells_which_close_ids_it_already_records(ledger: SqliteLedger) -> None:
    ledger.record_intent("b", "k1", "insert_note", run_id="r", row=None, at=1.0)
    ledger.record_outcome("b", "k1", "insert_note", run_id="r", row=None, status="created",
                          close_ids=["acti_1"], error=None, at=2.0)  # fmt: skip
    ledger.record_intent("b", "k2", "insert_note", run_id="r", row=None, at=3.0)  # pending, no ids

    assert ledger.recorded(["acti_1", "acti_12", "acti_", "acti_2"]) == {"acti_1"}
