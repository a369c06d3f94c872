"""Tools of a plays folder called by an agent: the server's delete cap holds whatever the play file says,
a plan shows what each node would do, the run ledger says how each call ran, and the server's secrets
never reach the ledger's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from closeflow.plays import Catalog, SqliteRunLedger, run_to_end, run_tool
from tests.actions._org import new_lead
from tests.mcp.conftest import Build, answer, connected, writes
from tests.plays._fixtures import catalog

TOKEN = "confirmation_token"
SECRET = "api_live_0123456789abcdefSECRET"

PURGE = """
kind: tool
name: purge-test-leads
description: Delete the test leads, however many.
nodes:
  - {id: purge, type: action, action: delete_leads,
     config: {where: 'name = "Test lead"', max_affected: 1000, force: true}}
"""
VIA = """
kind: tool
name: purge-via-tool
description: Purge through the purge tool.
nodes:
  - {id: call, type: tool, tool: purge-test-leads}
"""
HOOK = """
kind: tool
name: tell-hook
description: Tell a webhook who called.
inputs:
  who: {type: string}
  notes: {type: string, required: false, default: ""}
nodes:
  - {id: remember, type: set, vars: {notes: "{{ input.notes }}"}, next: hook}
  - {id: hook, type: http, method: POST, url: "http://127.0.0.1:9/hook", json: {who: "{{ input.who }}"}}
"""
NOTE = """
kind: tool
name: add-note
description: Add a note to a lead.
inputs:
  lead_id: {type: string}
  text: {type: string}
nodes:
  - {id: insert, type: action, action: insert_note, config: {lead_id: lead_id, note: text},
     record: {lead_id: {path: input.lead_id}, text: {path: input.text}}}
"""
ECHO = """
kind: tool
name: echo
description: Say it back.
inputs:
  text: {type: string}
outputs:
  said: {type: string, value: "said: {{ input.text }}"}
nodes:
  - {id: done, type: end}
"""

FIND = """
kind: tool
name: find-acme
description: Read the Acme leads.
nodes:
  - {id: find, type: action, action: search_leads,
     config: {where: 'name = "Acme"', fields: [name, description]}}
"""


@pytest.fixture
def plays(tmp_path: Path) -> Catalog:
    return catalog(tmp_path / "plays", purge=PURGE, via=VIA, hook=HOOK, note=NOTE, echo=ECHO, find=FIND)


async def leads_named(client: CloseClient, emulator: Emulator, name: str, count: int) -> set[str]:
    ids = {str((await new_lead(client, name=name))["id"]) for _ in range(count)}
    emulator.request_log.clear()
    return ids


def stored_bytes(folder: Path) -> bytes:
    """Every byte of the run and write ledgers' SQLite files, their WAL files included."""
    files = sorted(folder.glob("closeflow.db*")) + sorted(folder.glob("writes.db*"))
    return b"".join(path.read_bytes() for path in files)


def deletes(emulator: Emulator) -> list[str]:
    return [path for method, path in writes(emulator) if method == "DELETE"]


async def test_a_play_tools_delete_above_the_servers_cap_is_refused_when_planned(
    build: Build, client: CloseClient, emulator: Emulator, plays: Catalog
) -> None:
    await leads_named(client, emulator, "Test lead", 7)
    async with connected(build("read,destructive", max_affected=2, catalog=plays)) as session:
        result = await session.call_tool("purge-test-leads", {})

    assert result.is_error is True
    refused = answer(result)
    assert "refusing to delete 7 leads: more than max_affected=2" in refused["error"]
    assert "capped at max_affected=2 and force is off" in refused["error"]
    assert TOKEN not in refused
    [node] = refused["nodes"]
    assert (node["node_id"], node["status"], node["output"]["count"]) == ("purge", "failed", 7)
    assert deletes(emulator) == []
    assert len(emulator.org.leads) == 7


@pytest.mark.parametrize("tool", ["purge-test-leads", "purge-via-tool"])
async def test_a_play_tools_delete_run_at_once_is_capped_and_sends_no_delete(
    build: Build, client: CloseClient, emulator: Emulator, plays: Catalog, tool: str
) -> None:
    await leads_named(client, emulator, "Test lead", 7)
    async with connected(build("read,destructive", confirm=False, max_affected=2, catalog=plays)) as session:
        result = await session.call_tool(tool, {})

    assert result.is_error is True
    assert answer(result)["status"] == "failed"
    assert "refusing to delete 7 leads: more than max_affected=2" in answer(result)["error"]
    assert deletes(emulator) == []
    assert len(emulator.org.leads) == 7


