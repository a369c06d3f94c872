"""What an agent is shown: the tools of each tier, their annotations and input schemas (caps
included), the configuration that fixes or hides inputs, and error results for bad calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from closeflow.close import CloseClient, ConfigError
from closeflow.mcp import ACTION_SPECS, InputSetting, ToolSetting, load_config
from tests.actions._org import new_lead
from tests.mcp.conftest import Build, answer, connected

READ = {"search_leads", "search_contacts", "list_models", "describe_model", "query_sql"}
WRITE = {
    "insert_lead",
    "insert_contact",
    "update_leads",
    "update_contacts",
    "upsert_leads",
    "upsert_contacts",
    "insert_note",
}
DESTRUCTIVE = {"delete_leads", "delete_contacts"}
EVERY = "read,write,destructive"


async def listed(server: Any) -> dict[str, Any]:
    async with connected(server) as session:
        return {tool.name: tool for tool in (await session.list_tools()).tools}


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        ("read", READ),
        ("read,write", READ | WRITE),
        (EVERY, READ | WRITE | DESTRUCTIVE),
        ("write", WRITE),
        ("destructive", DESTRUCTIVE),
    ],
)
async def test_each_tier_serves_exactly_its_tools(build: Build, allow: str, expected: set[str]) -> None:
    assert set(await listed(build(allow))) == expected


async def test_annotations_say_which_tools_read_write_and_destroy(build: Build) -> None:
    tools = await listed(build(EVERY))

    assert {n for n, t in tools.items() if t.annotations.read_only_hint} == READ
    assert {n for n, t in tools.items() if t.annotations.destructive_hint} == DESTRUCTIVE
    assert all(tools[name].annotations.read_only_hint is False for name in WRITE | DESTRUCTIVE)


@pytest.mark.parametrize("confirm", [True, False])
async def test_every_schema_is_strict_json_schema_with_the_control_inputs_of_the_mode(
    build: Build, confirm: bool
) -> None:
    tools = await listed(build(EVERY, confirm=confirm))

    for name, tool in tools.items():
        schema = tool.input_schema
        Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False, name
        properties = set(schema["properties"])
        assert not properties & {"force", "action", "object_type"}, name
        writes = name in WRITE | DESTRUCTIVE
        assert ("confirmation_token" in properties) is (writes and confirm), name
        assert ("dry_run" in properties) is (writes and not confirm), name


async def test_the_server_limits_are_the_schemas_maximums(build: Build) -> None:
    tools = await listed(build(EVERY, max_affected=3, max_results=7, max_records=5))
    schema = {name: tool.input_schema["properties"] for name, tool in tools.items()}

    assert {n: schema[n]["max_affected"]["maximum"] for n in DESTRUCTIVE} == dict.fromkeys(DESTRUCTIVE, 3)
    assert {n: schema[n]["max_affected"]["default"] for n in DESTRUCTIVE} == dict.fromkeys(DESTRUCTIVE, 3)
    searches = {"search_leads", "search_contacts"}
    assert {n: schema[n]["limit"]["maximum"] for n in searches} == dict.fromkeys(searches, 7)
    assert {n: schema[n]["limit"]["default"] for n in searches} == dict.fromkeys(searches, 7)
    writers = WRITE | DESTRUCTIVE
    assert {n: schema[n]["records"]["maxItems"] for n in writers} == dict.fromkeys(writers, 5)


async def test_the_example_arguments_of_each_action_fit_its_own_schema(build: Build) -> None:
    tools = await listed(build(EVERY))
    checked = 0

    for name in ACTION_SPECS:
        example = tools[name].description.split("Example arguments: ", 1)[1].splitlines()[0]
        alternatives = example.split("  or  ")
        assert len(alternatives) == (2 if name == "delete_leads" else 1), name
        for text in alternatives:
            Draft202012Validator(tools[name].input_schema).validate(json.loads(text))
            checked += 1

    assert checked == len(ACTION_SPECS) + 1


async def test_bad_arguments_are_error_results_and_the_session_goes_on(
    build: Build, client: CloseClient
) -> None:
    await new_lead(client, name="Acme")
    match = [{"property": "id", "value": "id"}]
    bad = [
        ("search_leads", {"limit": "ten"}, "limit: 'ten' is not of type 'integer'"),
        ("search_leads", {"colour": "red"}, "'colour' was unexpected"),
        ("insert_lead", {}, "'records' is a required property"),
        (
            "upsert_leads",
            {"records": [{"url": "https://acme.com"}], "match_property": "url"},
            "match_property and match_value go together; give both",
        ),
        ("delete_leads", {"where": 'name = "Acme"', "match": match}, "give where or match, not both"),
        ("drop_everything", {}, "no tool named 'drop_everything' on this server (tools: delete_contacts,"),
    ]
    async with connected(build(EVERY)) as session:
        for name, arguments, message in bad:
            result = await session.call_tool(name, arguments)
            assert result.is_error is True, name
            assert message in answer(result)["error"], name
        found = await session.call_tool("search_leads", {"where": 'name = "Acme"'})

    assert found.is_error is False
    assert [r["display_name"] for r in answer(found)["records"]] == ["Acme"]


FIXED_UPSERT = {
    "tools": {
        "upsert_contacts": {
            "inputs": {
                "match_property": {"default": "email"},
                "match_value": {"default": "email"},
                "arrays": "disabled",
            }
        },
        "insert_lead": {"inputs": {"records": {"default": [{"name": "Acme"}]}}},
    }
}


async def test_fixed_and_disabled_inputs_are_hidden_and_cannot_be_overridden(build: Build) -> None:
    server = build("read,write", config=FIXED_UPSERT)
    tools = await listed(server)
    upsert = tools["upsert_contacts"].input_schema

    assert not {"match_property", "match_value", "arrays"} & set(upsert["properties"])
    assert upsert["required"] == ["records"]
    assert "records" not in tools["insert_lead"].input_schema["properties"]
    assert "required" not in tools["insert_lead"].input_schema
    records = [{"email": "ann@acme.com"}]
    async with connected(server) as session:
        for name in ("match_property", "arrays"):
            result = await session.call_tool("upsert_contacts", {"records": records, name: "url"})
            assert result.is_error is True
            assert f"'{name}' was unexpected" in answer(result)["error"]


async def _three_leads(client: CloseClient) -> None:
    for name in ("Acme", "Globex", "Initech"):
        await new_lead(client, name=name, url=f"https://{name.lower()}.com")


async def test_fixed_inputs_are_the_values_a_call_uses(build: Build, client: CloseClient) -> None:
    await _three_leads(client)
    fixed = {"fields": {"default": ["display_name", "url"]}, "limit": {"default": 1}}
    server = build(config={"tools": {"search_leads": {"inputs": fixed}}})
    async with connected(server) as session:
        result = await session.call_tool("search_leads", {})

    found = answer(result)
    assert found["count"] == 1
    assert [set(record) for record in found["records"]] == [{"id", "display_name", "url"}]


async def test_a_disabled_input_takes_the_default_and_the_cap_still_holds(
    build: Build, client: CloseClient
) -> None:
    await _three_leads(client)
    disabled = {"fields": "disabled", "limit": "disabled"}
    server = build(config={"tools": {"search_leads": {"inputs": disabled}}}, default_results=2)
    async with connected(server) as session:
        result = await session.call_tool("search_leads", {})

    found = answer(result)
    assert found["count"] == 2
    assert [set(record) for record in found["records"]] == [{"id", "display_name"}] * 2


async def test_a_disabled_tool_is_not_served(build: Build) -> None:
    server = build(EVERY, config={"tools": {"delete_leads": {"enabled": False}}})
    tools = await listed(server)
    async with connected(server) as session:
        result = await session.call_tool("delete_leads", {"where": 'name = "Acme"'})

    assert set(tools) == READ | WRITE | {"delete_contacts"}
    assert result.is_error is True
    assert "no tool named 'delete_leads'" in answer(result)["error"]


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"serch_leads": {}}, "unknown tool 'serch_leads' (did you mean 'search_leads' or"),
        (
            {"search_leads": {"inputs": {"limt": "disabled"}}},
            "tools.search_leads.inputs.limt: search_leads has no input 'limt' (did you mean 'limit'?)",
        ),
        (
            {"search_leads": {"inputs": {"limit": {"default": "ten"}}}},
            "tools.search_leads.inputs.limit: the default value 'ten' does not fit: "
            "'ten' is not of type 'integer'",
        ),
        (
            {"search_leads": {"inputs": {"limit": {"default": 500}}}},
            "the default value 500 does not fit: 500 is greater than the maximum of 100",
        ),
        (
            {"insert_lead": {"inputs": {"records": "disabled"}}},
            "tools.insert_lead.inputs.records: records is required, so it cannot be disabled",
        ),
        (
            {"upsert_leads": {"inputs": {"confirmation_token": {"default": "cft_x"}}}},
            "confirmation_token belongs to the server's confirmation flow and cannot be configured",
        ),
    ],
)
def test_a_bad_configuration_stops_the_server_from_starting(
    build: Build, tools: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build("read", config={"tools": tools})


YAML = """
tools:
  upsert_contacts:
    inputs:
      match_property: {default: email}
      match_value: {default: email}
      arrays: disabled
      records: auto
  delete_leads:
    enabled: false
