"""Review findings on the engine, ledger and retries, each as the probe that showed the fault."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from closeflow.plays import retry_from, run_cycle, run_to_end
from closeflow.plays._engine import MAX_NODE_ATTEMPTS
from closeflow.plays._spec import Catalog
from closeflow.sync import open_store
from tests.plays._fixtures import catalog, ledgers

Calls = list[tuple[str, str, str | None]]


def http_counter(
    answer: Callable[[httpx2.Request, int], httpx2.Response],
) -> tuple[Calls, httpx2.AsyncClient]:
    calls: Calls = []

    async def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append((request.method, str(request.url), request.headers.get("idempotency-key")))
        return answer(request, len(calls))

    return calls, httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def new_run(ledger: Any, play: str = "p") -> str:
    return str(
        ledger.create_run(
            play=play,
            source="play",
            record_id="lead_1",
            change_seq=1,
            trigger=None,
            context={"record": {"id": "lead_1"}},
        )
    )


def loop_back(cat: Catalog, node_id: str, target: str) -> None:
    """Point branch ``node_id``'s ``then`` at ``target``: the loader refuses loops, the engine must
    still survive one (an older play file, a future loader)."""
    nodes = cat.plays["p"].graph.nodes
    index = next(i for i, n in enumerate(nodes) if n.id == node_id)
    nodes[index] = nodes[index].model_copy(update={"then": target})


async def test_an_unexpected_exception_fails_the_node_and_the_run_is_not_left_running(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: hook, type: http, method: POST, url: "http://x/hook"}
        """,
    )

    def explode(request: httpx2.Request, n: int) -> httpx2.Response:
        raise RecursionError("maximum recursion depth exceeded")

    _, http = http_counter(explode)
    rid = new_run(ledger)
    run = await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http)
    assert run.status == "failed"
    assert [(n.node_id, n.status, n.error_class) for n in run.nodes] == [("hook", "failed", "RecursionError")]
    assert ledger.unfinished() == []


async def test_a_loop_that_never_exits_fails_at_the_attempt_cap(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: a, type: set, vars: {x: 1}}
          - {id: b, type: branch, if: "{{ true }}", then: end, else: end}
        """,
    )
    loop_back(cat, "b", "a")
    rid = new_run(ledger)
    run = await asyncio.wait_for(
        run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock), 30
    )
    assert run.status == "failed"
    assert "a loop in the play never exits" in (run.error or "")
    assert len(run.nodes) == MAX_NODE_ATTEMPTS


async def test_each_visit_of_a_node_in_a_loop_has_its_own_idempotency_key(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: hook, type: http, method: POST, url: "http://x/hook"}
          - {id: again, type: branch, if: "{{ nodes.hook.output.status == 200 }}", then: end, else: end}
        """,
    )
    loop_back(cat, "again", "hook")
    calls, http = http_counter(lambda r, n: httpx2.Response(200 if n < 3 else 204))
    rid = new_run(ledger)
    run = await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http)
    assert run.status == "succeeded"
    assert [key for _, _, key in calls] == [f"{rid}:hook", f"{rid}:hook#2", f"{rid}:hook#3"]


async def test_retry_from_the_failed_node_after_an_on_failure_branch(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: a, type: http, method: POST, url: "http://x/a", on_failure: b, retry: {max_attempts: 1}}
          - {id: b, type: set, vars: {handled: true}}
          - {id: c, type: http, method: POST, url: "http://x/c", retry: {max_attempts: 1}}
        """,
    )
    _, failing = http_counter(lambda r, n: httpx2.Response(500))
    rid = new_run(ledger)
    await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=failing)
    new = retry_from(ledger, rid, from_failed_node=True)
    assert [(n.node_id, n.status) for n in ledger.run(new).nodes] == [("a", "failed"), ("b", "skipped")]  # type: ignore[union-attr]
    calls, ok = http_counter(lambda r, n: httpx2.Response(200))
    run = await run_to_end(new, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=ok)
    assert (run.status, run.error) == ("succeeded", None)
    # The re-run node writes as the original run: a receiver that saw the first try drops this one.
    assert calls == [("POST", "http://x/c", f"{rid}:c")]


async def test_a_run_is_retried_once_and_bulk_retry_skips_it(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: gate, type: http, method: POST, url: "http://x/gate", retry: {max_attempts: 1}}
        """,
    )
    _, failing = http_counter(lambda r, n: httpx2.Response(500))
    rid = new_run(ledger)
    await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=failing)
    new = retry_from(ledger, rid, from_failed_node=True)
    original = ledger.run(rid)
    assert original is not None and original.retried_by == new
    with pytest.raises(ConfigError, match=f"already retried by run {new}"):
        retry_from(ledger, rid, from_failed_node=True)
    with pytest.raises(ConfigError, match="already retried"):
        retry_from(ledger, rid, from_failed_node=False)
    assert len(ledger.runs(play="p")) == 2


