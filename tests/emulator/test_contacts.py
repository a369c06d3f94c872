"""Contacts (§4.2): CRUD, listing by lead, whole-array replacement, a lead made when none is given."""

from __future__ import annotations

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator


async def _lead(close: httpx2.AsyncClient) -> dict:  # type: ignore[type-arg]
    return (await close.post("/lead/", json={"name": "Acme"})).json()  # type: ignore[no-any-return]


async def test_contact_created_without_lead_id_gets_a_lead_named_after_it(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    contact = (await close.post("/contact/", json={"name": "Lucille Bluth"})).json()
    lead = (await close.get(f"/lead/{contact['lead_id']}/")).json()
    assert lead["name"] == "Lucille Bluth"
    assert lead["contact_ids"] == [contact["id"]]
    assert len(emulator.org.leads) == 1


async def test_contact_with_unknown_lead_id_is_a_field_error(close: httpx2.AsyncClient) -> None:
    response = await close.post("/contact/", json={"lead_id": "lead_nope", "name": "X"})
    assert response.status_code == 400
    assert response.json() == {"errors": [], "field-errors": {"lead_id": "Lead does not exist."}}


async def test_put_replaces_emails_instead_of_merging_them(close: httpx2.AsyncClient) -> None:
    lead = await _lead(close)
    contact = (
        await close.post(
            "/contact/",
            json={"lead_id": lead["id"], "emails": [{"email": "a@example.com"}, {"email": "b@example.com"}]},
        )
    ).json()
    updated = (
        await close.put(f"/contact/{contact['id']}/", json={"emails": [{"email": "c@example.com"}]})
    ).json()
    assert [e["email"] for e in updated["emails"]] == ["c@example.com"]
    assert updated["emails"][0]["is_unsubscribed"] is False


async def test_editing_a_contact_bumps_its_leads_date_updated(
    close: httpx2.AsyncClient, clock: FakeClock
) -> None:
    lead = await _lead(close)
    contact = (await close.post("/contact/", json={"lead_id": lead["id"], "name": "Gob"})).json()
    clock.advance(30)
    await close.put(f"/contact/{contact['id']}/", json={"title": "Magician"})
    after = (await close.get(f"/lead/{lead['id']}/")).json()
    assert after["date_updated"] == "2026-01-01T00:00:30.000000+00:00"


async def test_list_contacts_filters_by_lead_id(close: httpx2.AsyncClient) -> None:
    first, second = await _lead(close), await _lead(close)
    mine = [
        (await close.post("/contact/", json={"lead_id": first["id"], "name": n})).json()["id"] for n in "AB"
    ]
    await close.post("/contact/", json={"lead_id": second["id"], "name": "C"})
    listed = (await close.get("/contact/", params={"lead_id": first["id"]})).json()
    assert [c["id"] for c in listed["data"]] == mine
    assert listed["has_more"] is False
    assert len((await close.get("/contact/")).json()["data"]) == 3


async def test_delete_contact_removes_it_from_its_lead(close: httpx2.AsyncClient) -> None:
    lead = await _lead(close)
    contact = (await close.post("/contact/", json={"lead_id": lead["id"], "name": "Gob"})).json()
    assert (await close.delete(f"/contact/{contact['id']}/")).json() == {}
    assert (await close.get(f"/lead/{lead['id']}/")).json()["contact_ids"] == []
    assert (await close.get(f"/contact/{contact['id']}/")).status_code == 404


async def test_display_name_falls_back_to_first_email(close: httpx2.AsyncClient) -> None:
    lead = await _lead(close)
    contact = (
        await close.post("/contact/", json={"lead_id": lead["id"], "emails": [{"email": "x@y.io"}]})
    ).json()
    assert contact["display_name"] == "x@y.io"
