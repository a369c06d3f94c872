"""What an agent meets when it uses the tools as their descriptions say: result sets that say when
they are cut, custom fields written by name straight from record keys, keys nothing reads reported
rather than dropped in silence, calls where every record failed answered as errors, and a confirmed
delete that deletes exactly what its plan showed."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import field_id, leads_named, new_lead
from tests.mcp.conftest import Build, answer, connected, writes

TOKEN = "confirmation_token"


@pytest.fixture
async def leads(client: CloseClient, emulator: Emulator) -> list[str]:
    """Five leads named "ZZ Test n"; the request log starts empty after them."""
    ids = [str((await new_lead(client, name=f"ZZ Test {n}"))["id"]) for n in range(5)]
    emulator.request_log.clear()
    return ids


async def test_a_search_cut_by_its_limit_says_more_records_match(build: Build, leads: list[str]) -> None:
    async with connected(build()) as session:
        cut = answer(
            await session.call_tool("search_leads", {"where": 'name starts_with "ZZ Test"', "limit": 3})
        )
        whole = answer(
            await session.call_tool("search_leads", {"where": 'name starts_with "ZZ Test"', "limit": 5})
        )
    assert (cut["count"], len(cut["records"])) == (3, 3)
    assert cut["more"].startswith("more records match than limit=3")
    assert (whole["count"], "more" in whole) == (5, False)
    assert {r["id"] for r in whole["records"]} == set(leads)


async def test_a_blank_where_searches_every_record(build: Build, leads: list[str]) -> None:
    async with connected(build()) as session:
        found = await session.call_tool("search_leads", {"where": "  ", "limit": 10})
    assert not found.is_error, found.content
    assert {r["id"] for r in answer(found)["records"]} == set(leads)


async def test_a_record_key_naming_a_custom_field_writes_that_field(
    build: Build, emulator: Emulator, leads: list[str]
) -> None:
    arguments: dict[str, Any] = {
        "records": [{"id": leads[0], 'custom."Industry"': "Retail", "custom.Employees": 120}],
        "match_property": "id",
        "match_value": "id",
    }
    async with connected(build("read,write", confirm=False)) as session:
        done = answer(await session.call_tool("update_leads", arguments))
    assert [o["status"] for o in done["outcomes"]] == ["updated"]
    lead = emulator.org.leads[leads[0]]
    assert lead[f"custom.{field_id(emulator, 'lead', 'Industry')}"] == "Retail"
    assert lead[f"custom.{field_id(emulator, 'lead', 'Employees')}"] == 120
    assert "ignored_record_keys" not in done


async def test_record_keys_nothing_reads_are_reported_not_silently_dropped(
    build: Build, emulator: Emulator, leads: list[str]
) -> None:
    record = {"id": leads[0], "Industry": "Retail", "name": "Renamed"}
    arguments = {"records": [record], "match_property": "id", "match_value": "id"}
    async with connected(build("read,write")) as session:
        planned = answer(await session.call_tool("update_leads", arguments))
    assert planned["ignored_record_keys"].startswith("Industry: no input of this call reads these keys")
    assert [c["field"] for c in planned["outcomes"][0]["changes"]] == ["name"]
    assert writes(emulator) == []


async def test_a_call_where_every_record_fails_is_an_error_result_without_a_token(
    build: Build, emulator: Emulator, leads: list[str]
) -> None:
    bad = {"records": [{"name": "Acme", "status": "No Such Status"}]}
    async with connected(build("read,write")) as session:
        result = await session.call_tool("insert_lead", bad)
        mixed = await session.call_tool("insert_lead", {"records": [*bad["records"], {"name": "Fine Inc"}]})
    assert result.is_error
    assert [o["status"] for o in answer(result)["outcomes"]] == ["failed"]
    assert TOKEN not in answer(result)
    assert not mixed.is_error  # one record is fine: a plan, with the failing one named first
    assert [(o["row"], o["status"]) for o in answer(mixed)["outcomes"]] == [(1, "failed"), (2, "planned")]
    assert "1 record(s) would fail" in answer(mixed)["next_step"]
    assert writes(emulator) == []


async def test_insert_note_outcomes_carry_the_records_position(build: Build, leads: list[str]) -> None:
    records = [{"lead_id": leads[0], "note": "first"}, {"lead_id": "lead_nope", "note": "second"}]
    async with connected(build("read,write", confirm=False)) as session:
        done = answer(await session.call_tool("insert_note", {"records": records}))
    assert sorted((o["row"], o["status"]) for o in done["outcomes"]) == [(1, "created"), (2, "failed")]


async def test_a_confirmed_delete_deletes_exactly_the_planned_records_even_if_more_match_now(
    build: Build, client: CloseClient, emulator: Emulator, leads: list[str]
) -> None:
    where = {"where": 'name starts_with "ZZ Test"'}
    async with connected(build("read,destructive")) as session:
        planned = answer(await session.call_tool("delete_leads", where))
        late = str((await new_lead(client, name="ZZ Test late (a real customer)"))["id"])
        done = answer(await session.call_tool("delete_leads", {**where, TOKEN: planned[TOKEN]}))
    assert "exactly the records planned" in planned["next_step"]
    assert sorted(i for o in done["outcomes"] for i in o.get("ids", [])) == sorted(leads)
    assert sorted(path for method, path in writes(emulator) if method == "DELETE") == sorted(
        f"/lead/{lead}/" for lead in leads
    )
    assert late in emulator.org.leads and [lead["id"] for lead in leads_named(emulator, "ZZ Test 0")] == []


async def test_spelling_out_a_default_on_the_confirming_call_still_matches_its_plan(
    build: Build, emulator: Emulator, leads: list[str]
) -> None:
    arguments = {
        "records": [{"id": leads[1], "name": "Renamed"}],
        "match_property": "id",
        "match_value": "id",
    }
    async with connected(build("read,write")) as session:
        token = answer(await session.call_tool("update_leads", arguments))[TOKEN]
        done = await session.call_tool("update_leads", {**arguments, "arrays": "merge", TOKEN: token})
    assert not done.is_error, done.content
    assert writes(emulator) == [("PUT", f"/lead/{leads[1]}/")]
