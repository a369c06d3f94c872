"""``GET /event/`` (§7.1): cursor paging, filters and their combinations, consolidation, retention."""

from __future__ import annotations

from typing import Any

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator, EmulatorConfig


async def _walk(close: httpx2.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    query = dict(params)
    following = {k: v for k, v in params.items() if not k.startswith("date_updated")}
    while True:
        body = (await close.get("/event/", params=query)).json()
        assert "has_more" not in body
        events += body["data"]
        if not body["cursor_next"]:
            return events
        query = {**following, "_cursor": body["cursor_next"]}


async def _leads(close: httpx2.AsyncClient, clock: FakeClock, count: int) -> list[dict[str, Any]]:
    made = []
    for index in range(count):
        made.append((await close.post("/lead/", json={"name": f"Lead {index}"})).json())
        clock.advance(1)
    return made


async def test_a_cursor_walk_returns_every_event_once_newest_first(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    await _leads(close, clock, 120)
    events = await _walk(close, _limit=7)
    assert [e["id"] for e in events] == [e["id"] for e in reversed(emulator.org.events)]
    assert len({e["id"] for e in events}) == 240  # per lead: lead created, its Created activity created
    first_page = (await close.get("/event/")).json()
    assert len(first_page["data"]) == 50  # default and cap
    assert len((await close.get("/event/", params={"_limit": 500})).json()["data"]) == 50
    assert first_page["cursor_previous"] is None


async def test_cursor_previous_pages_back_to_newer_events(
    close: httpx2.AsyncClient, clock: FakeClock
) -> None:
    await _leads(close, clock, 10)
    first = (await close.get("/event/", params={"_limit": 4})).json()
    second = (await close.get("/event/", params={"_limit": 4, "_cursor": first["cursor_next"]})).json()
    back = (await close.get("/event/", params={"_limit": 4, "_cursor": second["cursor_previous"]})).json()
    assert [e["id"] for e in back["data"]] == [e["id"] for e in first["data"]]
    assert back["cursor_previous"] is None


async def test_the_cursor_keeps_the_date_updated_bounds_of_the_first_request(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    await _leads(close, clock, 30)
    middle = emulator.org.events[10]["date_updated"]  # lead 5's: two events per lead
    events = await _walk(close, _limit=4, date_updated__gte=middle)
    assert len(events) == 50  # leads 5–29, each a lead and an activity.created event
    assert all(e["date_updated"] >= middle for e in events)


async def test_filters_select_objects_actions_and_leads(close: httpx2.AsyncClient, clock: FakeClock) -> None:
    lead, other = await _leads(close, clock, 2)
    await close.post("/activity/note/", json={"lead_id": lead["id"], "note": "x"})
    await close.delete(f"/lead/{other['id']}/")

    async def kinds(**params: Any) -> list[tuple[str, str]]:
        return [(e["object_type"], e["action"]) for e in await _walk(close, **params)]

    assert await kinds(lead_id=lead["id"]) == [
        ("activity.note", "created"),
        ("activity.created", "created"),  # recorded after the lead's, at the same instant
        ("lead", "created"),
    ]
    assert await kinds(object_type="lead", action="deleted") == [("lead", "deleted")]
    assert await kinds(object_type="activity.note", object_id="acti_x") == []
    assert await kinds(lead_id=lead["id"], object_type="activity.note") == [("activity.note", "created")]


async def test_unsupported_filter_combinations_are_refused(close: httpx2.AsyncClient) -> None:
    for params in ({"object_type": "lead"}, {"action": "created"}, {"lead_id": "l", "object_id": "x"}):
        response = await close.get("/event/", params=params)
        assert response.status_code == 400, params
        assert "Unsupported filter combination" in response.json()["field-errors"]["__all__"]
    assert (await close.get("/event/", params={"_skip": 50})).status_code == 400
    assert (await close.get("/event/", params={"_cursor": "garbage"})).status_code == 400
    for params in ({"request_id": "req_x"}, {"user_id": "u", "object_type": "lead", "action": "created"}):
        assert (await close.get("/event/", params=params)).status_code == 200


async def test_rapid_edits_by_one_source_consolidate_into_one_event(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "description": "v1"})).json()
    clock.advance(5)
    await close.put(f"/lead/{lead['id']}/", json={"description": "v2"})
    clock.advance(20)
    await close.put(f"/lead/{lead['id']}/", json={"name": "Acme Inc", "description": "v3"})
    updates = [e for e in emulator.org.events if e["action"] == "updated"]
    assert len(updates) == 1
    merged = updates[0]
    assert merged["changed_fields"] == ["date_updated", "description", "display_name", "name"]
    assert merged["previous_data"]["description"] == "v1"  # the first previous value survives
    assert merged["previous_data"]["name"] == "Acme"
    assert merged["data"]["description"] == "v3"
    assert merged["date_created"] == "2026-01-01T00:00:05.000000"
    assert merged["date_updated"] == "2026-01-01T00:00:25.000000"
    newest = (await close.get("/event/", params={"_limit": 1})).json()["data"][0]
    assert newest["id"] == merged["id"]
    clock.advance(61)
    await close.put(f"/lead/{lead['id']}/", json={"description": "v4"})
    assert len([e for e in emulator.org.events if e["action"] == "updated"]) == 2


async def test_consolidation_can_be_switched_off() -> None:
    emulator = Emulator(EmulatorConfig(event_consolidation_window=0), clock=FakeClock(), seed=1)
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as close:
        lead = (await close.post("/lead/", json={"name": "A"})).json()
        await close.put(f"/lead/{lead['id']}/", json={"name": "B"})
        await close.put(f"/lead/{lead['id']}/", json={"name": "C"})
    assert [(e["object_type"], e["action"]) for e in emulator.org.events] == [
        ("lead", "created"),
        ("activity.created", "created"),
        ("lead", "updated"),
        ("lead", "updated"),
    ]


async def test_events_older_than_retention_are_not_returned(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    old = (await close.post("/lead/", json={"name": "Old"})).json()
    [old_event] = [e for e in emulator.org.events if e["object_type"] == "lead"]
    clock.advance(29 * 86_400)
    new = (await close.post("/lead/", json={"name": "New"})).json()
    assert len(await _walk(close)) == 4  # per lead: lead created, its Created activity created
    clock.advance(2 * 86_400)
    remaining = await _walk(close)
    assert [(e["object_type"], e["lead_id"]) for e in remaining] == [
        ("activity.created", new["id"]),
        ("lead", new["id"]),
    ]
    assert (await close.get(f"/event/{old_event['id']}/")).status_code == 404
    assert old["id"] in emulator.org.leads


async def test_get_one_event(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    await close.post("/lead/", json={"name": "Acme"})
    event = emulator.org.events[0]
    assert (await close.get(f"/event/{event['id']}/")).json() == event
    assert (await close.get("/event/ev_missing/")).status_code == 404
