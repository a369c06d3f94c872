"""The engine against the in-process emulator: every node type, dry runs, and resuming a crashed run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays._engine import run_to_end
from closeflow.plays._nodes import NodeExecutor
from tests.plays._fixtures import catalog, executed, ledgers

LEAD_AND_CONTACT = """
kind: play
name: lead-and-contact
trigger: {model: leads}
vars: {greeting: Hello}
nodes:
  - id: create_lead
    type: action
    action: insert_lead
    config: {mappings: {name: name}}
    record: {name: "{{ record.display_name }} Inc"}
  - id: remember
    type: set
    vars: {lead_id: {path: "nodes.create_lead.output.ids[0]"}}
  - id: create_contact
    type: action
    action: insert_contact
    config: {associated_lead_id: lead_id, mappings: {name: name}}
    record: {lead_id: "{{ vars.lead_id }}", name: "{{ vars.greeting }} Bo"}
  - id: done
    type: end
"""


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=clock
    ) as close_client:
        yield close_client


def _run(ledger: Any, play: str, record: dict[str, Any]) -> str:
    return str(
        ledger.create_run(
            play=play,
            source="play",
            record_id=record.get("id"),
            change_seq=1,
            trigger=None,
            context={"record": record},
        )
    )


async def test_action_and_set_nodes_write_through_close_and_chain_outputs(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", a=LEAD_AND_CONTACT)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = _run(ledger, "lead-and-contact", {"id": "lead_x", "display_name": "Acme"})

    run = await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)

    assert run.status == "succeeded", run.error
    assert executed(run) == ["create_lead", "remember", "create_contact", "done"]
    lead_id = run.nodes[0].output["ids"][0]
    assert run.nodes[1].output == {"vars": {"lead_id": lead_id}}
    contact = await client.get(f"/contact/{run.nodes[2].output['ids'][0]}/")
    assert (contact["lead_id"], contact["name"]) == (lead_id, "Hello Bo")
    assert (await client.get(f"/lead/{lead_id}/"))["name"] == "Acme Inc"
    assert emulator.requests("POST", "/lead/") == 1
    assert emulator.requests("POST", "/contact/") == 1


async def test_dry_run_plans_every_write_and_sends_none(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", a=LEAD_AND_CONTACT)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = _run(ledger, "lead-and-contact", {"id": "lead_x", "display_name": "Acme"})
    before = {m: emulator.requests(m) for m in ("POST", "PUT", "DELETE")}

    run = await run_to_end(
        run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock, dry_run=True
    )

    assert run.status == "succeeded", run.error
    assert run.nodes[0].output["status"] == "planned" and run.nodes[0].output["plan"] == "create"
    assert {m: emulator.requests(m) for m in ("POST", "PUT", "DELETE")} == before
    assert emulator.requests("POST", "/lead/") == 0


class Crash(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the engine may catch it."""


async def test_a_run_killed_after_node_2_of_4_resumes_at_node_3_without_repeating_node_1s_create(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    plays = catalog(tmp_path / "plays", a=LEAD_AND_CONTACT)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = _run(ledger, "lead-and-contact", {"id": "lead_x", "display_name": "Acme"})
    real_action = NodeExecutor.action

    async def crash_on_contact(self: NodeExecutor, node: Any, context: dict[str, Any], rid: str) -> Any:
        if node.id == "create_contact":
            raise Crash
        return await real_action(self, node, context, rid)

    monkeypatch.setattr(NodeExecutor, "action", crash_on_contact)
    with pytest.raises(Crash):
        await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)
    ledger.close()
    monkeypatch.setattr(NodeExecutor, "action", real_action)

    fresh, fresh_writes = ledgers(tmp_path, clock)
    assert [r.id for r in fresh.unfinished()] == [run_id]
    run = await run_to_end(run_id, plays, ledger=fresh, client=client, write_ledger=fresh_writes, clock=clock)

    assert run.status == "succeeded", run.error
    assert executed(run) == ["create_lead", "remember", "create_contact", "done"]
    assert emulator.requests("POST", "/lead/") == 1
    assert emulator.requests("POST", "/contact/") == 1


