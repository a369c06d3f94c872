"""Retry policies, non-retryable errors and failure branches, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays._engine import run_to_end
from closeflow.plays._interpreter import backoff
from tests.plays._fixtures import catalog, executed, ledgers


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=clock
    ) as close_client:
        yield close_client


def _start(ledger: Any, play: str) -> str:
    return str(
        ledger.create_run(
            play=play,
            source="play",
            record_id="lead_x",
            change_seq=1,
            trigger=None,
            context={"record": {"id": "lead_x"}},
        )
    )


BAD_CONTACT = """
kind: play
name: bad-contact
trigger: {model: leads}
nodes:
  - id: add_contact
    type: action
    action: insert_contact
    config: {associated_lead_id: lead_id, mappings: {name: name}}
    record: {lead_id: lead_doesnotexist0000000000000000000000000, name: Bo}
    retry: {max_attempts: 3, initial_interval: 1, NON_RETRYABLE}
    ON_FAILURE
  - {id: done, type: end}
  - {id: log_it, type: set, vars: {failed: "{{ nodes.add_contact.error }}"}, next: give_up}
  - {id: give_up, type: end, status: failed}
"""


def _bad(non_retryable: str = "", on_failure: str = "") -> str:
    return BAD_CONTACT.replace("NON_RETRYABLE", non_retryable or "max_interval: 60").replace(
        "ON_FAILURE", f"on_failure: {on_failure}" if on_failure else ""
    )


def test_backoff_doubles_from_the_initial_interval_and_stops_at_the_cap() -> None:
    policy = type("P", (), {"initial_interval": 1.0, "backoff_coefficient": 2.0, "max_interval": 30.0})()
    assert [backoff(policy, n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


async def test_a_failing_action_is_tried_max_attempts_times_with_backoff_then_fails_the_run(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", b=_bad())
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _start(ledger, "bad-contact"), plays, ledger=ledger, client=client, write_ledger=writes, clock=clock
    )
    assert run.status == "failed"
    assert [(n.node_id, n.attempt, n.status) for n in run.nodes] == [
        ("add_contact", 1, "failed"),
        ("add_contact", 2, "failed"),
        ("add_contact", 3, "failed"),
    ]
    assert clock.slept == [1.0, 2.0]
    assert "after 3 attempts" in (run.error or "")
    assert emulator.requests("POST", "/contact/") == 3


async def test_a_non_retryable_error_class_fails_at_once(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", b=_bad("non_retryable: [ValidationError, NotFound]"))
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _start(ledger, "bad-contact"), plays, ledger=ledger, client=client, write_ledger=writes, clock=clock
    )
    assert run.status == "failed"
    assert [(n.attempt, n.error_class in ("ValidationError", "NotFound")) for n in run.nodes] == [(1, True)]
    assert clock.slept == []
    assert emulator.requests("POST", "/contact/") == 1


async def test_after_the_last_attempt_the_failure_branch_runs_with_the_error_in_context(
    tmp_path: Path, client: CloseClient, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", b=_bad("non_retryable: [ValidationError, NotFound]", "log_it"))
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _start(ledger, "bad-contact"), plays, ledger=ledger, client=client, write_ledger=writes, clock=clock
    )
    assert executed(run) == ["add_contact", "log_it", "give_up"]
    assert run.status == "failed"
    assert run.nodes[1].output["vars"]["failed"] == run.nodes[0].error


async def test_a_failure_branch_may_recover_the_run(tmp_path: Path, clock: FakeClock) -> None:
    plays = catalog(
        tmp_path / "plays",
        r="""
        kind: play
        name: recover
        trigger: {model: leads}
        nodes:
          - {id: call, type: http, method: GET, url: "http://hook.test/x", on_failure: fallback,
             retry: {max_attempts: 2, initial_interval: 5}}
          - {id: done, type: end}
          - {id: fallback, type: set, vars: {used_fallback: true}, next: done}
    """,
    )
    ledger, writes = ledgers(tmp_path, clock)
    calls: list[int] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(503)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as http:
        run = await run_to_end(
            _start(ledger, "recover"),
            plays,
            ledger=ledger,
            client=None,
            write_ledger=writes,
            clock=clock,
            http=http,
        )
    assert run.status == "succeeded"
    assert executed(run) == ["call", "call", "fallback", "done"]
    assert (len(calls), clock.slept) == (2, [5.0])
