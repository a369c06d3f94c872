"""Deleting a lead deletes every child, each with its own ``deleted`` event (§7.1)."""

from __future__ import annotations

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator


async def test_deleting_a_lead_deletes_contacts_opportunities_tasks_and_activities(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "contacts": [{"name": "Gob"}]})).json()
    keep = (await close.post("/lead/", json={"name": "Other"})).json()
    opp = (await close.post("/opportunity/", json={"lead_id": lead["id"]})).json()
    task = (await close.post("/task/", json={"lead_id": lead["id"], "text": "x"})).json()
    note = (await close.post("/activity/note/", json={"lead_id": lead["id"], "note": "x"})).json()
    kept = (await close.post("/activity/note/", json={"lead_id": keep["id"], "note": "y"})).json()
    # Each lead's Created activity (logged by its POST) goes with its lead and only with it.
    [created], [keep_created] = (
        [a["id"] for a in emulator.org.activities.of_lead(owner["id"]) if a["_type"] == "Created"]
        for owner in (lead, keep)
    )
    before = len(emulator.org.events)
    clock.advance(1)
    assert (await close.delete(f"/lead/{lead['id']}/")).json() == {}
    deleted = emulator.org.events[before:]
    assert {(e["object_type"], e["object_id"]) for e in deleted} == {
        ("activity.note", note["id"]),
        ("activity.created", created),
        ("task.lead", task["id"]),
        ("opportunity", opp["id"]),
        ("contact", lead["contact_ids"][0]),
        ("lead", lead["id"]),
    }
    assert len(deleted) == 6
    assert all(e["action"] == "deleted" and e["lead_id"] == lead["id"] for e in deleted)
    assert all(e["data"] is None and e["previous_data"]["id"] == e["object_id"] for e in deleted)
    assert deleted[-1]["object_type"] == "lead"
    assert set(emulator.org.activities.records) == {kept["id"], keep_created}
    assert len(emulator.org.opportunities) == len(emulator.org.tasks) == 0
    for path in (f"/opportunity/{opp['id']}/", f"/task/{task['id']}/", f"/activity/note/{note['id']}/"):
        assert (await close.get(path)).status_code == 404
    assert (await close.delete(f"/lead/{lead['id']}/")).status_code == 404


async def test_seeded_lead_cascade_reaches_every_seeded_child() -> None:
    emulator = Emulator(clock=FakeClock(), seed=8, leads=30)
    org = emulator.org
    lead_id = max(org.leads, key=lambda i: len(org.activities.of_lead(i)) + len(org.opportunities.of_lead(i)))
    children = (
        {("activity", a["id"]) for a in org.activities.of_lead(lead_id)}
        | {("opportunity", o["id"]) for o in org.opportunities.of_lead(lead_id)}
        | {("task", t["id"]) for t in org.tasks.of_lead(lead_id)}
    )
    contact_ids = list(org.leads[lead_id]["contact_ids"])
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as close:
        await close.delete(f"/lead/{lead_id}/")
    expected = {object_id for _, object_id in children} | set(contact_ids) | {lead_id}
    assert all(e["action"] == "deleted" for e in org.events)  # seeding records no events
    assert sorted(e["object_id"] for e in org.events) == sorted(expected)
    assert not any(r.get("lead_id") == lead_id for c in org.collections.values() for r in c)
