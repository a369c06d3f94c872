"""A dry run says up front when Close would refuse a write for the ids it names: a contact under a
lead that does not exist, a note on a missing lead or with another lead's contact. Only dry runs
ask Close: a real run gets Close's own answer and pays no extra request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from closeflow._clock import FakeClock
from closeflow.actions import InsertContact, InsertNote, UpsertContacts, execute, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, contacts_with_email, new_contact, new_lead
from tests.actions.test_same_record_twice import LaggingSearch

SEARCH = "/data/search/"
MISSING = "row {row}: lead {lead} does not exist in Close: check the lead id"


def insert(dry_run: bool = True) -> InsertContact:
    return InsertContact(email="email", mappings={"name": "name"}, associated_lead_id="lead", dry_run=dry_run)


def upsert(dry_run: bool = True) -> UpsertContacts:
    return UpsertContacts(
        match_property="email",
        match_value="email",
        email="email",
        mappings={"name": "name"},
        associated_lead_id="lead",
        dry_run=dry_run,
    )


def rows(*leads: str) -> list[dict[str, str]]:
    return [{"email": f"p{n}@example.com", "name": f"P{n}", "lead": lead} for n, lead in enumerate(leads)]


async def test_a_dry_run_fails_exactly_the_contacts_whose_lead_does_not_exist(
    client: CloseClient, emulator: Emulator
) -> None:
    a, b = [str((await new_lead(client, name=name))["id"]) for name in ("A", "B")]
    requests = Requests(emulator)

    outcomes = await run_action(client, insert(), rows(a, "lead_nope", b, "lead_gone", a)).collect()

    assert [(o.row, o.status, o.plan) for o in outcomes] == [
        (1, "planned", "create"),
        (2, "failed", "fail"),
        (3, "planned", "create"),
        (4, "failed", "fail"),
        (5, "planned", "create"),
    ]
    assert [o.error for o in outcomes] == [
        None,
        MISSING.format(row=2, lead="lead_nope"),
        None,
        MISSING.format(row=4, lead="lead_gone"),
        None,
    ]
    assert outcomes[1].changes == []  # nothing would be created
    # One search for the chunk's leads, then one GET for each lead it did not show.
    assert requests.count("POST", SEARCH) == 1
    assert sorted(e.path for e in emulator.request_log[requests.start :] if e.method == "GET") == [
        "/lead/lead_gone/",
        "/lead/lead_nope/",
    ]
    assert requests.count("POST", "/contact/") == 0


async def test_the_lead_check_costs_one_search_per_chunk(client: CloseClient, emulator: Emulator) -> None:
    leads = [str((await new_lead(client, name=f"L{n}"))["id"]) for n in range(5)]
    requests = Requests(emulator)

    outcomes = await run_action(client, insert(), rows(*leads), chunk_size=2).collect()

    assert [(o.status, o.plan) for o in outcomes] == [("planned", "create")] * 5
    assert requests.count("POST", SEARCH) == 3  # chunks of 2, 2 and 1
    assert requests.count("GET", "/lead/") == 0


async def test_an_upsert_dry_run_checks_the_lead_only_for_the_records_it_would_create(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = str((await new_lead(client))["id"])
    await new_contact(client, lead, "p0@example.com", name="Old name")
    await new_contact(client, lead, "p1@example.com", name="Old name")
    requests = Requests(emulator)

    updates = await run_action(client, upsert(), rows(lead, lead)).collect()
    mixed = await run_action(
        client, upsert(), [*rows(lead, lead), *rows(lead, lead, "lead_nope")[2:]]
    ).collect()

    assert [(o.status, o.plan) for o in updates] == [("planned", "update")] * 2
    assert [(o.status, o.plan) for o in mixed] == [
        ("planned", "update"),
        ("planned", "update"),
        ("failed", "fail"),
    ]
    assert mixed[2].error == MISSING.format(row=3, lead="lead_nope")
    # The updates' run: its match search only. The mixed run: match search, lead search, one GET.
    assert requests.count("POST", SEARCH) == 1 + 2
    assert requests.count("GET", "/lead/") == 1


async def test_a_lead_the_search_does_not_show_yet_is_asked_for_by_id_and_planned(
    emulator: Emulator, clock: FakeClock
) -> None:
    transport = LaggingSearch(emulator.transport(), hidden=1)  # Close's search 30-60 s after a create
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=transport, clock=clock
    ) as c:
        fresh = str((await new_lead(c, name="Just created"))["id"])
        requests = Requests(emulator)

        [outcome] = await run_action(c, insert(), rows(fresh)).collect()

    assert (outcome.status, outcome.plan, outcome.error) == ("planned", "create", None)
    assert [(e.method, e.path) for e in emulator.request_log[requests.start :]] == [
        ("GET", f"/lead/{fresh}/")
    ]


@pytest.mark.parametrize("spec", [insert(dry_run=False), upsert(dry_run=False)], ids=["insert", "upsert"])
async def test_a_real_run_sends_no_lead_lookup_and_reports_closes_own_refusal(
    client: CloseClient, emulator: Emulator, spec: InsertContact | UpsertContacts
) -> None:
    lead = str((await new_lead(client))["id"])
    before = len(emulator.request_log)

    outcomes = await run_action(client, spec, rows(lead, "lead_nope", lead), chunk_size=2).collect()

    assert [(o.status, o.plan) for o in outcomes] == [
        ("created", "create"),
        ("failed", "create"),
        ("created", "create"),
    ]
    assert "Lead does not exist" in str(outcomes[1].error)
    sent = [(e.method, e.path) for e in emulator.request_log[before:]]
    matching = 2 if spec.action.startswith("upsert") else 0  # an upsert's one search per chunk
    assert sent.count(("POST", SEARCH)) == matching
    assert sent.count(("POST", "/contact/")) == 3
    assert len(sent) == matching + 3  # nothing else: no lead lookup
    assert len(contacts_with_email(emulator, "p0@example.com")) == 1


# -- insert_note ----------------------------------------------------------------------------------

NOTE = InsertNote(lead_id="lead", note="text", contact_id="contact", dry_run=True)


@pytest.fixture
async def pair(client: CloseClient, emulator: Emulator) -> AsyncIterator[tuple[str, str, str]]:
    """A lead with a contact, and a contact of another lead; the request log starts after them."""
    lead, other = [str((await new_lead(client, name=name))["id"]) for name in ("Ours", "Theirs")]
    ours = str((await new_contact(client, lead, "ours@example.com"))["id"])
    theirs = str((await new_contact(client, other, "theirs@example.com"))["id"])
    emulator.request_log.clear()
    yield lead, ours, theirs


async def test_a_note_dry_run_on_a_missing_lead_fails_and_asks_nothing_more(
    client: CloseClient, emulator: Emulator, pair: tuple[str, str, str]
) -> None:
    _, ours, _ = pair
    outcome = await execute(client, NOTE, {"lead": "lead_nope", "text": "hi", "contact": ours})
    assert (outcome.status, outcome.plan) == ("failed", "fail")
    assert outcome.error == "lead lead_nope does not exist in Close: check the lead id"
    assert [(e.method, e.path) for e in emulator.request_log] == [("GET", "/lead/lead_nope/")]


async def test_a_note_dry_run_with_a_contact_of_another_lead_fails_naming_both_leads(
    client: CloseClient, emulator: Emulator, pair: tuple[str, str, str]
) -> None:
    lead, _, theirs = pair
    other = emulator.org.contacts[theirs]["lead_id"]
    outcome = await execute(client, NOTE, {"lead": lead, "text": "hi", "contact": theirs})
    assert (outcome.status, outcome.plan) == ("failed", "fail")
    assert outcome.error is not None
    assert outcome.error.startswith(f"contact {theirs} belongs to lead {other}, not {lead}")
    assert emulator.requests("POST") == 0


async def test_a_note_dry_run_with_a_missing_contact_fails(
    client: CloseClient, emulator: Emulator, pair: tuple[str, str, str]
) -> None:
    lead, _, _ = pair
    outcome = await execute(client, NOTE, {"lead": lead, "text": "hi", "contact": "cont_nope"})
    assert (outcome.status, outcome.error) == (
        "failed",
        "contact cont_nope does not exist in Close: check the contact id",
    )


async def test_a_note_dry_run_with_a_valid_pair_is_planned_after_two_reads(
    client: CloseClient, emulator: Emulator, pair: tuple[str, str, str]
) -> None:
    lead, ours, _ = pair
    with_contact = await execute(client, NOTE, {"lead": lead, "text": "hi", "contact": ours})
    without = await execute(client, NOTE, {"lead": lead, "text": "hi"})
    assert [(o.status, o.plan, o.error) for o in (with_contact, without)] == [("planned", "create", None)] * 2
    assert [(e.method, e.path) for e in emulator.request_log] == [
        ("GET", f"/lead/{lead}/"),
        ("GET", f"/contact/{ours}/"),
        ("GET", f"/lead/{lead}/"),
    ]
    assert all(e.query in ("_fields=id", "_fields=id%2Clead_id") for e in emulator.request_log)


async def test_a_real_note_run_sends_only_the_note(
    client: CloseClient, emulator: Emulator, pair: tuple[str, str, str]
) -> None:
    lead, _, theirs = pair
    real = NOTE.model_copy(update={"dry_run": False})
    good = await execute(client, real, {"lead": lead, "text": "hi"})
    refused = await execute(client, real, {"lead": lead, "text": "hi", "contact": theirs})
    assert (good.status, refused.status, refused.plan) == ("created", "failed", "create")
    assert refused.field_errors == {"contact_id": "Contact does not belong to this lead."}
    assert [(e.method, e.path) for e in emulator.request_log] == [("POST", "/activity/note/")] * 2
