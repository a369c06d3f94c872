"""The activities Close logs by itself for lead writes (§4.5): ``Created`` when a lead is created
through the API (``source`` ``api``), ``LeadStatusChange`` when a PUT changes its status; each
with its ``activity.*`` ``created`` event (§7.1), listed like any activity, gone with its lead."""

from __future__ import annotations

from typing import Any

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator
from tests.emulator._helpers import status


def _of_lead(emulator: Emulator, lead_id: str, type_name: str) -> list[dict[str, Any]]:
    return [a for a in emulator.org.activities.of_lead(lead_id) if a["_type"] == type_name]


async def test_posting_a_lead_logs_a_created_activity_with_source_api_and_its_event(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "contacts": [{"name": "Gob"}]})).json()
    owner = emulator.org.owner_id
    owner_name = emulator.org.user_name(owner)
    listed = (await close.get("/activity/created/", params={"lead_id": lead["id"]})).json()["data"]
    assert len(listed) == 1
    created = listed[0]
    assert created["id"].startswith("acti_")
    assert {key: created[key] for key in ("_type", "lead_id", "source", "import_id", "contact_id")} == {
        "_type": "Created",
        "lead_id": lead["id"],
        "source": "api",
        "import_id": None,
        "contact_id": None,
    }
    assert (created["user_id"], created["user_name"], created["users"]) == (owner, owner_name, [owner])
    assert (created["created_by"], created["updated_by"]) == (owner, owner)
    assert created["organization_id"] == emulator.org.id
    dates = {created[key] for key in ("date_created", "date_updated", "activity_at")}
    assert dates == {lead["date_created"]}
    assert (await close.get(f"/activity/created/{created['id']}/")).json() == created
    every = (await close.get("/activity/", params={"lead_id": lead["id"]})).json()["data"]
    assert [a["id"] for a in every] == [created["id"]]
    lead_event, contact_event, activity_event = emulator.org.events
    assert [e["object_type"] for e in (lead_event, contact_event)] == ["lead", "contact"]
    assert (activity_event["object_type"], activity_event["action"]) == ("activity.created", "created")
    assert (activity_event["object_id"], activity_event["lead_id"]) == (created["id"], lead["id"])
    assert activity_event["data"] == created
    assert activity_event["request_id"] == lead_event["request_id"]
    assert activity_event["meta"] == {"request_method": "POST", "request_path": "/api/v1/lead/"}


