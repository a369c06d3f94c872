"""Lead and contact responses conform to the ``Lead`` and ``Contact`` schemas of Close's OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from closeflow.emulator import Emulator
from tests.emulator._openapi import check, load_schemas, openapi_path

SPEC = openapi_path()
pytestmark = pytest.mark.skipif(
    SPEC is None,
    reason="Close's OpenAPI document not found: set $CLOSE_OPENAPI or provide ../shared/close-openapi.yml",
)


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    assert SPEC is not None
    return load_schemas(SPEC, {"Lead", "Contact"})


def test_the_schema_reader_sees_required_keys_and_refs(schemas: dict[str, Any]) -> None:
    assert "status_id" in schemas["Lead"]["required"]
    assert schemas["Lead"]["properties"]["name"]["type"] == ["string", "null"]
    assert schemas["Contact"]["properties"]["emails"]["items"] == {
        "$ref": "#/components/schemas/ContactEmail"
    }
    assert schemas["ContactEmail"]["required"] == ["email", "is_unsubscribed", "type"]


def test_the_checker_catches_a_missing_key_and_a_wrong_type(schemas: dict[str, Any]) -> None:
    problems = check({"id": 5, "emails": [{"email": "a@b.co"}]}, schemas["Contact"], schemas)
    assert "$.id: 5 is not ['string']" in problems
    assert "$: missing required 'organization_id'" in problems
    assert "$.emails[0]: missing required 'is_unsubscribed'" in problems


async def test_created_and_listed_leads_match_the_lead_schema(
    close: httpx2.AsyncClient, emulator: Emulator, schemas: dict[str, Any]
) -> None:
    industry = next(f["id"] for f in emulator.org.fields_for("lead") if f["name"] == "Industry")
    created = (
        await close.post(
            "/lead/",
            json={
                "name": "Acme",
                f"custom.{industry}": "Retail",
                "addresses": [{"city": "Austin"}],
                "contacts": [
                    {"name": "Gob", "emails": [{"email": "g@acme.io"}], "phones": [{"phone": "4155550100"}]}
                ],
            },
        )
    ).json()
    listed = (await close.get("/lead/")).json()["data"]
    for lead in [created, *listed]:
        assert check(lead, schemas["Lead"], schemas) == []


async def test_seeded_leads_and_contacts_match_their_schemas(schemas: dict[str, Any]) -> None:
    from closeflow._clock import FakeClock

    emulator = Emulator(clock=FakeClock(), seed=4, leads=25)
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as close:
        leads = (await close.get("/lead/")).json()["data"]
        contacts = (await close.get("/contact/", params={"_limit": 200})).json()["data"]
    assert len(leads) == 25
    for lead in leads:
        assert check(lead, schemas["Lead"], schemas) == []
    for contact in contacts:
        assert check(contact, schemas["Contact"], schemas) == []
