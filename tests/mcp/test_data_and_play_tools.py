"""The data-model tools over a real synced store (SQLite and Postgres), and the tools of a plays folder:
tiers, schemas from declared inputs, outputs, and confirmed writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from closeflow.plays import Catalog, SqliteRunLedger
from closeflow.sync import open_store, sync
from tests.mcp.conftest import Build, answer, connected, writes
from tests.plays._fixtures import catalog, postgres_schema_url
from tests.sync._helpers import RECORD_MODELS, custom_field_truth, truth
from tests.sync.store.conftest import POSTGRES_URL, READ_ROLE, ensure_read_role


@pytest.fixture
def emulator(clock: FakeClock) -> Emulator:
    return Emulator(clock=clock, seed=11, leads=12)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the store lives: a SQLite file, or a fresh Postgres schema read through a read-only role."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    for url in postgres_schema_url():
        ensure_read_role(POSTGRES_URL)
        yield f"{url}&read_role={READ_ROLE}"


async def synced(client: CloseClient, target: str) -> str:
    store = open_store(target)
    try:
        result = await sync(client, store)
    finally:
        store.close()
    assert result.failed == [], [(s.stream, s.error) for s in result.failed]
    return target


def expected_rows(emulator: Emulator) -> dict[str, int]:
    org = emulator.org
    rows = {model: len(truth(emulator, model)) for model in RECORD_MODELS}
    references = {"users": org.users, "lead_statuses": org.lead_statuses, "pipelines": org.pipelines}
    rows |= {name: len(found) for name, found in references.items()}
    opportunity_statuses = len(list(org.opportunity_statuses()))
    return rows | {
        "custom_fields": len(custom_field_truth(emulator)),
        "opportunity_statuses": opportunity_statuses,
    }


def lead_field(emulator: Emulator, name: str) -> str:
    [found] = [d["id"] for d in emulator.org.fields_for("lead") if d["name"] == name]
    return f"custom.{found}"


async def test_list_models_shows_every_synced_model_with_the_emulators_row_counts(
    build: Build, client: CloseClient, emulator: Emulator, target: str
) -> None:
    server = build(store_target=await synced(client, target))
    async with connected(server) as session:
        result = await session.call_tool("list_models", {})
    assert not result.is_error, result.content
    listed = answer(result)
    assert listed["dialect"] == ("sqlite" if "://" not in target else "postgres")
    assert {m["model"]: m["rows"] for m in listed["models"]} == expected_rows(emulator)
    assert {m["deleted_rows"] for m in listed["models"]} == {0}
    views = {m["query"] for m in listed["models"] if m["query"] != m["model"]}
    assert views == {"leads_view", "contacts_view", "opportunities_view", "activities_view"}


async def test_query_sql_returns_rows_as_objects_with_the_emulators_values(
    build: Build, client: CloseClient, emulator: Emulator, target: str
) -> None:
    server = build(store_target=await synced(client, target))
    sql = 'SELECT id, name, status_label, "Industry", "Source" FROM leads_view ORDER BY id'
    async with connected(server) as session:
        every = answer(await session.call_tool("query_sql", {"sql": sql, "max_rows": 200}))
        first = answer(await session.call_tool("query_sql", {"sql": sql, "max_rows": 5}))
    industry, source = lead_field(emulator, "Industry"), lead_field(emulator, "Source")
    expected = {
        lead_id: {
            "id": lead_id,
            "name": lead["name"],
            "status_label": lead["status_label"],
            "Industry": lead.get(industry),
            "Source": lead.get(source),
        }
        for lead_id, lead in emulator.org.leads.items()
    }
    assert any(row["Industry"] is not None for row in expected.values())  # custom values are compared
    assert every["columns"] == ["id", "name", "status_label", "Industry", "Source"]
    assert {row["id"]: row for row in every["rows"]} == expected
    assert every["row_count"] == 12 and "truncated" not in every
    assert first["rows"] == every["rows"][:5]
    assert first["row_count"] == 5
    assert first["truncated"] == "more rows than max_rows=5; page with LIMIT/OFFSET"


async def test_describe_model_lists_a_column_for_every_lead_custom_field(
    build: Build, client: CloseClient, emulator: Emulator, tmp_path: Path
) -> None:
    server = build(store_target=await synced(client, str(tmp_path / "store.db")))
    async with connected(server) as session:
        result = await session.call_tool("describe_model", {"model": "leads"})
    assert not result.is_error, result.content
    described = answer(result)
    assert described["query"] == "leads_view"
    keys = ("custom_field", "field_type", "from", "choices")
    custom = {c["column"]: tuple(c.get(k) for k in keys) for c in described["columns"] if "custom_field" in c}
    definitions = emulator.org.fields_for("lead")
    choices = {d["name"]: d.get("choices") for d in definitions if d["type"] == "choices"}
    assert custom == {
        d["name"]: (d["name"], d["type"], f"custom.{d['id']}", choices.get(d["name"])) for d in definitions
    }
    assert {"choices", "number", "date"} <= {d["type"] for d in definitions}
    assert {"id", "name", "status_label"} <= {column["column"] for column in described["columns"]}


async def test_query_sql_refuses_writes_and_leaves_the_store_as_it_was(
    build: Build, client: CloseClient, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where an ATTACH would create its file
    server = build(store_target=await synced(client, target))
    statements = ("DELETE FROM leads", "UPDATE leads SET deleted_at = 'now'", "DROP TABLE leads")
    async with connected(server) as session:
        refused = [
            answer(await session.call_tool("query_sql", {"sql": sql}))
            for sql in (*statements, "ATTACH DATABASE 'other.db' AS other")
        ]
    assert [r["error"].split(";")[0] for r in refused] == [
        f"the SQL query path is read-only: {verb} statements are refused"
        for verb in ("DELETE", "UPDATE", "DROP", "ATTACH")
    ]
    store = open_store(target)
    try:
        assert store.query("SELECT count(*) FROM leads WHERE deleted_at IS NULL")[1] == [(12,)]
    finally:
        store.close()
    assert not (tmp_path / "other.db").exists()


async def test_query_sql_refuses_max_rows_above_the_servers_limit(
    build: Build, client: CloseClient, tmp_path: Path
) -> None:
    server = build(store_target=await synced(client, str(tmp_path / "store.db")), max_rows=5)
    async with connected(server) as session:
        too_many = await session.call_tool("query_sql", {"sql": "SELECT id FROM leads", "max_rows": 6})
        allowed = await session.call_tool("query_sql", {"sql": "SELECT id FROM leads", "max_rows": 5})
    assert too_many.is_error
    expected = "invalid arguments for query_sql: max_rows: 6 is greater than the maximum of 5"
    assert answer(too_many)["error"] == expected
    assert answer(allowed)["row_count"] == 5


async def test_data_tools_on_a_store_not_synced_yet_say_to_run_closeflow_sync(
    build: Build, tmp_path: Path
) -> None:
    missing = tmp_path / "never-synced.db"
    server = build(store_target=str(missing))
    async with connected(server) as session:
        result = await session.call_tool("list_models", {})
    assert result.is_error
    assert "closeflow sync" in answer(result)["error"]
    assert not missing.exists()


# --- tools of a plays folder ------------------------------------------------------------------------

SCORE = """
kind: tool
name: score-lead
description: Say whether a lead is big.
inputs:
  name: {type: string, required: true, description: "The lead's name"}
  employees: {type: integer, required: false, default: 10, description: Head count}
  vip: {type: boolean, required: false, default: false}
