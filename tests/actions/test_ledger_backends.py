"""The write ledger on real SQLite and real Postgres: the same intents, outcomes and lookups on both, and
runners on two connections to one database sharing them (at-most-once creates across machines)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from closeflow._clock import FakeClock
from closeflow.actions import (
    InsertLead,
    Ledger,
    PostgresLedger,
    SqliteLedger,
    open_write_ledger,
    run_action,
)
from closeflow.cli import app
from closeflow.cli._plays import open_writes
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.sync.store import StoreError
from tests.actions._org import Requests, leads_named
from tests.conftest import Served
from tests.plays._fixtures import POSTGRES_URL, postgres_schema_url

Opener = Callable[[], Ledger]
LEADS = InsertLead(mappings={"name": "company", "url": "site"})


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


def _opener(target: str) -> Iterator[Opener]:
    """Each call opens one more ledger (its own connection) on ``target``; all are closed afterwards."""
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        opened.append(open_write_ledger(target))
        return opened[-1]

    yield open_one
    for ledger in opened:
        ledger.close()


@pytest.fixture
def open_ledger(target: str) -> Iterator[Opener]:
    yield from _opener(target)


@pytest.fixture
def open_pg_ledger(pg_url: str) -> Iterator[Opener]:
    yield from _opener(pg_url)


def _created(ledger: Ledger, batch: str, key: str, *ids: str, run_id: str = "r1", at: float = 2.0) -> None:
    ledger.record_outcome(
        batch, key, "insert_lead", run_id=run_id, row=1, status="created", close_ids=ids, error=None, at=at
    )


def test_an_intent_is_pending_until_its_outcome_keeps_the_created_ids(open_ledger: Opener) -> None:
    ledger = open_ledger()
    at = 1_700_000_000.25  # epoch seconds: kept to the quarter second (a 4-byte float would not)
    ledger.record_intent("b", "url=a.example", "insert_lead", run_id="r1", row=3, at=at)
    [pending] = ledger.entries("b", "insert_lead", ["url=a.example"]).values()
    _created(ledger, "b", "url=a.example", "lead_1", at=at + 2)

    [done] = ledger.entries("b", "insert_lead", ["url=a.example"]).values()

    assert (pending.pending, pending.done, pending.status, pending.row, pending.run_id) == (
        True, False, None, 3, "r1",
    )  # fmt: skip
    assert pending.intent_at == at and pending.close_ids == ()
    assert (done.pending, done.done, done.status, done.close_ids, done.error) == (
        False, True, "created", ("lead_1",), None,
    )  # fmt: skip
    assert done.intent_at == at  # the outcome keeps when the create was meant


def test_entries_are_per_batch_and_action_and_leave_out_unknown_keys(open_ledger: Opener) -> None:
    ledger = open_ledger()
    ledger.record_intent("b1", "k", "insert_lead", run_id="r", row=1, at=1.0)
    ledger.record_intent("b2", "k", "insert_lead", run_id="r", row=2, at=1.0)
    ledger.record_intent("b1", "k", "insert_note", run_id="r", row=3, at=1.0)

    found = ledger.entries("b1", "insert_lead", ["k", "missing", "k"])

    assert list(found) == ["k"]
    assert (found["k"].batch_id, found["k"].action, found["k"].row) == ("b1", "insert_lead", 1)


def test_a_failed_record_gets_a_fresh_intent_when_it_is_tried_again(open_ledger: Opener) -> None:
    ledger = open_ledger()
    ledger.record_intent("b", "k", "insert_lead", run_id="r1", row=1, at=1.0)
    ledger.record_outcome(
        "b", "k", "insert_lead", run_id="r1", row=1, status="failed", close_ids=[], error="400: bad", at=2.0
    )
    [failed] = ledger.entries("b", "insert_lead", ["k"]).values()
    ledger.record_intent("b", "k", "insert_lead", run_id="r2", row=1, at=5.0)

    [again] = ledger.entries("b", "insert_lead", ["k"]).values()

    assert (failed.done, failed.pending, failed.error) == (False, False, "400: bad")
    assert (again.pending, again.status, again.error, again.run_id, again.intent_at) == (
        True, None, None, "r2", 5.0,
    )  # fmt: skip


def test_entries_reads_more_keys_than_one_statement_binds(open_ledger: Opener) -> None:
    ledger = open_ledger()
    keys = [f"email=p{i}@example.com" for i in range(1_201)]
    for i, key in enumerate(keys):
        ledger.record_intent("big", key, "upsert_contact", run_id="r", row=i + 1, at=1.0)

    found = ledger.entries("big", "upsert_contact", [*keys, "email=nobody@example.com"])

    assert set(found) == set(keys)
    assert found[keys[1_200]].row == 1_201


def test_recorded_names_exactly_the_close_ids_some_outcome_holds(open_ledger: Opener) -> None:
    ledger = open_ledger()
    _created(ledger, "b1", "k1", "lead_ab", "lead_x%y")
    _created(ledger, "b2", "k2", 'note_"q"\\1')
    ledger.record_intent("b3", "k3", "insert_lead", run_id="r", row=1, at=1.0)  # pending: no ids
    decoys = [f"lead_{i}" for i in range(250)]  # more ids than one lookup statement takes

    found = ledger.recorded(["lead_a", "lead_AB", "lead__b", "lead_x%y", 'note_"q"\\1', *decoys, "lead_ab"])

    assert found == {"lead_ab", "lead_x%y", 'note_"q"\\1'}
    assert ledger.recorded([]) == set()


def test_a_second_ledger_on_the_database_sees_an_intent_as_soon_as_it_is_recorded(
    open_ledger: Opener,
) -> None:
    first, second = open_ledger(), open_ledger()

    first.record_intent("b", "k", "insert_lead", run_id="runner-a", row=1, at=1.0)
    seen_pending = second.entries("b", "insert_lead", ["k"])["k"].pending
    _created(first, "b", "k", "lead_1", run_id="runner-a")

    assert seen_pending is True
    assert second.entries("b", "insert_lead", ["k"])["k"].close_ids == ("lead_1",)
    assert second.recorded(["lead_1"]) == {"lead_1"}


def test_two_runners_racing_on_the_same_intents_leave_one_whole_row_each(open_ledger: Opener) -> None:
    # Two connections record the same intents and outcomes at once: the key is the table's primary
    # key and each write one statement, so there is never a second row, an error, or a row mixing
    # one runner's run id with the other's created ids.
    keys = [f"url=lead{i}.example" for i in range(60)]
    ledgers = {"runner-a": open_ledger(), "runner-b": open_ledger()}
    start = threading.Barrier(len(ledgers))
    errors: list[BaseException] = []

    def race(run_id: str, ledger: Ledger) -> None:
        try:
            start.wait()
            for key in keys:
                ledger.record_intent("race", key, "insert_lead", run_id=run_id, row=1, at=1.0)
                _created(ledger, "race", key, f"lead_{run_id}_{key}", run_id=run_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=item) for item in ledgers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seen = [ledger.entries("race", "insert_lead", keys) for ledger in ledgers.values()]
    assert seen[0] == seen[1] and set(seen[0]) == set(keys)
    for key, entry in seen[0].items():
        assert entry.run_id in ledgers
        assert entry.close_ids == (f"lead_{entry.run_id}_{key}",)


def test_open_write_ledger_takes_the_stores_target_forms(tmp_path: Path) -> None:
    by_path = open_write_ledger(tmp_path / "a.db")
    by_url = open_write_ledger(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert isinstance(by_path, SqliteLedger) and by_path.path == str(tmp_path / "a.db")
        assert isinstance(by_url, SqliteLedger) and by_url.path == str(tmp_path / "b.db")
    finally:
        by_path.close()
        by_url.close()
    with pytest.raises(StoreError, match="unsupported write ledger URL scheme 'mysql'"):
        open_write_ledger("mysql://db/closeflow")
    with pytest.raises(StoreError, match="schema= applies to Postgres only"):
        open_write_ledger(tmp_path / "c.db", schema="writes")


def test_an_unreachable_postgres_is_named_without_its_password() -> None:
    with pytest.raises(StoreError, match=r"^cannot open the write ledger at postgresql://ops:\*\*\*@") as err:
        open_write_ledger("postgresql://ops:hunter2@127.0.0.1:1/closeflow?connect_timeout=2")

    assert "hunter2" not in str(err.value)


def test_the_cli_keeps_the_write_ledger_in_the_stores_database_unless_told(
    tmp_path: Path, pg_url: str
) -> None:
    own = str(tmp_path / "writes.db")
    with_store, told = open_writes(None, pg_url), open_writes(own, pg_url)
    with_store.close()
    told.close()

    assert isinstance(with_store, PostgresLedger) and with_store.schema == pg_url.rsplit("=", 1)[1]
    assert isinstance(told, SqliteLedger) and told.path == own


def test_a_cli_tool_run_on_postgres_records_its_writes_in_that_schema(
    tmp_path: Path, pg_url: str, served_emulator: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the old CLI put closeflow-writes.db
    plays = shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "plays", tmp_path / "plays")
    lead_id = sorted(served_emulator.emulator.org.leads)[0]
    env = {"CLOSE_API_KEY": served_emulator.emulator.api_key, "CLOSE_BASE_URL": served_emulator.base_url}

    result = CliRunner().invoke(
        app,
        ["tools", "run", "add-note", "--plays", str(plays), "--postgres", pg_url,
         "--input", json.dumps({"lead_id": lead_id, "text": "hello"})],
        env=env,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    with psycopg.connect(POSTGRES_URL) as conn:
        schema = pg_url.rsplit("=", 1)[1]
        rows = conn.execute(f'SELECT action, status FROM "{schema}".action_ledger').fetchall()
    assert rows == [("insert_note", "created")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plays"]


# --- end to end: a batch on one runner, resumed by another on the same Postgres schema -----------


async def test_a_dropped_create_answer_is_not_sent_again_by_a_second_postgres_ledger(
    client: CloseClient, emulator: Emulator, open_pg_ledger: Opener
) -> None:
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern=r"/lead/$")
    rows = [{"company": "Bluth Company", "site": "https://bluth.example"}]
    first = await run_action(client, LEADS, rows, ledger=open_pg_ledger(), batch_id="b1").collect()
    requests = Requests(emulator)

    again = await run_action(client, LEADS, rows, ledger=open_pg_ledger(), batch_id="b1").collect()

    assert [o.status for o in first] == ["created"] and "recovered" in (first[0].note or "")
    [lead] = leads_named(emulator, "Bluth Company")
    assert [(o.status, o.ids) for o in again] == [("skipped", [lead["id"]])]
    assert requests.count("POST") == 0


async def test_a_create_a_dead_runner_sent_is_recovered_not_resent_by_another_runner(
    client: CloseClient, emulator: Emulator, open_pg_ledger: Opener, clock: FakeClock
) -> None:
    # Runner A recorded its intent, its POST reached Close, and A died before writing the outcome.
    dead = open_pg_ledger()
    dead.record_intent("b2", "url=lead0.example", "insert_lead", run_id="dead", row=1, at=clock.now())
    await client.post("/lead/", json={"name": "Lead 0", "url": "https://lead0.example"})
    dead.close()
    clock.advance(5)
    requests = Requests(emulator)
    rows = [{"company": f"Lead {i}", "site": f"https://lead{i}.example"} for i in range(2)]

    outcomes = await run_action(client, LEADS, rows, ledger=open_pg_ledger(), batch_id="b2").collect()

    assert [o.status for o in outcomes] == ["created", "created"]
    assert "recovered" in (outcomes[0].note or "") and outcomes[1].note is None
    assert requests.count("POST", "/lead/") == 1
    assert [len(leads_named(emulator, f"Lead {i}")) for i in range(2)] == [1, 1]