async def test_a_retried_tool_node_continues_its_tool_run_without_repeating_the_create(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=3)
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: call, type: tool, tool: t, input: {}, retry: {max_attempts: 2, initial_interval: 0}}
        """,
        t="""
        kind: tool
        name: t
        description: d
        nodes:
          - {id: mk, type: action, action: insert_lead, config: {mappings: {name: name}},
             record: {name: Tool Co}}
          - {id: hook, type: http, method: POST, url: "http://x/tool", retry: {max_attempts: 1}}
        """,
    )
    calls, http = http_counter(lambda r, n: httpx2.Response(500 if n == 1 else 200))
    async with CloseClient(
        emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock
    ) as client:
        rid = new_run(ledger)
        run = await run_to_end(
            rid, cat, ledger=ledger, client=client, write_ledger=writes, clock=clock, http=http
        )
    assert run.status == "succeeded"
    assert sum(1 for lead in emu.org.leads.values() if lead.get("name") == "Tool Co") == 1
    second = ledger.run(f"{rid}.call.2")
    assert second is not None and second.context["writes_as"] == f"{rid}.call.1"
    assert [(n.node_id, n.status) for n in second.nodes] == [("mk", "skipped"), ("hook", "succeeded")]
    assert [key for _, _, key in calls] == [f"{rid}.call.1:hook"] * 2


async def test_an_unfinished_tool_run_is_driven_by_its_parent_only(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: call, type: tool, tool: t, input: {}}
        """,
        t="""
        kind: tool
        name: t
        description: d
        nodes:
          - {id: hook, type: http, method: POST, url: "http://x/tool"}
        """,
    )
    rid = new_run(ledger)
    ledger.set_status(rid, "running")
    child = f"{rid}.call.1"
    ledger.create_run(
        play="t",
        source="tool",
        record_id="lead_1",
        change_seq=1,
        trigger=None,
        context={"input": {}},
        run_id=child,
    )
    ledger.set_status(child, "running")
    calls, http = http_counter(lambda r, n: httpx2.Response(204))
    store = open_store(str(tmp_path / "closeflow.db"))
    report = await run_cycle(
        cat,
        store=store,
        ledger=ledger,
        client=None,
        write_ledger=writes,
        clock=clock,
        sync_first=False,
        http=http,
    )
    store.close()
    assert report.resumed == 1
    assert len(calls) == 1
    assert [(n.node_id, n.attempt) for n in ledger.run(child).nodes] == [("hook", 1)]  # type: ignore[union-attr]


async def test_a_long_retry_backoff_leaves_the_run_waiting_instead_of_sleeping(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, writes = ledgers(tmp_path, clock)
    cat = catalog(
        tmp_path / "plays",
        p="""
        kind: play
        name: p
        trigger: {model: leads}
        nodes:
          - {id: hook, type: http, method: POST, url: "http://x/hook",
             retry: {max_attempts: 2, initial_interval: 600, max_interval: 600}}
        """,
    )
    calls, http = http_counter(lambda r, n: httpx2.Response(500 if n == 1 else 200))
    rid = new_run(ledger)
    started = clock.now()
    run = await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http)
    assert (run.status, run.wake_at) == ("waiting", started + 600)
    assert clock.now() == started  # nothing slept
    clock.advance(600)
    run = await run_to_end(rid, cat, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http)
    assert run.status == "succeeded"
    assert len(calls) == 2


def test_recording_an_attempt_clears_a_stale_wake_up(tmp_path: Path) -> None:
    clock = FakeClock()
    ledger, _ = ledgers(tmp_path, clock)
    rid = new_run(ledger)
    ledger.set_status(rid, "waiting", wake_at=clock.now() + 3600)
    from closeflow.plays._ledger import NodeRecord

    ledger.record_node(rid, NodeRecord(node_id="pause", attempt=1, status="succeeded"))
    run = ledger.run(rid)
    assert run is not None and run.wake_at is None
