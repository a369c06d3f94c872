"""The seeded org's children: realistic ratios, consistent dates, no events, searchable opportunities."""

from __future__ import annotations

from collections import Counter

import httpx2

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator, Organization
from closeflow.emulator._seed import seed_org


def _org(seed: int, leads: int) -> Organization:
    org = Organization(FakeClock(), seed=seed)
    seed_org(org, seed, leads)
    return org


def test_children_come_at_realistic_ratios_over_every_type() -> None:
    org = _org(1, 2000)
    assert 1.9 <= len(org.contacts) / 2000 <= 3.1
    assert 0.25 <= len(org.opportunities) / 2000 <= 0.35
    assert 0.45 <= len(org.tasks) / 2000 <= 0.55
    assert 5.0 <= len(org.activities) / 2000 <= 6.2
    types = Counter(a["_type"] for a in org.activities)
    assert set(types) == {
        "Created",
        "Note",
        "Call",
        "Email",
        "EmailThread",
        "SMS",
        "Meeting",
        "LeadStatusChange",
        "OpportunityStatusChange",
        "TaskCompleted",
    }
    assert types["Created"] == 2000
    assert len({t["_type"] for t in org.tasks}) >= 5
    assert all(t["id"].startswith("task_" if t["_type"] == "lead" else "noti_") for t in org.tasks)


def test_children_dates_fall_within_their_lead_and_some_notes_were_edited() -> None:
    org = _org(2, 300)
    for collection in org.collections.values():
        for record in collection:
            lead = org.leads[record["lead_id"]]
            assert (
                lead["date_created"]
                <= record["date_created"]
                <= record["date_updated"]
                <= lead["date_updated"]
            )
    edited = [a for a in org.activities if a["_type"] == "Note" and a["date_updated"] > a["date_created"]]
    assert edited


def test_children_do_not_change_the_seeded_leads_and_seeding_records_no_events() -> None:
    with_children = _org(4, 50)
    assert list(with_children.leads) == list(_org(4, 50).leads)
    assert with_children.events == []
    assert list(with_children.activities.records) == list(_org(4, 50).activities.records)


async def test_has_related_opportunity_search_sees_seeded_opportunities() -> None:
    emulator = Emulator(clock=FakeClock(), seed=6, leads=80)
    with_opps = {o["lead_id"] for o in emulator.org.opportunities}
    query = {
        "query": {
            "type": "and",
            "queries": [
                {"type": "object_type", "object_type": "lead"},
                {
                    "type": "has_related",
                    "this_object_type": "lead",
                    "related_object_type": "opportunity",
                    "related_query": {"type": "match_all"},
                },
            ],
        },
        "_limit": 200,
    }
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as close:
        found = (await close.post("/data/search/", json=query)).json()["data"]
    assert {row["id"] for row in found} == with_opps
    assert with_opps
