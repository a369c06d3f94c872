"""Two runners on one database: a run is driven by the holder of its lease only, so an HTTP node is
sent once per enrolled record even when both runners see the run (the review's double-POST probe)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.actions import SqliteLedger
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays import CycleReport, open_run_ledger, run_cycle
from closeflow.plays._ledger_sql import SqlRunLedger
from closeflow.plays._runner import LEASE_SECONDS, holder_is_gone, new_owner
from closeflow.plays._spec import Catalog
from closeflow.sync import Store, open_store, sync
from tests.plays._fixtures import catalog

LEADS = 12

HOOK_PLAY = """
kind: play
name: hook
trigger: {model: leads, on: [added]}
nodes:
  - {id: hook, type: http, method: POST, url: "http://hooks.test/lead", json: {lead: "{{ record.id }}"}}
"""


async def offline_cycle(
    plays: Catalog,
    store: Store,
    ledger: SqlRunLedger,
    writes: SqliteLedger,
    clock: FakeClock,
    http: httpx2.AsyncClient,
    **options: Any,
) -> CycleReport:
    """One runner cycle without Close (no sync, no client): runs resumed and driven, HTTP to ``http``."""
    return await run_cycle(
        plays, store=store, client=None, ledger=ledger, write_ledger=writes, clock=clock,
        sync_first=False, http=http, **options,
    )  # fmt: skip


@pytest.fixture
def ledger(target: str, clock: FakeClock) -> Iterator[SqlRunLedger]:
    opened = open_run_ledger(target, clock=clock)
    yield opened
    opened.close()


class Hooks:
    """The receiving end of the play's HTTP node: every request it got, by lead id."""

    def __init__(self) -> None:
        self.leads: list[str] = []

    async def receive(self, request: httpx2.Request) -> httpx2.Response:
        self.leads.append(request.read().decode())
        # Yield to the event loop, as a real network round trip would: the other runner gets to
        # run its cycle while this run is in flight, which is when it could drive it a second time.
        for _ in range(3):
            await asyncio.sleep(0)
        return httpx2.Response(200, json={"ok": True})


@pytest.fixture
async def http() -> AsyncIterator[tuple[Hooks, httpx2.AsyncClient]]:
    hooks = Hooks()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(hooks.receive)) as client:
        yield hooks, client


@pytest.fixture
def plays(tmp_path: Path) -> Catalog:
    return catalog(tmp_path / "plays", hook=HOOK_PLAY)


def test_a_lease_held_by_another_runner_is_refused_until_it_expires(
    ledger: SqlRunLedger, clock: FakeClock
) -> None:
    run_id = ledger.create_run(
        play="hook", source="play", record_id="lead_1", change_seq=1, trigger=None, context={}
    )
    now = clock.now()
    assert ledger.claim(run_id, "a", until=now + 300, now=now) is True
    assert ledger.claim(run_id, "b", until=now + 300, now=now) is False
    assert ledger.claim(run_id, "a", until=now + 600, now=now) is True  # the owner renews
    clock.advance(599)
    assert ledger.claim(run_id, "b", until=clock.now() + 300, now=clock.now()) is False
    clock.advance(2)  # a's renewed lease has now expired
    assert ledger.claim(run_id, "b", until=clock.now() + 300, now=clock.now()) is True
    assert ledger.claim(run_id, "a", until=clock.now() + 300, now=clock.now()) is False
    ledger.release(run_id, "a")  # not a's lease any more: releasing it changes nothing
    assert ledger.claim(run_id, "a", until=clock.now() + 300, now=clock.now()) is False
    ledger.release(run_id, "b")
    assert ledger.claim(run_id, "a", until=clock.now() + 300, now=clock.now()) is True
    assert ledger.claim("run_missing", "a", until=clock.now() + 300, now=clock.now()) is False


