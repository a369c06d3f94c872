"""Custom-field values on leads and contacts (§5): set, unset, add/remove, legacy name forms, type checks."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from closeflow.emulator import Emulator
from tests.emulator._helpers import field_id


async def _lead(close: httpx2.AsyncClient, **payload: Any) -> dict[str, Any]:
    response = await close.post("/lead/", json={"name": "Acme", **payload})
    assert response.status_code == 200, response.json()
    return response.json()  # type: ignore[no-any-return]


async def test_custom_values_are_flat_keys_and_mirrored_in_the_legacy_dict(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    industry = field_id(emulator, "lead", "Industry")
    lead = await _lead(close, **{f"custom.{industry}": "Retail"})
    assert lead[f"custom.{industry}"] == "Retail"
    assert lead["custom"] == {"Industry": "Retail"}


async def test_null_unsets_a_custom_value(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    industry = field_id(emulator, "lead", "Industry")
    lead = await _lead(close, **{f"custom.{industry}": "Retail"})
    updated = (await close.put(f"/lead/{lead['id']}/", json={f"custom.{industry}": None})).json()
    assert f"custom.{industry}" not in updated
    assert updated["custom"] == {}


async def test_add_and_remove_change_one_element_of_a_multi_value_field(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    products = field_id(emulator, "lead", "Products")
    lead = await _lead(close, **{f"custom.{products}": ["CRM"]})
    added = (await close.put(f"/lead/{lead['id']}/", json={f"custom.{products}.add": "Dialer"})).json()
    assert added[f"custom.{products}"] == ["CRM", "Dialer"]
    removed = (await close.put(f"/lead/{lead['id']}/", json={f"custom.{products}.remove": "CRM"})).json()
    assert removed[f"custom.{products}"] == ["Dialer"]


async def test_put_replaces_a_multi_value_field_wholesale(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    products = field_id(emulator, "lead", "Products")
    lead = await _lead(close, **{f"custom.{products}": ["CRM", "Dialer"]})
    updated = (await close.put(f"/lead/{lead['id']}/", json={f"custom.{products}": ["API"]})).json()
    assert updated[f"custom.{products}"] == ["API"]


async def test_deprecated_custom_dict_by_name_is_accepted_on_write(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    employees = field_id(emulator, "lead", "Employees")
    lead = await _lead(close, custom={"Employees": "250"})
    assert lead[f"custom.{employees}"] == 250


async def test_user_field_accepts_an_exact_name_and_answers_with_the_id(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    owner = emulator.org.users[emulator.org.owner_id]
    user_field = field_id(emulator, "lead", "Owner")
    full_name = f"{owner['first_name']} {owner['last_name']}"
    lead = await _lead(close, **{f"custom.{user_field}": full_name})
    assert lead[f"custom.{user_field}"] == owner["id"]


async def test_contact_field_accepts_only_contacts_of_the_same_lead(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    champion = field_id(emulator, "lead", "Champion")
    lead = await _lead(close, contacts=[{"name": "Gob"}])
    other = await _lead(close, contacts=[{"name": "Buster"}])
    ok = await close.put(f"/lead/{lead['id']}/", json={f"custom.{champion}": lead["contact_ids"][0]})
    bad = await close.put(f"/lead/{lead['id']}/", json={f"custom.{champion}": other["contact_ids"][0]})
    assert ok.status_code == 200
    assert bad.status_code == 400
    assert list(bad.json()["field-errors"]) == [f"custom.{champion}"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Employees", "many", "Value must be a number."),
        ("Contract Start", "next tuesday", "Invalid date. Use the YYYY-MM-DD format."),
        ("Last Demo", "yesterday", "Invalid datetime. Use an ISO 8601 date and time."),
        ("Source", "Carrier pigeon", "'Carrier pigeon' is not one of the available choices."),
        ("Owner", "Nobody Atall", "'Nobody Atall' is not a user of this organization."),
        ("Industry", ["a", "b"], "This field does not accept multiple values."),
    ],
)
async def test_invalid_custom_values_are_close_shaped_field_errors(
    close: httpx2.AsyncClient, emulator: Emulator, name: str, value: Any, message: str
) -> None:
    key = f"custom.{field_id(emulator, 'lead', name)}"
    response = await close.post("/lead/", json={"name": "Acme", key: value})
    assert response.status_code == 400
    assert response.json() == {"errors": [], "field-errors": {key: message}}
    assert emulator.org.leads == {}  # nothing half-written


async def test_add_on_a_single_value_field_is_refused(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    key = f"custom.{field_id(emulator, 'lead', 'Source')}"
    lead = await _lead(close)
    response = await close.put(f"/lead/{lead['id']}/", json={f"{key}.add": "Inbound"})
    assert response.json() == {
        "errors": [],
        "field-errors": {f"{key}.add": "This field does not accept multiple values."},
    }


async def test_valid_values_are_stored_in_canonical_form(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    values = {
        "Employees": 12.5,
        "Contract Start": "2024-02-29",
        "Last Demo": "2024-02-29T10:00:00Z",
        "Source": "Referral",
    }
    lead = await _lead(close, **{f"custom.{field_id(emulator, 'lead', n)}": v for n, v in values.items()})
    assert lead["custom"] == {**values, "Last Demo": "2024-02-29T10:00:00+00:00"}


async def test_shared_field_is_writable_on_contacts(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    region = field_id(emulator, "contact", "Region")
    lead = await _lead(close)
    contact = (await close.post("/contact/", json={"lead_id": lead["id"], f"custom.{region}": "EMEA"})).json()
    assert contact[f"custom.{region}"] == "EMEA"
