"""The seeded organization: deterministic, realistic, and shaped for keyset-pagination tests."""

from __future__ import annotations

from collections import Counter

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator, Organization
from closeflow.emulator._seed import seed_org


def _org(seed: int, leads: int) -> Organization:
    org = Organization(FakeClock(), seed=seed)
    seed_org(org, seed, leads)
    return org


def test_same_seed_gives_the_same_ids_and_records() -> None:
    first, second = _org(5, 50), _org(5, 50)
    assert first.id == second.id
    assert list(first.leads) == list(second.leads)
    assert first.leads == second.leads
    assert first.contacts == second.contacts


def test_different_seeds_give_different_orgs() -> None:
    assert list(_org(5, 10).leads) != list(_org(6, 10).leads)


def test_seeded_org_has_users_statuses_pipeline_and_every_field_type() -> None:
    org = _org(1, 0)
    assert 3 <= len(org.users) <= 5
    assert [s["label"] for s in org.lead_statuses] == ["Potential", "Bad Fit", "Qualified", "Customer"]
    assert {s["type"] for s in org.opportunity_statuses()} == {"active", "won", "lost"}
    for object_type in ("lead", "contact"):
        types = {f["type"] for f in org.custom_fields[object_type].values()}
        assert types == {"text", "number", "date", "datetime", "choices", "user", "contact", "hidden"}
        multi = [f for f in org.custom_fields[object_type].values() if f["accepts_multiple_values"]]
        assert [f["type"] for f in multi] == ["choices"]
    assert len(org.custom_fields["shared"]) == 1


def test_leads_have_one_to_four_contacts_with_contact_info() -> None:
    org = _org(2, 200)
    assert all(1 <= len(lead["contact_ids"]) <= 4 for lead in org.leads.values())
    assert all(
        org.contacts[cid]["lead_id"] == lid for lid, lead in org.leads.items() for cid in lead["contact_ids"]
    )
    assert all(contact["emails"] for contact in org.contacts.values())
    assert any(contact["phones"] for contact in org.contacts.values())
    assert any(lead["addresses"] for lead in org.leads.values())
    assert any(key.startswith("custom.cf_") for lead in org.leads.values() for key in lead)


def test_many_leads_share_a_date_updated_so_keyset_needs_a_tiebreak() -> None:
    org = _org(3, 1000)
    counts = Counter(lead["date_updated"] for lead in org.leads.values())
    shared = sum(n for n in counts.values() if n > 1)
    assert shared >= 200
    assert all(lead["date_updated"] >= lead["date_created"] for lead in org.leads.values())


def test_dates_fall_in_the_year_before_the_clock() -> None:
    org = _org(4, 300)
    assert min(lead["date_created"] for lead in org.leads.values()) >= "2025-01-01"
    assert max(lead["date_updated"] for lead in org.leads.values()) <= "2026-01-01T00:00:00.000000+00:00"


async def test_emulator_lists_seeded_leads_in_creation_order() -> None:
    emulator = Emulator(clock=FakeClock(), seed=9, leads=30)
    expected = sorted(emulator.org.leads.values(), key=lambda lead: (lead["date_created"], lead["id"]))
    assert [pair[1] for pair in emulator.org.ordered_ids("lead")] == [lead["id"] for lead in expected]