async def test_a_backdated_lead_gets_a_created_activity_dated_when_the_lead_was(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (
        await close.post("/lead/", json={"name": "Old", "date_created": "2020-03-04T05:06:07+00:00"})
    ).json()
    [created] = _of_lead(emulator, lead["id"], "Created")
    assert created["date_created"] == created["activity_at"] == "2020-03-04T05:06:07.000000+00:00"
    assert lead["date_updated"] == "2026-01-01T00:00:00.000000+00:00"  # the lead's own date_updated stays


async def test_leads_made_for_a_contact_or_an_opportunity_get_a_created_activity_too(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    contact = (await close.post("/contact/", json={"name": "Gob"})).json()
    opportunity = (await close.post("/opportunity/", json={"value": 100})).json()
    for lead_id in (contact["lead_id"], opportunity["lead_id"]):
        assert [a["source"] for a in _of_lead(emulator, lead_id, "Created")] == ["api"]
    assert len(emulator.org.activities) == 2


async def test_a_status_change_by_id_logs_a_lead_status_change_with_old_and_new_ids_and_labels(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    potential, qualified = status(emulator, "Potential"), status(emulator, "Qualified")
    lead = (await close.post("/lead/", json={"name": "Acme"})).json()
    assert lead["status_id"] == potential["id"]  # the org's first status
    clock.advance(60)
    moved = (await close.put(f"/lead/{lead['id']}/", json={"status_id": qualified["id"]})).json()
    listed = (await close.get("/activity/status_change/lead/", params={"lead_id": lead["id"]})).json()
    [change] = listed["data"]
    assert {key: change[key] for key in change if key.startswith(("old_", "new_"))} == {
        "old_status_id": potential["id"],
        "old_status_label": "Potential",
        "new_status_id": qualified["id"],
        "new_status_label": "Qualified",
    }
    assert (change["lead_id"], change["contact_id"], change["user_id"]) == (
        lead["id"],
        None,
        emulator.org.owner_id,
    )
    assert change["date_created"] == change["activity_at"] == moved["date_updated"]
    lead_update, activity_event = emulator.org.events[-2:]
    assert (lead_update["object_type"], lead_update["action"]) == ("lead", "updated")
    assert "status_id" in lead_update["changed_fields"]
    assert (activity_event["object_type"], activity_event["action"]) == (
        "activity.lead_status_change",
        "created",
    )
    assert (activity_event["object_id"], activity_event["data"]) == (change["id"], change)
    assert activity_event["meta"]["request_method"] == "PUT"
    every = (await close.get("/activity/", params={"lead_id": lead["id"]})).json()["data"]
    assert [a["_type"] for a in every] == ["LeadStatusChange", "Created"]  # newest first


async def test_a_status_change_by_label_logs_the_matched_status(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    bad_fit, customer = status(emulator, "Bad Fit"), status(emulator, "Customer")
    lead = (await close.post("/lead/", json={"name": "Acme", "status": "Bad Fit"})).json()
    await close.put(f"/lead/{lead['id']}/", json={"status": "customer"})  # labels match case-insensitively
    [change] = _of_lead(emulator, lead["id"], "LeadStatusChange")
    assert (change["old_status_id"], change["old_status_label"]) == (bad_fit["id"], "Bad Fit")
    assert (change["new_status_id"], change["new_status_label"]) == (customer["id"], "Customer")


async def test_no_status_change_is_logged_when_the_status_stays_or_on_create(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    qualified = status(emulator, "Qualified")
    lead = (await close.post("/lead/", json={"name": "Acme", "status_id": qualified["id"]})).json()
    assert [a["_type"] for a in emulator.org.activities.of_lead(lead["id"])] == ["Created"]
    await close.put(f"/lead/{lead['id']}/", json={"status_id": qualified["id"]})
    await close.put(f"/lead/{lead['id']}/", json={"status": "QUALIFIED"})
    await close.put(f"/lead/{lead['id']}/", json={"status_id": qualified["id"], "name": "Acme Inc"})
    refused = await close.put(f"/lead/{lead['id']}/", json={"status": "Nope"})
    assert refused.status_code == 400
    assert [a["_type"] for a in emulator.org.activities.of_lead(lead["id"])] == ["Created"]
    assert [(e["object_type"], e["action"]) for e in emulator.org.events] == [
        ("lead", "created"),
        ("activity.created", "created"),
        ("lead", "updated"),  # the name
    ]


async def test_deleting_a_lead_removes_its_created_and_status_change_activities(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme"})).json()
    other = (await close.post("/lead/", json={"name": "Other"})).json()
    await close.put(f"/lead/{lead['id']}/", json={"status": "Qualified"})
    doomed = {a["id"]: a["_type"] for a in emulator.org.activities.of_lead(lead["id"])}
    assert sorted(doomed.values()) == ["Created", "LeadStatusChange"]
    before = len(emulator.org.events)
    assert (await close.delete(f"/lead/{lead['id']}/")).json() == {}
    deleted = emulator.org.events[before:]
    assert [(e["object_type"], e["object_id"]) for e in deleted[:2]] == [
        (f"activity.{'created' if kind == 'Created' else 'lead_status_change'}", activity_id)
        for activity_id, kind in doomed.items()
    ]
    assert all(e["action"] == "deleted" and e["data"] is None for e in deleted[:2])
    assert [e["object_type"] for e in deleted[2:]] == ["lead"]
    for activity_id in doomed:
        assert activity_id not in emulator.org.activities.records
    remaining = (await close.get("/activity/created/")).json()["data"]
    assert [(a["lead_id"], a["_type"]) for a in remaining] == [(other["id"], "Created")]
    assert (await close.get("/activity/status_change/lead/")).json()["data"] == []