def test_a_ledger_from_before_leases_gains_the_lease_columns_on_open(target: str, clock: FakeClock) -> None:
    old = open_run_ledger(target, clock=clock)
    # What a ledger written before leases existed looks like.
    old._rows("ALTER TABLE play_runs DROP COLUMN lease_owner")
    old._rows("ALTER TABLE play_runs DROP COLUMN lease_until")
    old.close()
    reopened = open_run_ledger(target, clock=clock)
    try:
        run_id = reopened.create_run(
            play="hook", source="play", record_id=None, change_seq=None, trigger=None, context={}
        )
        assert reopened.claim(run_id, "a", until=clock.now() + 1, now=clock.now()) is True
        assert reopened.claim(run_id, "b", until=clock.now() + 1, now=clock.now()) is False
    finally:
        reopened.close()


async def test_two_concurrent_runners_send_each_enrolled_records_hook_once(
    target: str, tmp_path: Path, clock: FakeClock, plays: Catalog, http: tuple[Hooks, httpx2.AsyncClient]
) -> None:
    hooks, client = http
    emu = Emulator(clock=clock, seed=5, leads=LEADS)
    store_path = str(tmp_path / "store.db")
    async with CloseClient(
        emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock
    ) as close:
        seeded = open_store(store_path)
        await sync(close, seeded, clock=clock)
        seeded.close()

    async def runner() -> CycleReport:
        # Each runner has connections of its own, as two processes would.
        store, ledger = open_store(store_path), open_run_ledger(target, clock=clock)
        writes = SqliteLedger(tmp_path / "writes.db")
        try:
            return await offline_cycle(plays, store, ledger, writes, clock, client, concurrency=4)
        finally:
            writes.close()
            ledger.close()
            store.close()

    first, second = await asyncio.gather(runner(), runner())

    lead_ids = sorted(emu.org.leads)
    assert len(hooks.leads) == LEADS
    assert sorted(hooks.leads) == sorted(f'{{"lead":"{lead}"}}' for lead in lead_ids)
    check = open_run_ledger(target, clock=clock)
    try:
        runs = check.runs(play="hook", limit=100)
        assert sorted(str(r.record_id) for r in runs) == lead_ids
        assert {r.status for r in runs} == {"succeeded"}
        assert [len(r.nodes) for r in runs] == [1] * LEADS
        assert check.unfinished() == []
    finally:
        check.close()
    # Each run is reported by the one runner that drove it.
    assert len(first.runs) + len(second.runs) == LEADS
    assert first.plays["hook"].enrolled + second.plays["hook"].enrolled == LEADS


async def test_a_runner_leaves_a_run_leased_to_another_until_the_lease_expires(
    ledger: SqlRunLedger,
    tmp_path: Path,
    clock: FakeClock,
    plays: Catalog,
    http: tuple[Hooks, httpx2.AsyncClient],
) -> None:
    hooks, client = http
    store = open_store(str(tmp_path / "store.db"))  # never synced: nothing new to enrol
    writes = SqliteLedger(tmp_path / "writes.db")
    run_id = ledger.create_run(
        play="hook",
        source="play",
        record_id="lead_1",
        change_seq=1,
        trigger=None,
        context={"record": {"id": "lead_1"}, "vars": {}},
    )
    # Another runner claimed it and is (as far as anyone can tell) still driving it.
    assert ledger.claim(run_id, "other-runner", until=clock.now() + LEASE_SECONDS, now=clock.now())

    async def cycle() -> CycleReport:
        return await offline_cycle(plays, store, ledger, writes, clock, client)

    try:
        held = await cycle()
        assert held.resumed == 0
        assert hooks.leads == []
        run = ledger.run(run_id)
        assert run is not None and run.status == "pending"

        clock.advance(LEASE_SECONDS + 1)  # the other runner died holding it: its lease runs out
        taken = await cycle()
        assert taken.resumed == 1
        assert hooks.leads == ['{"lead":"lead_1"}']
        run = ledger.run(run_id)
        assert run is not None and run.status == "succeeded"
        # Released when done: the next runner to look may claim it at once.
        assert ledger.claim(run_id, "third", until=clock.now() + 1, now=clock.now()) is True
    finally:
        writes.close()
        store.close()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)  # exited and reaped: the pid names no process now
    return child.pid


