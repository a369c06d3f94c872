"""Write edge cases that once left the emulator in a state Close could never be in."""

from __future__ import annotations

import httpx2
import pytest

from closeflow.emulator import Emulator
from tests.conftest import Served


async def _number_field(close: httpx2.AsyncClient) -> str:
    fields = (await close.get("/custom_field/lead/")).json()["data"]
    return next(f["id"] for f in fields if f["type"] == "number")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
async def test_non_finite_numbers_are_refused_and_the_lead_stays_readable(
    close: httpx2.AsyncClient, value: str
) -> None:
    field_id = await _number_field(close)
    lead = (await close.post("/lead/", json={"name": "Finite"})).json()
    refused = await close.put(f"/lead/{lead['id']}/", json={f"custom.{field_id}": value})
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": [],
        "field-errors": {f"custom.{field_id}": "Value must be a finite number."},
    }
    assert (await close.get(f"/lead/{lead['id']}/")).status_code == 200


async def test_deleting_a_leads_only_contact_clears_the_display_name_it_lent(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    lead = (await close.post("/lead/", json={"contacts": [{"name": "Gob Bluth"}]})).json()
    assert lead["display_name"] == "Gob Bluth"
    assert (await close.delete(f"/contact/{lead['contacts'][0]['id']}/")).status_code == 200
    after = (await close.get(f"/lead/{lead['id']}/")).json()
    assert after["contacts"] == [] and after["display_name"] != "Gob Bluth"


def test_an_emulator_bug_still_answers_json_in_closes_5xx_shape_on_a_port(
    served_emulator: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("a bug inside a handler")

    monkeypatch.setattr(served_emulator.emulator.org, "user_name", broken)
    key = served_emulator.emulator.api_key
    response = httpx2.post(
        f"{served_emulator.base_url}/lead/", json={"name": "x"}, auth=(key, ""), timeout=10
    )
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "Internal server error"}}