async def test_a_plan_shows_the_planned_deletes_and_its_confirmation_deletes_exactly_those(
    build: Build, client: CloseClient, emulator: Emulator, plays: Catalog
) -> None:
    doomed = await leads_named(client, emulator, "Test lead", 2)
    kept = await leads_named(client, emulator, "Keeper", 1)
    async with connected(build("read,destructive", max_affected=2, catalog=plays)) as session:
        planned = answer(await session.call_tool("purge-test-leads", {}))
        assert deletes(emulator) == []
        done = await session.call_tool("purge-test-leads", {TOKEN: planned[TOKEN]})

    [node] = planned["nodes"]
    assert (node["node_id"], node["status"]) == ("purge", "succeeded")
    assert (node["output"]["count"], node["output"]["ids"]) == (2, sorted(doomed))
    assert {(o["status"], o["plan"]) for o in node["output"]["outcomes"]} == {("planned", "delete")}
    assert done.is_error is False, done.content
    assert sorted(deletes(emulator)) == sorted(f"/lead/{i}/" for i in doomed)
    assert set(emulator.org.leads) == kept


async def test_a_plan_through_a_tool_node_shows_the_nested_tools_node_records(
    build: Build, client: CloseClient, emulator: Emulator, plays: Catalog
) -> None:
    doomed = await leads_named(client, emulator, "Test lead", 2)
    async with connected(build("read,destructive", max_affected=2, catalog=plays)) as session:
        planned = answer(await session.call_tool("purge-via-tool", {}))

    [call] = planned["nodes"]
    assert (call["node_id"], call["status"]) == ("call", "succeeded")
    assert call["tool_run"]["run_id"] == call["output"]["run_id"]
    [purge] = call["tool_run"]["nodes"]
    assert (purge["node_id"], purge["output"]["ids"]) == ("purge", sorted(doomed))
    assert deletes(emulator) == []


async def test_a_plan_shows_the_request_an_http_node_would_send_and_cuts_long_outputs(
    build: Build, emulator: Emulator, plays: Catalog, run_ledger: SqliteRunLedger
) -> None:
    notes = "x" * 5000
    async with connected(build("read,write", catalog=plays)) as session:
        result = await session.call_tool("tell-hook", {"who": "Ann", "notes": notes})

    assert result.is_error is False, result.content
    planned = answer(result)
    remember, hook = planned["nodes"]
    stored = run_ledger.run(planned["run_id"])
    assert stored is not None
    whole = json.dumps(stored.nodes[0].output, ensure_ascii=False)
    assert (remember["node_id"], remember["status"]) == ("remember", "succeeded")
    assert remember["output"] == whole[:4000]
    assert remember["output_cut"] == (
        f"the output is {len(whole)} characters of JSON; the first 4000 are shown "
        f"(closeflow runs show {planned['run_id']} shows it whole)"
    )
    assert hook == {
        "node_id": "hook",
        "status": "succeeded",
        "output": {
            "planned": {
                "method": "POST",
                "url": "http://127.0.0.1:9/hook",
                "headers": {"Idempotency-Key": "***"},  # redacted by name, as every *key* header
                "json": {"who": "Ann"},
            },
            "sent": False,
        },
    }
    assert emulator.request_log == []


async def test_the_run_ledger_keeps_the_mode_and_tier_of_each_play_tool_call(
    build: Build, client: CloseClient, emulator: Emulator, plays: Catalog, run_ledger: SqliteRunLedger
) -> None:
    [lead_id] = await leads_named(client, emulator, "Acme", 1)
    arguments = {"lead_id": lead_id, "text": "Called, asked for pricing."}
    async with connected(build("read,write", catalog=plays)) as session:
        planned = answer(await session.call_tool("add-note", arguments))
        done = answer(await session.call_tool("add-note", {**arguments, TOKEN: planned[TOKEN]}))
        read = answer(await session.call_tool("echo", {"text": "hello"}))

    contexts = {
        name: run_ledger.run(call["run_id"]).context  # type: ignore[union-attr]
        for name, call in (("plan", planned), ("execute", done), ("read", read))
    }
    assert contexts["plan"]["mcp"] == {"mode": "plan", "tier": "write"}
    assert contexts["execute"]["mcp"] == {"mode": "execute", "tier": "write"}
    assert contexts["read"]["mcp"] == {"mode": "read", "tier": "read"}
    assert (contexts["plan"]["dry_run"], contexts["plan"]["max_delete"]) == (True, 10)
    assert "dry_run" not in contexts["execute"]
    assert contexts["execute"]["input"] == arguments
    assert (done["status"], read["outputs"]) == ("succeeded", {"said": "said: hello"})
    assert "nodes" not in done and "nodes" not in read
    assert writes(emulator) == [("POST", "/activity/note/")]


