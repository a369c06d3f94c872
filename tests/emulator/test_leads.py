"""Lead CRUD as Close does it (§4.1): nested create, partial PUT replacing arrays, cascade delete."""

from __future__ import annotations

import re

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator
from tests.emulator._helpers import status

BLUTH = {
    "name": "Bluth Company",
    "url": "http://thebluthcompany.tumblr.com/",
    "description": "Best. Show. Ever.",
    "contacts": [
        {
            "name": "Gob",
            "title": "Sr. Vice President",
            "emails": [{"email": "gob@example.com", "type": "office"}],
            "phones": [{"phone": "8004445555", "type": "office"}],
        }
    ],
    "addresses": [
        {
            "label": "business",
            "address_1": "747 Howard St",
            "city": "San Francisco",
            "state": "CA",
            "country": "US",
        }
    ],
}


async def test_create_lead_with_nested_contact_returns_close_shaped_lead(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    response = await close.post("/lead/", json=BLUTH)
    assert response.status_code == 200
    lead = response.json()
    assert re.fullmatch(r"lead_[0-9A-Za-z]{43}", lead["id"])
    assert lead["display_name"] == "Bluth Company"
    assert lead["status_label"] == "Potential"  # the org's first status is the default
    assert lead["html_url"] == f"https://app.close.com/lead/{lead['id']}/"
    assert lead["organization_id"] == emulator.org.id
    assert lead["created_by"] == lead["updated_by"] == emulator.org.owner_id
    assert lead["date_created"] == "2026-01-01T00:00:00.000000+00:00"
    [contact] = lead["contacts"]
    assert lead["contact_ids"] == [contact["id"]]
    assert re.fullmatch(r"cont_[0-9A-Za-z]{43}", contact["id"])
    assert contact["lead_id"] == lead["id"]
    assert contact["emails"] == [{"email": "gob@example.com", "type": "office", "is_unsubscribed": False}]
    assert lead["addresses"][0] == {
        "label": "business",
        "address_1": "747 Howard St",
        "address_2": None,
        "city": "San Francisco",
        "state": "CA",
        "zipcode": None,
        "country": "US",
    }


async def test_phones_are_normalised_to_e164_with_formatting_and_country(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    assert lead["contacts"][0]["phones"] == [
        {"phone": "+18004445555", "phone_formatted": "+1 800-444-5555", "country": "US", "type": "office"}
    ]
    contact = (
        await close.post("/contact/", json={"lead_id": lead["id"], "phones": [{"phone": "+44 20 7946 0958"}]})
    ).json()
    assert contact["phones"][0]["phone"] == "+442079460958"
    assert contact["phones"][0]["country"] == "GB"


async def test_get_lead_returns_what_create_returned(close: httpx2.AsyncClient) -> None:
    created = (await close.post("/lead/", json=BLUTH)).json()
    fetched = (await close.get(f"/lead/{created['id']}/")).json()
    assert fetched == created


async def test_status_can_be_set_by_label_or_id(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    qualified = status(emulator, "Qualified")
    by_label = (await close.post("/lead/", json={"name": "A", "status": "qualified"})).json()
    by_id = (await close.post("/lead/", json={"name": "B", "status_id": qualified["id"]})).json()
    assert by_label["status_id"] == by_id["status_id"] == qualified["id"]
    assert by_label["status_label"] == "Qualified"


async def test_put_is_partial_and_leaves_unsent_fields_alone(
    close: httpx2.AsyncClient, clock: FakeClock
) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    clock.advance(60)
    updated = (await close.put(f"/lead/{lead['id']}/", json={"description": "Changed"})).json()
    assert updated["description"] == "Changed"
    assert updated["name"] == "Bluth Company"
    assert updated["url"] == BLUTH["url"]
    assert updated["date_updated"] == "2026-01-01T00:01:00.000000+00:00"
    assert updated["date_created"] == lead["date_created"]


async def test_put_replaces_addresses_instead_of_merging_them(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    updated = (await close.put(f"/lead/{lead['id']}/", json={"addresses": [{"city": "Austin"}]})).json()
    assert [a["city"] for a in updated["addresses"]] == ["Austin"]


async def test_put_ignores_nested_contacts(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    updated = (await close.put(f"/lead/{lead['id']}/", json={"contacts": [{"name": "Someone else"}]})).json()
    assert [c["name"] for c in updated["contacts"]] == ["Gob"]


async def test_delete_lead_answers_empty_object_and_deletes_its_contacts(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    contact_id = lead["contact_ids"][0]
    response = await close.delete(f"/lead/{lead['id']}/")
    assert (response.status_code, response.json()) == (200, {})
    assert (await close.get(f"/lead/{lead['id']}/")).status_code == 404
    assert (await close.get(f"/contact/{contact_id}/")).json() == {"error": "Not found"}
    assert emulator.org.contacts == {}


async def test_list_leads_pages_in_creation_order_with_has_more(
    close: httpx2.AsyncClient, clock: FakeClock
) -> None:
    ids = []
    for index in range(5):
        ids.append((await close.post("/lead/", json={"name": f"L{index}"})).json()["id"])
        clock.advance(1)
    first = (await close.get("/lead/", params={"_limit": 2})).json()
    last = (await close.get("/lead/", params={"_limit": 2, "_skip": 4})).json()
    assert [lead["id"] for lead in first["data"]] == ids[:2]
    assert first["has_more"] is True
    assert [lead["id"] for lead in last["data"]] == ids[4:]
    assert last["has_more"] is False
    assert first["total_results"] == 5


async def test_fields_parameter_limits_returned_keys(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    listed = (await close.get("/lead/", params={"_fields": "id,name"})).json()
    one = (await close.get(f"/lead/{lead['id']}/", params={"_fields": "id,display_name"})).json()
    assert listed["data"] == [{"id": lead["id"], "name": "Bluth Company"}]
    assert one == {"id": lead["id"], "display_name": "Bluth Company"}


async def test_unknown_fields_on_create_are_ignored(close: httpx2.AsyncClient) -> None:
    response = await close.post("/lead/", json={"name": "X", "favourite_colour": "teal"})
    assert response.status_code == 200
    assert "favourite_colour" not in response.json()


async def test_method_override_turns_a_post_into_a_filtered_get(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json=BLUTH)).json()
    await close.post("/lead/", json={"name": "Other"})
    response = await close.post(
        "/contact/", json={"_params": {"lead_id": lead["id"]}}, headers={"x-http-method-override": "GET"}
    )
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["data"]] == lead["contact_ids"]
