"""Tools: typed inputs checked before anything runs, outputs evaluated and checked, a run of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays._engine import run_to_end
from closeflow.plays._tools import ToolInputError, run_tool
from tests.plays._fixtures import catalog, executed, ledgers

NEW_LEAD = """
kind: tool
name: new-lead
description: Create a lead and say its id.
inputs:
  name: {type: string, required: true}
  employees: {type: integer, required: false, default: 1}
outputs:
  lead_id: {type: string, value: "{{ nodes.create.output.ids[0] }}"}
  size: {type: integer, value: "{{ input.employees * 10 }}"}
nodes:
  - {id: create, type: action, action: insert_lead, config: {mappings: {name: name}},
     record: {name: {path: input.name}}}
"""
CALLER = """
kind: play
name: caller
trigger: {model: leads}
nodes:
  - {id: make, type: tool, tool: new-lead, input: {name: "{{ record.display_name }}"}}
  - {id: after, type: set, vars: {made: {path: "nodes.make.output.outputs.lead_id"}}}
"""


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=clock
    ) as close_client:
        yield close_client


async def test_run_tool_checks_inputs_runs_the_graph_and_returns_typed_outputs(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    tools = catalog(tmp_path / "plays", t=NEW_LEAD)
    ledger, writes = ledgers(tmp_path, clock)
    run, outputs = await run_tool(
        "new-lead", {"name": "Acme"}, tools, ledger=ledger, client=client, write_ledger=writes, clock=clock
    )
    assert run.status == "succeeded", run.error
    assert run.source == "cli" and run.context["input"] == {"name": "Acme", "employees": 1}
    assert outputs["size"] == 10 and outputs["lead_id"].startswith("lead_")
    assert (await client.get(f"/lead/{outputs['lead_id']}/"))["name"] == "Acme"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"name": 42}, "input 'name' expects string, got integer 42"),
        ({}, "input 'name' (string) is required"),
        ({"name": "A", "employees": "9"}, "input 'employees' expects integer, got string '9'"),
        ({"name": "A", "employees": True}, "expects integer, got boolean"),
        ({"name": "A", "nmae": "B"}, "unknown input 'nmae'"),
    ],
)
async def test_bad_inputs_are_refused_before_anything_runs(
    tmp_path: Path,
    client: CloseClient,
    emulator: Emulator,
    clock: FakeClock,
    inputs: dict[str, object],
    message: str,
) -> None:
    tools = catalog(tmp_path / "plays", t=NEW_LEAD)
    ledger, writes = ledgers(tmp_path, clock)
    requests_before = len(emulator.request_log)
    with pytest.raises(ToolInputError, match="tool 'new-lead'") as raised:
        await run_tool(
            "new-lead", inputs, tools, ledger=ledger, client=client, write_ledger=writes, clock=clock
        )
    assert message in str(raised.value)
    assert ledger.runs() == []
    assert len(emulator.request_log) == requests_before


async def test_a_tool_node_runs_the_tool_as_a_linked_run_of_its_own(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", t=NEW_LEAD, c=CALLER)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="caller",
        source="play",
        record_id="lead_x",
        change_seq=1,
        trigger=None,
        context={"record": {"display_name": "Bolt"}},
    )
    run = await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)
    assert run.status == "succeeded", run.error
    assert executed(run) == ["make", "after"]
    child = ledger.run(run.nodes[0].output["run_id"])
    assert child is not None
    assert (child.source, child.play, child.status) == ("tool", "new-lead", "succeeded")
    assert child.context["parent"] == {"run_id": run_id, "node_id": "make"}
    assert run.nodes[1].output["vars"]["made"] == child.output["lead_id"]  # type: ignore[index]
    assert emulator.requests("POST", "/lead/") == 1


async def test_a_tool_node_with_inputs_of_the_wrong_type_fails_without_retry_or_writes(
    tmp_path: Path, client: CloseClient, emulator: Emulator, clock: FakeClock
) -> None:
    plays = catalog(tmp_path / "plays", t=NEW_LEAD, c=CALLER.replace('"{{ record.display_name }}"', "123"))
    ledger, writes = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="caller", source="play", record_id=None, change_seq=None, trigger=None, context={"record": {}}
    )
    run = await run_to_end(run_id, plays, ledger=ledger, client=client, write_ledger=writes, clock=clock)
    assert run.status == "failed"
    assert [(n.node_id, n.error_class) for n in run.nodes] == [("make", "ToolInputError")]
    assert "input 'name' expects string, got integer 123" in (run.error or "")
    assert emulator.requests("POST") == 0