outputs:
  label: {type: string, value: "{{ vars.label }}"}
  score: {type: integer, value: "{{ input.employees * 2 }}"}
nodes:
  - {id: size, type: branch, if: "{{ input.employees > 100 }}", then: big, else: small}
  - {id: big, type: set, vars: {label: "{{ input.name }} is big"}, next: end}
  - {id: small, type: set, vars: {label: "{{ input.name }} is small"}}
"""
NOTE = """
kind: tool
name: add-note
description: Add a note to a lead.
inputs:
  lead_id: {type: string}
  text: {type: string}
outputs:
  note_id: {type: string, value: {path: "nodes.insert.output.ids[0]"}}
nodes:
  - {id: insert, type: action, action: insert_note, config: {lead_id: lead_id, note: text},
     record: {lead_id: {path: input.lead_id}, text: {path: input.text}}}
"""
PURGE = """
kind: tool
name: purge-leads
description: Delete the test leads.
nodes:
  - {id: purge, type: action, action: delete_leads, config: {where: 'name = "Test lead"'}}
"""
VIA = """
kind: tool
name: purge-via-tool
description: Purge through the purge tool.
nodes:
  - {id: call, type: tool, tool: purge-leads}
"""
HOOK = """
kind: tool
name: ping-hook
description: Tell a webhook.
nodes:
  - {id: hook, type: http, method: POST, url: "http://127.0.0.1:9/hook", json: {hello: world}}
