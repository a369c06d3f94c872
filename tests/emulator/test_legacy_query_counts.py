"""The counting, slicing and related-activity forms of the legacy lead query (§3.4), as Close's own
example scripts send them (`has:calls`, `times_communicated:0 notes:0`, `call( date >= … )`,
`slice:N/M`)."""

from __future__ import annotations

import httpx2
import pytest

from closeflow.emulator import Emulator


@pytest.fixture
def seeded() -> Emulator:
    return Emulator(seed=4, leads=60)


async def _ids(emu: Emulator, query: str) -> set[str]:
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
    ) as close:
        response = await close.get("/lead/", params={"query": query, "_limit": 200})
    assert response.status_code == 200, response.json()
    return {lead["id"] for lead in response.json()["data"]}


def _types(emu: Emulator, lead_id: str) -> list[str]:
    return [a["_type"] for a in emu.org.children(lead_id, "activity")]


async def test_has_calls_and_notes_zero_match_a_python_count(seeded: Emulator) -> None:
    with_calls = {lead["id"] for lead in seeded.org.objects("lead") if "Call" in _types(seeded, lead["id"])}
    assert with_calls and await _ids(seeded, "has:calls") == with_calls
    no_notes = {lead["id"] for lead in seeded.org.objects("lead") if "Note" not in _types(seeded, lead["id"])}
    assert await _ids(seeded, "notes:0") == no_notes


async def test_times_communicated_counts_calls_emails_and_sms(seeded: Emulator) -> None:
    def communicated(lead_id: str) -> int:
        return sum(1 for t in _types(seeded, lead_id) if t in ("Call", "Email", "SMS"))

    truth = {lead["id"] for lead in seeded.org.objects("lead") if communicated(lead["id"]) >= 3}
    assert await _ids(seeded, "times_communicated>=3") == truth


async def test_has_phone_numbers_looks_at_the_leads_contacts(seeded: Emulator) -> None:
    truth = {
        lead["id"]
        for lead in seeded.org.objects("lead")
        if any(c.get("phones") for c in seeded.org.children(lead["id"], "contact"))
    }
    assert await _ids(seeded, "has:phone_numbers") == truth


async def test_slices_partition_the_leads(seeded: Emulator) -> None:
    parts = [await _ids(seeded, f"slice:{n}/4") for n in range(1, 5)]
    assert set().union(*parts) == set(seeded.org.leads)
    assert sum(len(p) for p in parts) == len(seeded.org.leads)


async def test_call_group_keeps_leads_with_a_call_in_the_date_range(seeded: Emulator) -> None:
    calls = [a for a in seeded.org.activities.records.values() if a["_type"] == "Call"]
    day = sorted(a["date_created"] for a in calls)[len(calls) // 2][:10]
    truth = {a["lead_id"] for a in calls if a["date_created"][:10] >= day}
    assert truth and await _ids(seeded, f'call( date >= "{day}" )') == truth


@pytest.mark.parametrize("query", ["has:unicorns", "slice:5/4", "calls:many", "note( status = x )"])
async def test_malformed_counting_terms_are_a_400_naming_the_term(seeded: Emulator, query: str) -> None:
    async with httpx2.AsyncClient(
        transport=seeded.transport(), base_url=seeded.base_url, auth=(seeded.api_key, "")
    ) as close:
        response = await close.get("/lead/", params={"query": query})
    assert response.status_code == 400
    assert "search query" in str(response.json()) or "inside" in str(response.json())