def test_only_a_holder_that_was_a_process_on_this_machine_and_is_gone_counts_as_gone() -> None:
    host = socket.gethostname()
    assert new_owner().startswith(f"{host}/{os.getpid()}/")
    assert holder_is_gone(f"{host}/{dead_pid()}/abc") is (os.name == "posix")
    assert holder_is_gone(f"{host}/{os.getppid()}/abc") is False  # alive
    assert holder_is_gone(new_owner()) is False  # this very process (another runner in it)
    assert holder_is_gone(f"not-{host}/{dead_pid()}/abc") is False  # another machine: cannot tell
    assert holder_is_gone("other-runner") is False


@pytest.mark.skipif(os.name != "posix", reason="a dead holder is detected on POSIX systems only")
async def test_a_restarted_runner_takes_over_a_killed_runners_lease_at_once(
    ledger: SqlRunLedger,
    tmp_path: Path,
    clock: FakeClock,
    plays: Catalog,
    http: tuple[Hooks, httpx2.AsyncClient],
) -> None:
    hooks, client = http
    store = open_store(str(tmp_path / "store.db"))
    writes = SqliteLedger(tmp_path / "writes.db")
    killed = f"{socket.gethostname()}/{dead_pid()}/abc"
    alive = f"{socket.gethostname()}/{os.getppid()}/abc"
    runs = {}
    for holder in (killed, alive):
        runs[holder] = ledger.create_run(
            play="hook",
            source="play",
            record_id=holder,
            change_seq=1,
            trigger=None,
            context={"record": {"id": holder[-3:]}, "vars": {}},
        )
        assert ledger.claim(runs[holder], holder, until=clock.now() + LEASE_SECONDS, now=clock.now())
    try:
        report = await offline_cycle(plays, store, ledger, writes, clock, client)
        assert report.resumed == 1
        assert len(hooks.leads) == 1
        done, waiting = ledger.run(runs[killed]), ledger.run(runs[alive])
        assert done is not None and done.status == "succeeded"
        assert waiting is not None and waiting.status == "pending"
        assert ledger.lease_holder(runs[alive]) == alive
    finally:
        writes.close()
        store.close()


SLOW_PLAY = """
kind: play
name: slow
trigger: {model: leads, on: [added]}
nodes:
  - {id: one, type: http, method: POST, url: "http://hooks.test/1", json: {}}
  - {id: two, type: http, method: POST, url: "http://hooks.test/2", json: {}}
  - {id: three, type: http, method: POST, url: "http://hooks.test/3", json: {}}
"""


async def _drive_slow_run(
    ledger: SqlRunLedger, tmp_path: Path, clock: FakeClock, on_request: object
) -> tuple[str, list[str]]:
    """One run of a three-node play whose every HTTP node takes 200 s of (fake) time; ``on_request``
    is called with (run_id, url) inside each request, as the run is being driven."""
    sent: list[str] = []
    run_id = ledger.create_run(
        play="slow", source="play", record_id="lead_1", change_seq=1, trigger=None,
        context={"record": {"id": "lead_1"}, "vars": {}},
    )  # fmt: skip

    async def receive(request: httpx2.Request) -> httpx2.Response:
        sent.append(str(request.url))
        clock.advance(200)
        on_request(run_id, str(request.url))  # type: ignore[operator]
        return httpx2.Response(200, json={})

    store = open_store(str(tmp_path / "store.db"))
    writes = SqliteLedger(tmp_path / "writes.db")
    try:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(receive)) as client:
            slow = catalog(tmp_path / "slow-plays", slow=SLOW_PLAY)
            await offline_cycle(slow, store, ledger, writes, clock, client)
    finally:
        writes.close()
        store.close()
    return run_id, sent


async def test_a_run_longer_than_the_lease_keeps_it_because_each_node_renews_it(
    ledger: SqlRunLedger, tmp_path: Path, clock: FakeClock
) -> None:
    intruder_got_it: list[bool] = []

    def another_runner_tries(run_id: str, url: str) -> None:
        # 400 s into a run whose lease was first taken for 300 s: only a renewal keeps it.
        if url.endswith("/2"):
            now = clock.now()
            intruder_got_it.append(ledger.claim(run_id, "intruder", until=now + LEASE_SECONDS, now=now))

    run_id, sent = await _drive_slow_run(ledger, tmp_path, clock, another_runner_tries)

    assert intruder_got_it == [False]
    assert sent == ["http://hooks.test/1", "http://hooks.test/2", "http://hooks.test/3"]
    run = ledger.run(run_id)
    assert run is not None and run.status == "succeeded"


