"""The run ledger on real SQLite and real Postgres: runs, node attempts, enrolment, cursors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from closeflow._clock import FakeClock
from closeflow.plays._ledger import NodeRecord, SqlRunLedger, open_run_ledger
from closeflow.sync.store import StoreError


@pytest.fixture
def ledger(target: str, clock: FakeClock) -> Iterator[SqlRunLedger]:
    opened = open_run_ledger(target, clock=clock)
    yield opened
    opened.close()


def test_a_run_keeps_its_trigger_context_status_and_node_attempts_in_order(
    ledger: SqlRunLedger, clock: FakeClock
) -> None:
    run_id = ledger.create_run(
        play="follow-up",
        source="play",
        record_id="lead_1",
        change_seq=7,
        trigger={"kind": "updated"},
        context={"record": {"id": "lead_1", "name": "Ada ✓"}},
    )
    assert run_id.startswith("run_")
    ledger.set_status(run_id, "running")
    ledger.record_node(
        run_id,
        NodeRecord(
            "a",
            1,
            "failed",
            input={"x": 1},
            error="boom",
            error_class="ServerError",
            started_at=clock.now(),
            finished_at=clock.now() + 1,
        ),
    )
    ledger.record_node(run_id, NodeRecord("a", 2, "succeeded", output={"ids": ["lead_9"]}, retryable=True))
    ledger.set_status(run_id, "succeeded")

    run = ledger.run(run_id)
    assert run is not None
    assert (run.play, run.source, run.status, run.record_id, run.change_seq) == (
        "follow-up",
        "play",
        "succeeded",
        "lead_1",
        7,
    )
    assert run.trigger == {"kind": "updated"}
    assert run.context == {"record": {"id": "lead_1", "name": "Ada ✓"}}
    assert [(n.node_id, n.attempt, n.status) for n in run.nodes] == [
        ("a", 1, "failed"),
        ("a", 2, "succeeded"),
    ]
    assert run.nodes[0].error_class == "ServerError"
    assert run.nodes[0].finished_at == clock.now() + 1
    assert run.nodes[1].output == {"ids": ["lead_9"]}
    assert ledger.run("run_missing") is None


def test_enrolment_once_admits_a_record_one_time_ever(ledger: SqlRunLedger) -> None:
    assert ledger.enrol("p", "lead_1", 1, "once") is True
    assert ledger.enrol("p", "lead_1", 2, "once") is False
    assert ledger.enrol("other-play", "lead_1", 2, "once") is True


def test_enrolment_every_change_admits_each_change_once(ledger: SqlRunLedger) -> None:
    assert ledger.enrol("p", "lead_1", 1, "every_change") is True
    assert ledger.enrol("p", "lead_1", 2, "every_change") is True
    assert ledger.enrol("p", "lead_1", 2, "every_change") is False


def test_enrol_run_creates_the_run_only_for_a_new_enrolment(ledger: SqlRunLedger) -> None:
    first = ledger.enrol_run(
        play="p", record_id="lead_1", change_seq=3, mode="once", trigger=None, context={}
    )
    again = ledger.enrol_run(
        play="p", record_id="lead_1", change_seq=4, mode="once", trigger=None, context={}
    )
    assert first is not None and again is None
    assert [r.id for r in ledger.runs(play="p")] == [first]
    with pytest.raises(StoreError, match="unknown enrolment mode"):
        ledger.enrol("p", "lead_2", 1, "sometimes")


def test_unfinished_lists_pending_running_and_waiting_runs_oldest_first(
    ledger: SqlRunLedger, clock: FakeClock
) -> None:
    ids = []
    for status in ("pending", "running", "waiting", "succeeded", "failed", "filtered"):
        run_id = ledger.create_run(
            play="p", source="play", record_id=None, change_seq=None, trigger=None, context={}
        )
        ledger.set_status(run_id, status, wake_at=clock.now() + 300 if status == "waiting" else None)  # type: ignore[arg-type]
        ids.append(run_id)
        clock.advance(1)
    unfinished = ledger.unfinished()
    assert [r.id for r in unfinished] == ids[:3]
    assert unfinished[2].wake_at is not None
    assert [r.id for r in ledger.runs(status="failed")] == [ids[4]]
    assert [r.id for r in ledger.runs(play="p", limit=2)] == [ids[5], ids[4]]


def test_cursor_starts_at_zero_and_moves(ledger: SqlRunLedger) -> None:
    assert ledger.cursor("p") == 0
    ledger.set_cursor("p", 41)
    ledger.set_cursor("p", 42)
    assert (ledger.cursor("p"), ledger.cursor("q")) == (42, 0)


def test_a_second_ledger_on_the_same_database_sees_the_runs(target: str, clock: FakeClock) -> None:
    first = open_run_ledger(target, clock=clock)
    run_id = first.create_run(
        play="p", source="cli", record_id=None, change_seq=None, trigger=None, context={}
    )
    first.close()
    second = open_run_ledger(target, clock=clock)
    try:
        run = second.run(run_id)
        assert run is not None and run.source == "cli"
    finally:
        second.close()


def test_unknown_url_schemes_are_refused_with_the_forms_that_work() -> None:
    with pytest.raises(StoreError, match="sqlite:///path or postgresql://"):
        open_run_ledger("mysql://db/x")
