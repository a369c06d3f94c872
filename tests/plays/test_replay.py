"""Replay: retrying a failed run from its failed node re-runs only that node and what follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from closeflow.plays._engine import retry_from, run_to_end
from tests.plays._fixtures import catalog, executed, ledgers

PLAY = """
kind: play
name: lead-then-hook
trigger: {model: leads}
nodes:
  - {id: create, type: action, action: insert_lead, config: {mappings: {name: name}},
     record: {name: Replayed}}
  - {id: tag, type: set, vars: {lead: {path: "nodes.create.output.ids[0]"}}}
  - {id: hook, type: http, method: POST, url: "http://hook.test/in", json: {lead: "{{ vars.lead }}"}}
  - {id: done, type: end}
"""


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=clock
    ) as close_client:
        yield close_client


async def test_retry_from_the_failed_node_reuses_earlier_outputs_and_creates_nothing_again(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", p=PLAY)
    ledger, writes = ledgers(tmp_path, clock)
    answers = iter([500, 200])
    bodies: list[bytes] = []

    def receive(request: httpx2.Request) -> httpx2.Response:
        bodies.append(request.content)
        return httpx2.Response(next(answers))

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(receive)) as http:
        first_id = ledger.create_run(
            play="lead-then-hook",
            source="play",
            record_id="lead_x",
            change_seq=1,
            trigger={"kind": "added"},
            context={"record": {"id": "lead_x"}},
        )
        first = await run_to_end(
            first_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock, http=http
        )
        assert first.status == "failed" and executed(first) == ["create", "tag", "hook"]

        second_id = retry_from(ledger, first_id, from_failed_node=True)
        second = await run_to_end(
            second_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock, http=http
        )

    assert second.status == "succeeded", second.error
    assert [(n.node_id, n.status) for n in second.nodes] == [
        ("create", "skipped"),
        ("tag", "skipped"),
        ("hook", "succeeded"),
        ("done", "succeeded"),
    ]
    assert executed(second) == ["hook", "done"]
    assert second.context["retry_of"] == first_id and second.trigger == {"kind": "added"}
    assert emulator.requests("POST", "/lead/") == 1
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the reused lead id went into the retried request


async def test_a_full_retry_runs_every_node_again(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", p=PLAY)
    ledger, writes = ledgers(tmp_path, clock)
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(500))) as http:
        first_id = ledger.create_run(
            play="lead-then-hook",
            source="play",
            record_id=None,
            change_seq=None,
            trigger=None,
            context={"record": {}},
        )
        await run_to_end(
            first_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock, http=http
        )
        second_id = retry_from(ledger, first_id, from_failed_node=False)
        second = await run_to_end(
            second_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock, http=http
        )
    assert executed(second) == ["create", "tag", "hook"]
    assert emulator.requests("POST", "/lead/") == 2


def test_only_finished_runs_with_a_failed_node_can_be_retried_from_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    ledger, _ = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="p", source="play", record_id=None, change_seq=None, trigger=None, context={}
    )
    with pytest.raises(ConfigError, match="only finished runs"):
        retry_from(ledger, run_id, from_failed_node=True)
    ledger.set_status(run_id, "succeeded")
    with pytest.raises(ConfigError, match="no failed node"):
        retry_from(ledger, run_id, from_failed_node=True)
    with pytest.raises(ConfigError, match="no run 'run_nope'"):
        retry_from(ledger, "run_nope", from_failed_node=False)
