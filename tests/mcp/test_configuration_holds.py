"""A configuration holds against an agent that tries the other door: inputs that only mean something
together are hidden together, record keys cannot write custom fields a fixed `custom` leaves out, and
settings that would make every call fail stop the server at start."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from tests.actions._org import field_id, new_contact, new_lead
from tests.mcp.conftest import Build, answer, connected, writes

MATCH_BY_EMAIL = {
    "tools": {
        "update_contacts": {
            "inputs": {"match_property": {"default": "email"}, "match_value": {"default": "email"}}
        }
    }
}


async def test_fixing_the_match_shorthand_hides_match_too_so_an_agent_cannot_match_by_name(
    build: Build, client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client, name="Acme")
    for n in range(3):
        await new_contact(client, lead["id"], f"sam{n}@acme.com", name="Sam")
    emulator.request_log.clear()
    server = build("read,write", confirm=False, config=MATCH_BY_EMAIL)
    schema = {tool.name: tool for tool in server.listed()}["update_contacts"].input_schema
    assert {"match", "match_property", "match_value"}.isdisjoint(schema["properties"])

    by_name: dict[str, Any] = {
        "records": [{"name": "Sam", "title": "CEO"}],
        "match": [{"property": "name", "value": "name"}],
        "on_many": "update_all",
    }
    async with connected(server) as session:
        refused = await session.call_tool("update_contacts", by_name)
    assert refused.is_error
    assert "'match' was unexpected" in answer(refused)["error"]
    assert writes(emulator) == []


async def test_a_fixed_custom_mapping_keeps_record_keys_from_writing_other_custom_fields(
    build: Build, client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client, name="Acme")
    emulator.request_log.clear()
    config = {"tools": {"update_leads": {"inputs": {"custom": {"default": {"Industry": "industry"}}}}}}
    record = {"id": lead["id"], "industry": "Retail", 'custom."Employees"': 99999}
    arguments = {"records": [record], "match_property": "id", "match_value": "id"}
    async with connected(build("read,write", confirm=False, config=config)) as session:
        done = answer(await session.call_tool("update_leads", arguments))
        constants = await session.call_tool("update_leads", {**arguments, "constants": {"name": "x"}})
    stored = emulator.org.leads[lead["id"]]
    assert stored[f"custom.{field_id(emulator, 'lead', 'Industry')}"] == "Retail"
    assert f"custom.{field_id(emulator, 'lead', 'Employees')}" not in stored
    assert done["ignored_record_keys"].startswith('custom."Employees"')
    assert constants.is_error  # constants go with custom and mappings: hidden together
    assert writes(emulator) == [("PUT", f"/lead/{lead['id']}/")]


@pytest.mark.parametrize(
    ("tool", "inputs", "reason"),
    [
        ("update_leads", {"match_property": {"default": "id"}}, "match_property and match_value go together"),
        ("update_leads", {"mappings": {"default": {"bogus": "x"}}}, 'unknown field "bogus"'),
        ("insert_lead", {"constants": {"default": {"nope": 1}}}, 'unknown field "nope"'),
        ("delete_leads", {"where": {"default": 'name = = "x"'}}, "inputs.where: expected"),
        ("search_leads", {"where": {"default": "((name"}}, "inputs.where:"),
    ],
)
def test_settings_that_would_make_every_call_fail_stop_the_server_at_start(
    build: Build, tool: str, inputs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigError, match="configuration") as refused:
        build("read,write,destructive", config={"tools": {tool: {"inputs": inputs}}})
    assert reason in str(refused.value)
    assert f"tools.{tool}" in str(refused.value)


def test_settings_an_agent_can_complete_are_accepted(build: Build) -> None:
    config = {
        "tools": {
            "update_leads": {"inputs": {"arrays": "disabled", "on_many": {"default": "first"}}},
            "delete_leads": {"inputs": {"where": {"default": 'name starts_with "ZZ Test"'}}},
            "insert_note": {"inputs": {"lead_id": "disabled"}},
        }
    }
    server = build("read,write,destructive", config=config)
    assert {"update_leads", "delete_leads", "insert_note"} <= set(server.tools)


async def test_a_filter_nested_too_deep_is_an_error_the_agent_can_act_on(build: Build) -> None:
    async with connected(build()) as session:
        deep = await session.call_tool("search_leads", {"where": "(" * 2000 + 'name = "x"' + ")" * 2000})
    assert deep.is_error
    assert "nests not / ( more than 100 levels deep" in answer(deep)["error"]


async def test_an_update_that_would_change_more_records_than_a_call_may_is_refused_at_the_plan(
    build: Build, client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client, name="Acme")
    for n in range(4):
        await new_contact(client, lead["id"], f"sam{n}@acme.com", name="Sam")
    emulator.request_log.clear()
    arguments = {
        "records": [{"name": "Sam", "title": "CEO"}],
        "match_property": "name",
        "match_value": "name",
        "on_many": "update_all",
    }
    async with connected(build("read,write", max_records=3)) as session:
        refused = await session.call_tool("update_contacts", arguments)
    assert refused.is_error
    assert answer(refused)["error"].startswith("refusing: this call would change 4 contacts, more than the 3")
    assert "confirmation_token" not in answer(refused)
    assert writes(emulator) == []


@pytest.mark.parametrize("confirm", [True, False])
async def test_the_update_cap_holds_when_the_call_executes_too(
    build: Build, client: CloseClient, emulator: Emulator, confirm: bool
) -> None:
    lead = await new_lead(client, name="Acme")
    for n in range(3):
        await new_contact(client, lead["id"], f"sam{n}@acme.com", name="Sam")
    arguments: dict[str, Any] = {
        "records": [{"name": "Sam", "title": "CEO"}],
        "match_property": "name",
        "match_value": "name",
        "on_many": "update_all",
    }
    async with connected(build("read,write", confirm=confirm, max_records=3)) as session:
        if confirm:  # planned at 3 (allowed); a fourth match arrives before the confirmation
            token = answer(await session.call_tool("update_contacts", arguments))["confirmation_token"]
            arguments["confirmation_token"] = token
        await new_contact(client, lead["id"], "sam3@acme.com", name="Sam")
        emulator.request_log.clear()
        refused = await session.call_tool("update_contacts", arguments)
    assert refused.is_error
    assert answer(refused)["error"].startswith("refusing: this call would change 4 contacts, more than the 3")
    assert writes(emulator) == []


def test_a_configuration_error_in_one_tool_does_not_hide_another_tools(build: Build) -> None:
    config = {
        "tools": {
            "search_leads": {"inputs": {"nope": "auto"}},
            "update_leads": {"inputs": {"mappings": {"default": {"bogus": "x"}}}},
        }
    }
    with pytest.raises(ConfigError) as refused:
        build("read,write", config=config)
    assert "search_leads has no input 'nope'" in str(refused.value)
    assert (
        'tools.update_leads: with these settings every call would fail: mappings: unknown field "bogus"'
        in str(refused.value)
    )