async def test_a_node_killed_mid_create_does_not_create_twice_on_resume(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create reached Close but the process died before the node was recorded: the write ledger
    under ``{run_id}:{node_id}`` knows, so the resumed node reports the lead instead of re-POSTing."""
    plays = catalog(tmp_path / "plays", a=LEAD_AND_CONTACT)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = _run(ledger, "lead-and-contact", {"id": "lead_x", "display_name": "Acme"})
    real_record = type(ledger).record_node

    def die_before_recording(self: Any, rid: str, node: Any) -> None:
        if node.node_id == "create_lead":
            raise Crash
        real_record(self, rid, node)

    monkeypatch.setattr(type(ledger), "record_node", die_before_recording)
    with pytest.raises(Crash):
        await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)
    monkeypatch.setattr(type(ledger), "record_node", real_record)

    run = await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)
    assert run.status == "succeeded", run.error
    assert emulator.requests("POST", "/lead/") == 1
    assert run.nodes[0].output["status"] == "skipped"  # the write ledger's answer: already created


CONTROL = """
kind: play
name: control
trigger: {model: leads}
nodes:
  - id: by_status
    type: switch
    value: "{{ record.status_label }}"
    cases: {Qualified: route, Customer: done}
  - {id: route, type: branch, if: "{{ record.value > 1000 }}", then: big, else: small}
  - {id: big, type: set, vars: {size: big}, next: only_a}
  - {id: small, type: set, vars: {size: small}, next: only_a}
  - {id: only_a, type: filter, if: "{{ record.tier == 'A' }}"}
  - {id: done, type: end}
"""


@pytest.mark.parametrize(
    ("record", "status", "path"),
    [
        (
            {"status_label": "Qualified", "value": 5000, "tier": "A"},
            "succeeded",
            ["by_status", "route", "big", "only_a", "done"],
        ),
        (
            {"status_label": "Qualified", "value": 5, "tier": "B"},
            "filtered",
            ["by_status", "route", "small", "only_a"],
        ),
        ({"status_label": "Customer", "value": 5, "tier": "A"}, "succeeded", ["by_status", "done"]),
        (
            {"status_label": "Lost", "value": 5, "tier": "A"},
            "succeeded",
            ["by_status"],
        ),  # switch default: end
    ],
)
async def test_switch_branch_set_filter_and_end_route_the_run(
    tmp_path: Path, clock: FakeClock, record: dict[str, Any], status: str, path: list[str]
) -> None:
    plays = catalog(tmp_path / "plays", c=CONTROL)
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _run(ledger, "control", record), plays, ledger=ledger, client=None, write_ledger=writes, clock=clock
    )
    assert (run.status, executed(run)) == (status, path)


async def test_an_end_node_can_mark_the_run_failed(tmp_path: Path, clock: FakeClock) -> None:
    plays = catalog(
        tmp_path / "plays",
        e="""
        kind: play
        name: give-up
        trigger: {model: leads}
        nodes: [{id: stop, type: end, status: failed}]
    """,
    )
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _run(ledger, "give-up", {}), plays, ledger=ledger, client=None, write_ledger=writes, clock=clock
    )
    assert run.status == "failed" and "stop" in (run.error or "")


def _receiver(answers: list[int], seen: list[httpx2.Request]) -> httpx2.AsyncClient:
    """A webhook receiver answering with the given statuses in turn (the last one repeats)."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        status = answers[min(len(seen) - 1, len(answers) - 1)]
        return httpx2.Response(status, json={"ok": status < 300, "n": len(seen)})

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))


HTTP = """
kind: play
name: notify
trigger: {model: leads}
vars: {hook: "https://hooks.example.com/in?token=s3cret&x=1"}
nodes:
  - id: post
    type: http
    method: POST
    url: "{{ vars.hook }}"
    headers: {Authorization: "Bearer abc123", X-Source: closeflow}
    json: {lead: {path: "record.id"}, status: "{{ record.status_label }}"}
    retry: {max_attempts: 4, initial_interval: 1, backoff_coefficient: 2, max_interval: 3}
"""


