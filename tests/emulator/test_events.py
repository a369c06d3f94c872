"""Every mutation leaves a Close-shaped event in the org's log (§7.1)."""

from __future__ import annotations

import re

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator
from closeflow.emulator._ids import key_id


async def test_create_records_lead_and_contact_created_events(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "contacts": [{"name": "Gob"}]})).json()
    lead_event, contact_event, created_event = emulator.org.events
    assert (lead_event["object_type"], lead_event["action"], lead_event["object_id"]) == (
        "lead",
        "created",
        lead["id"],
    )
    assert (contact_event["object_type"], contact_event["lead_id"]) == ("contact", lead["id"])
    assert re.fullmatch(r"ev_[0-9A-Za-z]{22}", lead_event["id"])
    assert re.fullmatch(r"req_[0-9A-Za-z]{22}", lead_event["request_id"])
    assert (created_event["object_type"], created_event["lead_id"]) == ("activity.created", lead["id"])
    assert lead_event["request_id"] == contact_event["request_id"] == created_event["request_id"]
    assert lead_event["date_created"] == "2026-01-01T00:00:00.000000"  # naive, unlike objects
    assert lead_event["organization_id"] == emulator.org.id
    assert lead_event["user_id"] == emulator.org.owner_id
    assert lead_event["api_key_id"] == key_id(emulator.api_key)
    assert lead_event["oauth_client_id"] is None
    assert lead_event["data"]["name"] == "Acme"
    assert lead_event["previous_data"] is None
    assert lead_event["meta"] == {"request_method": "POST", "request_path": "/api/v1/lead/"}


async def test_update_event_lists_changed_fields_and_only_their_previous_values(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "description": "old"})).json()
    clock.advance(5)
    await close.put(f"/lead/{lead['id']}/", json={"description": "new", "name": "Acme"})
    update = emulator.org.events[-1]
    assert update["action"] == "updated"
    assert update["changed_fields"] == ["date_updated", "description"]
    assert update["previous_data"] == {"date_updated": lead["date_updated"], "description": "old"}
    assert update["data"]["description"] == "new"
    assert update["meta"]["request_method"] == "PUT"


async def test_put_that_changes_nothing_records_no_event(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme"})).json()
    await close.put(f"/lead/{lead['id']}/", json={"name": "Acme"})
    assert [(e["object_type"], e["action"]) for e in emulator.org.events] == [
        ("lead", "created"),
        ("activity.created", "created"),
    ]


async def test_delete_records_child_deletes_then_the_lead_with_whole_previous_objects(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "contacts": [{"name": "Gob"}]})).json()
    await close.delete(f"/lead/{lead['id']}/")
    contact_deleted, lead_deleted = emulator.org.events[-2:]
    assert (contact_deleted["object_type"], contact_deleted["action"]) == ("contact", "deleted")
    assert (lead_deleted["object_type"], lead_deleted["action"]) == ("lead", "deleted")
    assert lead_deleted["data"] is None
    assert lead_deleted["previous_data"]["name"] == "Acme"
    assert contact_deleted["previous_data"]["name"] == "Gob"


async def test_adding_a_contact_is_a_lead_membership_update(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme"})).json()
    contact = (await close.post("/contact/", json={"lead_id": lead["id"], "name": "Gob"})).json()
    lead_update, contact_created = emulator.org.events[-2:]
    assert lead_update["object_type"] == "lead"
    assert "contact_ids" in lead_update["changed_fields"]
    assert lead_update["previous_data"]["contact_ids"] == []
    assert lead_update["data"]["contact_ids"] == [contact["id"]]
    assert contact_created["action"] == "created"


async def test_editing_a_contact_records_no_lead_event(
    close: httpx2.AsyncClient, emulator: Emulator, clock: FakeClock
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "contacts": [{"name": "Gob"}]})).json()
    before = len(emulator.org.events)
    clock.advance(1)
    await close.put(f"/contact/{lead['contact_ids'][0]}/", json={"title": "CEO"})
    new = emulator.org.events[before:]
    assert [(e["object_type"], e["action"], e["changed_fields"]) for e in new] == [
        ("contact", "updated", ["date_updated", "title"])
    ]


async def test_custom_field_changes_appear_as_custom_keys(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    industry = next(f["id"] for f in emulator.org.fields_for("lead") if f["name"] == "Industry")
    lead = (await close.post("/lead/", json={"name": "Acme"})).json()
    await close.put(f"/lead/{lead['id']}/", json={f"custom.{industry}": "Retail"})
    assert f"custom.{industry}" in emulator.org.events[-1]["changed_fields"]
    assert emulator.org.events[-1]["previous_data"][f"custom.{industry}"] is None


async def test_later_writes_do_not_rewrite_earlier_event_data(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"name": "Acme", "addresses": [{"city": "Austin"}]})).json()
    await close.put(f"/lead/{lead['id']}/", json={"addresses": [{"city": "Berlin"}]})
    assert emulator.org.events[0]["data"]["addresses"][0]["city"] == "Austin"
