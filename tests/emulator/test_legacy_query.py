"""The legacy ``GET /lead/?query=`` forms that connectors still send (§3.4)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator
from tests.emulator._helpers import field_id


@pytest.fixture
async def three_leads(
    close: httpx2.AsyncClient, clock: FakeClock, emulator: Emulator
) -> list[dict[str, Any]]:
    """Created a day apart (2026-01-01, -02, -03); the first is then updated on 2026-01-04."""
    industry = field_id(emulator, "lead", "Industry")
    leads = []
    for name, label, value in [
        ("Acme Corp", "Potential", "Retail"),
        ("Globex", "Qualified", "Software"),
        ("Initech", "Potential", None),
    ]:
        payload = {"name": name, "status": label}
        if value:
            payload[f"custom.{industry}"] = value
        leads.append((await close.post("/lead/", json=payload)).json())
        clock.advance(86_400)
    await close.put(f"/lead/{leads[0]['id']}/", json={"description": "touched"})
    return leads


async def _ids(close: httpx2.AsyncClient, query: str) -> list[str]:
    response = await close.get("/lead/", params={"query": query})
    assert response.status_code == 200, response.json()
    return [lead["id"] for lead in response.json()["data"]]


async def test_sort_updated_orders_by_date_updated_ascending(
    close: httpx2.AsyncClient, three_leads: list
) -> None:  # type: ignore[type-arg]
    a, b, c = (lead["id"] for lead in three_leads)
    assert await _ids(close, "sort:updated") == [b, c, a]
    assert await _ids(close, "sort:date_updated") == [b, c, a]
    assert await _ids(close, "sort:created") == [a, b, c]


async def test_unquoted_iso_date_updated_filter(close: httpx2.AsyncClient, three_leads: list) -> None:  # type: ignore[type-arg]
    a, _, c = (lead["id"] for lead in three_leads)
    assert await _ids(close, "date_updated >= 2026-01-03T00:00:00.000000+00:00 sort:updated") == [c, a]


async def test_quoted_minute_precision_filter(close: httpx2.AsyncClient, three_leads: list) -> None:  # type: ignore[type-arg]
    a = three_leads[0]["id"]
    assert await _ids(close, 'date_updated>="2026-01-03T00:01"') == [a]


async def test_date_only_range(close: httpx2.AsyncClient, three_leads: list) -> None:  # type: ignore[type-arg]
    b = three_leads[1]["id"]
    assert await _ids(close, "date_updated > 2026-01-01 date_updated <= 2026-01-02") == [b]


async def test_name_status_and_custom_terms(close: httpx2.AsyncClient, three_leads: list) -> None:  # type: ignore[type-arg]
    a, b, c = (lead["id"] for lead in three_leads)
    assert await _ids(close, 'name:"acme"') == [a]
    assert await _ids(close, 'status:"Potential"') == [a, c]
    assert await _ids(close, 'custom.Industry:"Software"') == [b]
    assert await _ids(close, "*") == [a, b, c]


async def test_limit_zero_reads_only_total_results(close: httpx2.AsyncClient, three_leads: list) -> None:  # type: ignore[type-arg]
    response = (await close.get("/lead/", params={"query": 'status:"Potential"', "_limit": 0})).json()
    assert response["data"] == []
    assert response["total_results"] == 2


async def test_unsupported_term_is_a_400_naming_it(close: httpx2.AsyncClient) -> None:
    response = await close.get("/lead/", params={"query": "lead_owner:nobody"})
    assert response.status_code == 400
    assert "lead_owner:nobody" in response.json()["error"]


async def test_query_results_follow_writes_between_pages(
    close: httpx2.AsyncClient,
    three_leads: list,
    clock: FakeClock,  # type: ignore[type-arg]
) -> None:
    first = await _ids(close, "sort:updated")
    clock.advance(1)
    await close.put(f"/lead/{three_leads[1]['id']}/", json={"name": "Globex 2"})
    second = await _ids(close, "sort:updated")
    assert second == first[1:] + first[:1]
