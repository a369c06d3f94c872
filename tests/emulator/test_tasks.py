"""Tasks (§4.4): type defaults, filters, ordering, update rules and completion."""

from __future__ import annotations

from typing import Any

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator


async def _lead(close: httpx2.AsyncClient) -> dict[str, Any]:
    return (await close.post("/lead/", json={"name": "Acme"})).json()


def _system_task(emulator: Emulator, lead_id: str, kind: str) -> dict[str, Any]:
    # Close makes these itself (missed calls, incoming email …); the API cannot create them.
    task = {**emulator.org.tasks.records[next(iter(emulator.org.tasks.records))]}
    task.update(id=emulator.org.ids.new("noti_"), _type=kind, lead_id=lead_id)
    emulator.org.tasks.add(task)
    return task


async def test_lead_tasks_get_task_ids_and_other_types_cannot_be_created(close: httpx2.AsyncClient) -> None:
    lead = await _lead(close)
    task = (
        await close.post("/task/", json={"lead_id": lead["id"], "text": "Call Steli", "date": "2026-01-05"})
    ).json()
    assert task["id"].startswith("task_")
    assert (task["_type"], task["date"], task["due_date"], task["view"]) == (
        "lead",
        "2026-01-05",
        "2026-01-05",
        "future",
    )
    call = (await close.post("/task/", json={"lead_id": lead["id"], "_type": "outgoing_call"})).json()
    assert call["id"].startswith("noti_")
    refused = await close.post("/task/", json={"lead_id": lead["id"], "_type": "missed_call"})
    assert refused.status_code == 400
    assert "_type" in refused.json()["field-errors"]


async def test_list_defaults_to_lead_tasks_and_all_or_type_in_widen_it(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = await _lead(close)
    mine = (await close.post("/task/", json={"lead_id": lead["id"], "text": "Follow up"})).json()
    missed = _system_task(emulator, lead["id"], "missed_call")
    voicemail = _system_task(emulator, lead["id"], "voicemail")

    async def ids(**params: Any) -> set[str]:
        return {t["id"] for t in (await close.get("/task/", params=params)).json()["data"]}

    assert await ids() == {mine["id"]}
    assert await ids(_type="all") == {mine["id"], missed["id"], voicemail["id"]}
    assert await ids(_type__in="missed_call,voicemail") == {missed["id"], voicemail["id"]}
    assert await ids(_type="all", id__in=f"{mine['id']},{voicemail['id']}") == {mine["id"], voicemail["id"]}
    assert (await close.get("/task/", params={"_type": "chores"})).status_code == 400


async def test_filters_and_ordering(close: httpx2.AsyncClient, clock: FakeClock) -> None:
    lead = await _lead(close)
    late = (
        await close.post("/task/", json={"lead_id": lead["id"], "text": "b", "date": "2026-03-01"})
    ).json()
    clock.advance(60)
    early = (
        await close.post("/task/", json={"lead_id": lead["id"], "text": "a", "date": "2026-02-01"})
    ).json()
    clock.advance(60)
    await close.put(f"/task/{late['id']}/", json={"is_complete": True})

    async def ids(**params: Any) -> list[str]:
        return [t["id"] for t in (await close.get("/task/", params=params)).json()["data"]]

    assert await ids() == [late["id"], early["id"]]  # date_created ascending
    assert await ids(_order_by="date") == [early["id"], late["id"]]
    assert await ids(_order_by="-date_created") == [early["id"], late["id"]]
    assert await ids(is_complete="true") == [late["id"]]
    assert await ids(is_complete="false", lead_id=lead["id"]) == [early["id"]]
    assert await ids(date_updated__gt=early["date_updated"]) == [late["id"]]
    assert await ids(date_created__lte=late["date_created"]) == [late["id"]]
    refused = await close.get("/task/", params={"_order_by": "date_updated"})
    assert refused.status_code == 400
    assert "date_created" in refused.json()["field-errors"]["_order_by"]


async def test_completing_a_lead_task_creates_a_task_completed_activity(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = await _lead(close)
    task = (await close.post("/task/", json={"lead_id": lead["id"], "text": "Send proposal"})).json()
    done = (await close.put(f"/task/{task['id']}/", json={"is_complete": True})).json()
    assert (done["is_complete"], done["view"]) == (True, "archive")
    activities = (await close.get("/activity/task_completed/", params={"lead_id": lead["id"]})).json()["data"]
    assert [(a["_type"], a["task_id"], a["task_text"]) for a in activities] == [
        ("TaskCompleted", task["id"], "Send proposal")
    ]
    again = await close.put(f"/task/{task['id']}/", json={"is_complete": True})
    assert again.status_code == 200
    kinds = sorted(a["_type"] for a in emulator.org.activities.of_lead(lead["id"]))
    assert kinds == ["Created", "TaskCompleted"]  # the lead's own and one completion, not two


async def test_text_is_editable_on_lead_tasks_only(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    lead = await _lead(close)
    await close.post("/task/", json={"lead_id": lead["id"], "text": "x"})
    missed = _system_task(emulator, lead["id"], "missed_call")
    refused = await close.put(f"/task/{missed['id']}/", json={"text": "nope"})
    assert refused.status_code == 400
    assert refused.json()["field-errors"] == {"text": "Only lead tasks have editable text."}
    moved = await close.put(f"/task/{missed['id']}/", json={"date": "2026-02-02"})
    assert moved.json()["date"] == "2026-02-02"


async def test_task_events_use_the_task_type_as_object_type(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = await _lead(close)
    task = (await close.post("/task/", json={"lead_id": lead["id"], "text": "x"})).json()
    await close.delete(f"/task/{task['id']}/")
    assert [(e["object_type"], e["action"]) for e in emulator.org.events[-2:]] == [
        ("task.lead", "created"),
        ("task.lead", "deleted"),
    ]