async def test_http_node_sends_json_with_an_idempotency_key_and_stores_no_secret(
    tmp_path: Path, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", h=HTTP)
    ledger, writes = ledgers(tmp_path, clock)
    seen: list[httpx2.Request] = []
    run_id = _run(ledger, "notify", {"id": "lead_1", "status_label": "Qualified"})
    async with _receiver([201], seen) as http:
        run = await run_to_end(
            run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http
        )

    assert run.status == "succeeded", run.error
    assert len(seen) == 1
    assert json.loads(seen[0].content) == {"lead": "lead_1", "status": "Qualified"}
    assert seen[0].headers["Idempotency-Key"] == f"{run_id}:post"
    assert seen[0].headers["Authorization"] == "Bearer abc123"
    assert run.nodes[0].output == {"status": 201, "json": {"ok": True, "n": 1}}
    stored = json.dumps(run.to_dict())
    assert "abc123" not in stored and "s3cret" not in stored
    assert run.nodes[0].input["headers"]["Authorization"] == "***"


async def test_http_retries_wait_1_2_then_the_capped_3_seconds_on_the_clock(
    tmp_path: Path, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", h=HTTP)
    ledger, writes = ledgers(tmp_path, clock)
    seen: list[httpx2.Request] = []
    async with _receiver([503, 502, 500, 200], seen) as http:
        run = await run_to_end(
            _run(ledger, "notify", {"id": "lead_1", "status_label": "Qualified"}),
            plays,
            ledger=ledger,
            client=None,
            write_ledger=writes,
            clock=clock,
            http=http,
        )
    assert run.status == "succeeded", run.error
    assert clock.slept == [1.0, 2.0, 3.0]
    assert [(n.attempt, n.status) for n in run.nodes] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "succeeded"),
    ]
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1


async def test_http_4xx_is_not_retried_and_fails_the_run(tmp_path: Path, clock: FakeClock) -> None:
    plays = catalog(tmp_path / "plays", h=HTTP)
    ledger, writes = ledgers(tmp_path, clock)
    seen: list[httpx2.Request] = []
    async with _receiver([422], seen) as http:
        run = await run_to_end(
            _run(ledger, "notify", {"id": "lead_1", "status_label": "Qualified"}),
            plays,
            ledger=ledger,
            client=None,
            write_ledger=writes,
            clock=clock,
            http=http,
        )
    assert run.status == "failed"
    assert len(seen) == 1 and clock.slept == []
    assert run.nodes[0].error_class == "HttpStatus" and "422" in (run.error or "")


async def test_http_dry_run_sends_nothing_and_reports_the_request(tmp_path: Path, clock: FakeClock) -> None:
    plays = catalog(tmp_path / "plays", h=HTTP)
    ledger, writes = ledgers(tmp_path, clock)
    seen: list[httpx2.Request] = []
    async with _receiver([200], seen) as http:
        run = await run_to_end(
            _run(ledger, "notify", {"id": "lead_1", "status_label": "Qualified"}),
            plays,
            ledger=ledger,
            client=None,
            write_ledger=writes,
            clock=clock,
            http=http,
            dry_run=True,
        )
    assert run.status == "succeeded" and seen == []
    assert run.nodes[0].output["sent"] is False
    assert run.nodes[0].output["planned"]["method"] == "POST"


DELAY = """
kind: play
name: later
trigger: {model: leads}
nodes:
  - {id: pause, type: delay, seconds: DELAY}
  - {id: done, type: end}
"""


async def test_a_short_delay_sleeps_on_the_clock(tmp_path: Path, clock: FakeClock) -> None:
    plays = catalog(tmp_path / "plays", d=DELAY.replace("DELAY", "30"))
    ledger, writes = ledgers(tmp_path, clock)
    run = await run_to_end(
        _run(ledger, "later", {}), plays, ledger=ledger, client=None, write_ledger=writes, clock=clock
    )
    assert run.status == "succeeded" and clock.slept == [30.0]
    assert executed(run) == ["pause", "done"]


async def test_a_long_delay_leaves_the_run_waiting_and_a_restart_keeps_the_wake_time(
    tmp_path: Path, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", d=DELAY.replace("DELAY", "3600"))
    ledger, writes = ledgers(tmp_path, clock)
    start = clock.now()
    run_id = _run(ledger, "later", {})
    run = await run_to_end(run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock)
    assert (run.status, run.wake_at, run.nodes) == ("waiting", start + 3600, [])

    clock.advance(3000)  # the runner restarts 50 minutes later: 10 minutes are left, not an hour
    run = await run_to_end(run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock)
    assert run.status == "waiting"
    clock.advance(590)
    run = await run_to_end(run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock)
    assert run.status == "succeeded"
    assert clock.slept == [10.0]
    assert clock.now() == start + 3600