async def test_a_runner_that_lost_its_lease_stops_driving_the_run(
    ledger: SqlRunLedger, tmp_path: Path, clock: FakeClock
) -> None:
    def lease_expires_and_is_taken(run_id: str, url: str) -> None:
        if url.endswith("/1"):  # node one outlives the lease and another runner takes the run over
            clock.advance(LEASE_SECONDS)
            now = clock.now()
            assert ledger.claim(run_id, "successor", until=now + LEASE_SECONDS, now=now)

    run_id, sent = await _drive_slow_run(ledger, tmp_path, clock, lease_expires_and_is_taken)

    assert sent == ["http://hooks.test/1"]  # node two is the successor's to send, not this runner's
    assert ledger.lease_holder(run_id) == "successor"
    run = ledger.run(run_id)
    assert run is not None and not run.finished


CHILD_TOOL = """
kind: tool
name: child
description: two steps
nodes:
  - {id: c1, type: set, vars: {a: 1}}
  - {id: c2, type: set, vars: {b: 2}}
"""
PARENT_TOOL = """
kind: tool
name: parent
description: calls child
nodes:
  - {id: p1, type: set, vars: {x: 1}}
  - {id: call, type: tool, tool: child, input: {}}
  - {id: p2, type: set, vars: {y: 1}}
"""


async def test_a_lease_lost_inside_a_nested_tool_leaves_the_parent_run_to_its_new_holder(
    ledger: SqlRunLedger, tmp_path: Path, clock: FakeClock
) -> None:
    from closeflow.plays import run_to_end

    tools = catalog(tmp_path / "nested", child=CHILD_TOOL, parent=PARENT_TOOL)
    run_id = ledger.create_run(
        play="parent", source="cli", record_id=None, change_seq=None, trigger=None, context={"input": {}}
    )
    renewals = 0

    def keep_lease() -> bool:  # held for p1, the tool node and c1; gone before c2
        nonlocal renewals
        renewals += 1
        return renewals <= 3

    writes = SqliteLedger(tmp_path / "writes.db")
    try:
        run = await run_to_end(
            run_id, tools, ledger=ledger, client=None, write_ledger=writes, clock=clock, keep_lease=keep_lease
        )
    finally:
        writes.close()
    assert run.status == "running"  # not failed: the runner holding the lease now finishes it
    assert [(n.node_id, n.status) for n in run.nodes] == [("p1", "succeeded")]


async def test_a_tool_run_driven_on_demand_is_leased_so_a_runner_leaves_it_alone(
    ledger: SqlRunLedger, tmp_path: Path, clock: FakeClock, http: tuple[Hooks, httpx2.AsyncClient]
) -> None:
    from closeflow.plays import run_tool

    hooks, _client = http
    notify = """
kind: tool
name: notify
description: post once
nodes:
  - {id: hook, type: http, method: POST, url: "http://hooks.test/lead", json: {lead: lead_1}}
"""
    tools = catalog(tmp_path / "notify", notify=notify)
    store = open_store(str(tmp_path / "store.db"))
    writes = SqliteLedger(tmp_path / "writes.db")
    reports: list[CycleReport] = []

    async def receive(request: httpx2.Request) -> httpx2.Response:
        hooks.leads.append(request.read().decode())
        # While the agent's tool run is in flight, a runner on the same database runs a cycle.
        reports.append(await offline_cycle(tools, store, ledger, writes, clock, inner))
        return httpx2.Response(200, json={})

    try:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(receive)) as inner:
            run, _outputs = await run_tool(
                "notify", {}, tools, ledger=ledger, client=None, write_ledger=writes, clock=clock,
                source="mcp", http=inner,
            )  # fmt: skip
    finally:
        writes.close()
        store.close()
    assert [report.resumed for report in reports] == [0]
    assert hooks.leads == ['{"lead":"lead_1"}']  # sent once, by the agent's run only
    assert run.status == "succeeded"