async def test_a_known_secret_passed_in_a_tool_input_never_reaches_the_ledger_files(
    build: Build,
    client: CloseClient,
    emulator: Emulator,
    plays: Catalog,
    run_ledger: SqliteRunLedger,
    tmp_path: Path,
) -> None:
    lead_id = str((await new_lead(client, name="Acme", description=f"pasted {SECRET} here"))["id"])
    note = {"lead_id": lead_id, "text": f"key is {SECRET}"}
    server = build("read,write", catalog=plays, secrets={"close_api_key": SECRET})
    async with connected(server) as session:
        echoed = answer(await session.call_tool("echo", {"text": SECRET}))
        found = answer(await session.call_tool("find-acme", {}))
        planned = answer(await session.call_tool("add-note", note))
        done = answer(await session.call_tool("add-note", {**note, TOKEN: planned[TOKEN]}))

    assert echoed["outputs"] == {"said": "said: ***"}
    stored_find = run_ledger.run(found["run_id"])
    assert stored_find is not None  # a secret read from Close is scrubbed from the node's output
    assert [r["description"] for r in stored_find.nodes[0].output["records"]] == ["pasted *** here"]
    assert done["status"] == "succeeded"
    # The tool read the scrubbed input, so the secret did not go to Close either.
    assert [(a["_type"], a.get("note")) for a in emulator.org.activities] == [
        ("Created", None),  # the lead's, logged by Close itself
        ("Note", "key is ***"),
    ]
    for call in (echoed, found, planned, done):
        assert SECRET not in json.dumps(call)
    stored = stored_bytes(tmp_path)
    assert echoed["run_id"].encode() in stored  # the runs are in the bytes read
    assert SECRET.encode() not in stored
    assert b"key is ***" in stored


async def test_without_a_cap_a_play_tool_keeps_its_own_max_affected_and_force(
    client: CloseClient, emulator: Emulator, plays: Catalog, run_ledger: SqliteRunLedger, clock: FakeClock
) -> None:
    doomed = await leads_named(client, emulator, "Test lead", 7)
    run, _outputs = await run_tool(
        "purge-test-leads", {}, plays, ledger=run_ledger, client=client, write_ledger=None, clock=clock
    )
    assert run.status == "succeeded", run.error
    assert sorted(deletes(emulator)) == sorted(f"/lead/{i}/" for i in doomed)
    assert run_ledger.run(run.id).context == {"input": {}}  # type: ignore[union-attr]


async def test_a_run_created_capped_or_as_a_dry_run_stays_so_when_driven_again_without_either(
    client: CloseClient, emulator: Emulator, plays: Catalog, run_ledger: SqliteRunLedger, clock: FakeClock
) -> None:
    await leads_named(client, emulator, "Test lead", 3)

    # As a runner resuming an agent's run would drive it: no cap, no dry run given.
    def created(kept: dict[str, Any]) -> str:
        return run_ledger.create_run(
            play="purge-test-leads", source="mcp", record_id=None, change_seq=None, trigger=None,
            context={"input": {}, **kept},
        )  # fmt: skip

    capped, planned = created({"max_delete": 2}), created({"dry_run": True})
    refused = await run_to_end(
        capped, plays, ledger=run_ledger, client=client, write_ledger=None, clock=clock
    )
    dry = await run_to_end(planned, plays, ledger=run_ledger, client=client, write_ledger=None, clock=clock)

    assert refused.status == "failed"
    assert "refusing to delete 3 leads: more than max_affected=2" in str(refused.error)
    assert dry.status == "succeeded"
    assert dry.nodes[0].output["count"] == 3
    assert deletes(emulator) == []
    assert len(emulator.org.leads) == 3


async def test_an_extra_context_may_not_set_what_the_engine_reads(
    client: CloseClient, plays: Catalog, run_ledger: SqliteRunLedger, clock: FakeClock
) -> None:
    with pytest.raises(ConfigError, match="context_extra may not set input, vars: the engine owns these"):
        await run_tool(
            "echo", {"text": "hi"}, plays, ledger=run_ledger, client=client, write_ledger=None, clock=clock,
            context_extra={"vars": {"x": 1}, "input": {}, "mcp": {}},
        )  # fmt: skip
    assert run_ledger.runs() == []