"""
TIER_OF = {"score-lead": "read", "add-note": "write", "ping-hook": "write"}
TIER_OF |= {"purge-leads": "destructive", "purge-via-tool": "destructive"}


@pytest.fixture
def plays(tmp_path: Path) -> Catalog:
    return catalog(tmp_path / "plays", score=SCORE, note=NOTE, purge=PURGE, via=VIA, hook=HOOK)


@pytest.mark.parametrize("allow", ["read", "read,write", "read,write,destructive"])
async def test_play_tools_are_served_under_the_tier_their_graph_reaches(
    build: Build, plays: Catalog, allow: str
) -> None:
    server = build(allow, catalog=plays)
    async with connected(server) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools if tool.name in TIER_OF}
    tiers = allow.split(",")
    assert set(listed) == {name for name, tier in TIER_OF.items() if tier in tiers}
    for name, tool in listed.items():
        assert server.tools[name].tier == TIER_OF[name]
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (TIER_OF[name] == "read")
        assert tool.annotations.destructive_hint is (TIER_OF[name] == "destructive")


async def test_a_play_tools_input_schema_comes_from_its_declared_inputs(build: Build, plays: Catalog) -> None:
    async with connected(build("read,write", catalog=plays)) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert listed["score-lead"].input_schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The lead's name"},
            "employees": {"type": "integer", "description": "Head count", "default": 10},
            "vip": {"type": "boolean", "default": False},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    note = listed["add-note"].input_schema
    assert set(note["properties"]) == {"lead_id", "text", "confirmation_token"}
    assert note["required"] == ["lead_id", "text"]
    assert "label (string), score (integer)" in (listed["score-lead"].description or "")


async def test_a_read_tool_returns_its_outputs_and_refuses_an_input_of_the_wrong_type(
    build: Build, plays: Catalog, emulator: Emulator, run_ledger: SqliteRunLedger
) -> None:
    async with connected(build(catalog=plays)) as session:
        small = await session.call_tool("score-lead", {"name": "Acme"})
        big = await session.call_tool("score-lead", {"name": "Bolt", "employees": 500})
        wrong = await session.call_tool("score-lead", {"name": "Acme", "employees": "many"})
    assert not small.is_error, small.content
    assert answer(small)["outputs"] == {"label": "Acme is small", "score": 20}
    assert (answer(big)["status"], answer(big)["outputs"]) == (
        "succeeded",
        {"label": "Bolt is big", "score": 1000},
    )
    assert wrong.is_error
    assert answer(wrong)["error"] == (
        "invalid arguments for score-lead: employees: 'many' is not of type 'integer'"
    )
    assert emulator.request_log == []
    runs = run_ledger.runs(source="mcp", play="score-lead")
    assert sorted((run.id, run.status) for run in runs if run.status == "succeeded") == sorted(
        [(answer(small)["run_id"], "succeeded"), (answer(big)["run_id"], "succeeded")]
    )
    [failed] = [run for run in runs if run.status != "succeeded"]
    assert (failed.id, failed.status, failed.error) == (
        answer(wrong)["run_id"],
        "failed",
        answer(wrong)["error"],
    )


async def test_a_write_tool_plans_first_and_runs_once_with_the_token(
    build: Build, plays: Catalog, emulator: Emulator, run_ledger: SqliteRunLedger
) -> None:
    lead_id = sorted(emulator.org.leads)[0]
    arguments = {"lead_id": lead_id, "text": "Called, asked for pricing."}
    async with connected(build("read,write", catalog=plays)) as session:
        planned = await session.call_tool("add-note", arguments)
        assert not planned.is_error, planned.content
        assert writes(emulator) == []
        token = answer(planned)["confirmation_token"]
        done = await session.call_tool("add-note", {**arguments, "confirmation_token": token})
    assert not done.is_error, done.content
    assert writes(emulator) == [("POST", "/activity/note/")]
    assert answer(done)["outputs"]["note_id"].startswith("acti_")
    runs = run_ledger.runs(source="mcp")
    assert sorted((run.play, run.status) for run in runs) == [
        ("add-note", "succeeded"),
        ("add-note", "succeeded"),
    ]
    assert {run.id for run in runs} == {answer(planned)["run_id"], answer(done)["run_id"]}


def test_a_play_tool_named_like_a_built_in_tool_is_refused(build: Build, plays: Catalog) -> None:
    # A plays file cannot spell an underscore today (names are lower-case and dashes), so the clash is
    # made on the loaded catalog: the server must still refuse to shadow a built-in tool.
    renamed = plays.tools["score-lead"].model_copy(update={"name": "search_leads"})
    with pytest.raises(ConfigError, match=r"'search_leads' .* has the name of a built-in closeflow tool"):
        build(catalog=Catalog(tools={"search_leads": renamed}))


def test_a_play_tool_named_like_a_built_in_with_dashes_is_refused_too(build: Build, plays: Catalog) -> None:
    renamed = plays.tools["score-lead"].model_copy(update={"name": "search-leads"})
    with pytest.raises(ConfigError, match=r"'search-leads' .* has the name of a built-in closeflow tool"):
        build(catalog=Catalog(tools={"search-leads": renamed}))