"""
TOML = """
[tools.upsert_contacts.inputs]
match_property = {default = "email"}
match_value = {default = "email"}
arrays = "disabled"
records = "auto"

[tools.delete_leads]
enabled = false
"""


def test_yaml_and_toml_configurations_say_the_same(tmp_path: Path) -> None:
    (tmp_path / "mcp.yaml").write_text(YAML)
    (tmp_path / "mcp.toml").write_text(TOML)

    from_yaml = load_config(tmp_path / "mcp.yaml")
    from_toml = load_config(tmp_path / "mcp.toml")

    expected = {
        "upsert_contacts": ToolSetting(
            inputs={
                "match_property": InputSetting("default", "email"),
                "match_value": InputSetting("default", "email"),
                "arrays": InputSetting("disabled"),
                "records": InputSetting("auto"),
            }
        ),
        "delete_leads": ToolSetting(enabled=False),
    }
    assert from_yaml.tools == from_toml.tools == expected
    assert from_yaml.source == str(tmp_path / "mcp.yaml")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("mcp.json", '{"tools": {}}', "name the configuration file .yaml, .yml or .toml"),
        ("mcp.yaml", "tools: [unclosed\n", "is not valid YAML"),
        ("mcp.toml", "[tools\n", "is not valid TOML"),
        ("mcp.yml", "tools: {search_leads: {inputs: {limit: sometimes}}}", "expected auto, disabled"),
    ],
)
def test_a_bad_configuration_file_is_an_error_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(path)
    assert str(path) in str(raised.value)
