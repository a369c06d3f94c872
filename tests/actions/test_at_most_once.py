"""Creates happen at most once: lost answers, interrupted batches and re-runs never duplicate."""

from __future__ import annotations

from closeflow._clock import FakeClock
from closeflow.actions import SEARCH_LAG, InsertLead, SqliteLedger, UpsertContacts, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, contacts_with_email, leads_named, new_lead

LEADS = InsertLead(mappings={"name": "company", "url": "site"})


async def test_a_dropped_answer_after_the_lead_was_created_does_not_duplicate_it(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern=r"/lead/$")
    rows = [
        {"company": "Bluth Company", "site": "https://bluth.example"},
        {"company": "Sitwell", "site": "https://sitwell.example"},
    ]

    outcomes = await run_action(client, LEADS, rows, ledger=ledger, batch_id="b1").collect()

    assert [o.status for o in outcomes] == ["created", "created"]
    assert outcomes[0].note is not None and "recovered" in outcomes[0].note
    assert len(leads_named(emulator, "Bluth Company")) == 1
    assert outcomes[0].ids == [leads_named(emulator, "Bluth Company")[0]["id"]]
    assert len(leads_named(emulator, "Sitwell")) == 1


async def test_a_lost_answer_is_not_sent_again_until_closes_search_has_caught_up(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    # A 503 from a proxy: Close did not create the lead, but a miss in Close's search right after
    # the POST proves nothing (its index lags 30-60 s), so the run leaves the intent pending.
    emulator.faults.fail_next(1, status=503, method="POST", path_pattern=r"/lead/$")
    rows = [{"company": "Bluth", "site": "https://bluth.example"}]
    requests = Requests(emulator)

    [first] = await run_action(client, LEADS, rows, ledger=ledger, batch_id="b").collect()
    clock.advance(SEARCH_LAG - 1)
    [early] = await run_action(client, LEADS, rows, ledger=ledger, batch_id="b").collect()
    posts_before_lag = requests.count("POST", "/lead/")
    clock.advance(2)
    [late] = await run_action(client, LEADS, rows, ledger=ledger, batch_id="b").collect()

    assert first.status == "failed" and first.error is not None and "re-run batch b" in first.error
    assert early.status == "failed" and early.error is not None and "Close's search" in early.error
    assert posts_before_lag == 1
    assert late.status == "created" and late.note is None
    assert requests.count("POST", "/lead/") == 2
    assert len(leads_named(emulator, "Bluth")) == 1


async def test_rerunning_a_batch_skips_completed_records(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    rows = [{"company": f"Lead {i}", "site": f"https://lead{i}.example"} for i in range(5)]
    await run_action(client, LEADS, rows, ledger=ledger, batch_id="import-1").collect()
    requests = Requests(emulator)

    again = await run_action(client, LEADS, rows, ledger=ledger, batch_id="import-1").collect()

    assert [o.status for o in again] == ["skipped"] * 5
    assert all(o.ids for o in again)
    assert requests.count("POST") == 0
    assert len(emulator.org.leads) == 5


async def test_resuming_after_an_interruption_creates_nothing_twice(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    rows = [{"company": f"Lead {i}", "site": f"https://lead{i}.example"} for i in range(4)]
    # The first run finished rows 1-2; for row 3 it recorded its intent, the POST reached Close,
    # and the process died before the outcome was written; row 4 was never started.
    await run_action(client, LEADS, rows[:2], ledger=ledger, batch_id="import-2").collect()
    ledger.record_intent("import-2", "url=lead2.example", "insert_lead", run_id="dead", row=3, at=clock.now())
    await client.post("/lead/", json={"name": "Lead 2", "url": "https://lead2.example"})
    clock.advance(5)

    outcomes = await run_action(client, LEADS, rows, ledger=ledger, batch_id="import-2").collect()

    assert [o.status for o in outcomes] == ["skipped", "skipped", "created", "created"]
    assert outcomes[2].note is not None and "recovered" in outcomes[2].note
    for i in range(4):
        assert len(leads_named(emulator, f"Lead {i}")) == 1


async def test_an_intent_whose_post_never_arrived_is_sent_on_resume(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    ledger.record_intent("import-3", "url=lead0.example", "insert_lead", run_id="dead", row=1, at=clock.now())
    clock.advance(SEARCH_LAG)  # long enough for Close's search to show the lead, had it been created

    [outcome] = await run_action(
        client,
        LEADS,
        [{"company": "Lead 0", "site": "https://lead0.example"}],
        ledger=ledger,
        batch_id="import-3",
    ).collect()

    assert outcome.status == "created" and outcome.note is None
    assert len(leads_named(emulator, "Lead 0")) == 1


async def test_upsert_contacts_survives_a_dropped_create_answer(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    lead = await new_lead(client)
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern=r"/contact/$")
    spec = UpsertContacts(
        match_property="email", match_value="email", email="email", associated_lead_id="lead"
    )

    [outcome] = await run_action(
        client, spec, [{"email": "gob@example.com", "lead": lead["id"]}], ledger=ledger
    ).collect()

    assert outcome.status == "created"
    assert len(contacts_with_email(emulator, "gob@example.com")) == 1


def test_the_ledger_survives_reopening(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "ledger.db"
    first = SqliteLedger(path)
    first.record_intent("b", "k", "insert_lead", run_id="r1", row=1, at=10.0)
    first.close()
    second = SqliteLedger(path)
    [entry] = second.entries("b", "insert_lead", ["k", "other"]).values()
    assert entry.pending and not entry.done and entry.row == 1
    second.record_outcome(
        "b",
        "k",
        "insert_lead",
        run_id="r2",
        row=1,
        status="created",
        close_ids=["lead_1"],
        error=None,
        at=11.0,
    )
    [entry] = second.entries("b", "insert_lead", ["k"]).values()
    assert entry.done and entry.close_ids == ("lead_1",) and entry.intent_at == 10.0
