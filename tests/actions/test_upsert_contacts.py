"""Upserting contacts: matching by email in batches, array merge vs replace, no-op records, policies."""

from __future__ import annotations

import math

from closeflow.actions import UpsertContacts, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, contacts_with_email, new_contact, new_lead


def upsert(**options: object) -> UpsertContacts:
    return UpsertContacts.model_validate(
        {
            "match_property": "email",
            "match_value": "email",
            "email": "email",
            "mappings": {"name": "name"},
            **options,
        }
    )


async def test_upsert_merges_emails_instead_of_replacing_them(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    contact = await new_contact(client, lead["id"], "gob@example.com", name="Gob")
    await client.put(
        f"/contact/{contact['id']}/",
        json={
            "emails": [
                {"email": "gob@example.com", "type": "office"},
                {"email": "gob@home.example", "type": "home"},
            ]
        },
    )
    spec = upsert(match=[{"property": "id", "value": "id"}], email="new_email")

    [outcome] = await run_action(
        client, spec, [{"id": contact["id"], "new_email": "gob@work.example"}]
    ).collect()

    assert outcome.status == "updated"
    emails = [e["email"] for e in emulator.org.contacts[contact["id"]]["emails"]]
    assert emails == ["gob@example.com", "gob@home.example", "gob@work.example"]


async def test_upsert_with_replace_drops_emails_the_input_lacks(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    contact = await new_contact(client, lead["id"], "gob@example.com")
    spec = upsert(match=[{"property": "id", "value": "id"}], email="new_email", arrays="replace")

    [outcome] = await run_action(
        client, spec, [{"id": contact["id"], "new_email": "gob@work.example"}]
    ).collect()

    assert outcome.status == "updated"
    assert [e["email"] for e in emulator.org.contacts[contact["id"]]["emails"]] == ["gob@work.example"]


async def test_unchanged_records_send_no_put(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client)
    await new_contact(client, lead["id"], "gob@example.com", name="Gob", phones=[{"phone": "+14155550100"}])
    spec = upsert(phone="phone")
    requests = Requests(emulator)

    # Same values written differently: email case, a phone without its country code.
    rows = [{"email": "GOB@example.com", "name": "Gob", "phone": "(415) 555-0100"}]
    [outcome] = await run_action(client, spec, rows).collect()

    assert (outcome.status, outcome.plan) == ("unchanged", "unchanged")
    assert requests.count("PUT") == 0
    assert requests.count("POST", "/contact/") == 0


async def test_upsert_creates_when_nothing_matches_and_updates_the_single_match(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    existing = await new_contact(client, lead["id"], "gob@example.com", name="Gob")
    spec = upsert(associated_lead_id="lead")
    rows = [
        {"email": "gob@example.com", "name": "George Oscar Bluth", "lead": lead["id"]},
        {"email": "maeby@example.com", "name": "Maeby", "lead": lead["id"]},
    ]

    run = run_action(client, spec, rows)
    outcomes = await run.collect()

    assert [o.status for o in outcomes] == ["updated", "created"]
    assert outcomes[0].ids == [existing["id"]]
    assert [(c.field, c.before, c.after) for c in outcomes[0].changes] == [
        ("name", "Gob", "George Oscar Bluth")
    ]
    [maeby] = contacts_with_email(emulator, "maeby@example.com")
    assert maeby["lead_id"] == lead["id"] and maeby["name"] == "Maeby"
    assert run.summary.by_status == {"updated": 1, "created": 1}


async def test_two_rows_for_one_new_email_create_one_contact(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client)
    rows = [
        {"email": "lucille@example.com", "name": "Lucille", "lead": lead["id"]},
        {"email": "Lucille@Example.com", "name": "Lucille Bluth", "lead": lead["id"]},
    ]
    outcomes = await run_action(client, upsert(associated_lead_id="lead"), rows).collect()

    assert [o.status for o in outcomes] == ["created", "updated"]
    [lucille] = contacts_with_email(emulator, "lucille@example.com")
    assert lucille["name"] == "Lucille Bluth"


async def _two_gobs(client: CloseClient) -> tuple[dict[str, object], dict[str, object]]:
    lead = await new_lead(client)
    first = await new_contact(client, lead["id"], "gob@example.com", name="Gob one")
    second = await new_contact(client, lead["id"], "gob@example.com", name="Gob two")
    return first, second


async def test_many_matches_fail_by_default_naming_the_matches(
    client: CloseClient, emulator: Emulator
) -> None:
    first, second = await _two_gobs(client)
    requests = Requests(emulator)
    [outcome] = await run_action(client, upsert(), [{"email": "gob@example.com", "name": "Gob"}]).collect()

    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "2 contacts match email=gob@example.com" in outcome.error
    assert str(first["id"]) in outcome.error and str(second["id"]) in outcome.error
    assert requests.count("PUT") == 0


async def test_many_matches_first_updates_the_oldest_only(client: CloseClient, emulator: Emulator) -> None:
    first, second = await _two_gobs(client)
    [outcome] = await run_action(
        client, upsert(on_many="first"), [{"email": "gob@example.com", "name": "Gob"}]
    ).collect()

    assert outcome.status == "updated" and outcome.ids == [first["id"]]
    assert emulator.org.contacts[str(first["id"])]["name"] == "Gob"
    assert emulator.org.contacts[str(second["id"])]["name"] == "Gob two"


async def test_many_matches_update_all_updates_each(client: CloseClient, emulator: Emulator) -> None:
    first, second = await _two_gobs(client)
    rows = [{"email": "gob@example.com", "name": "Gob"}]
    [outcome] = await run_action(client, upsert(on_many="update_all"), rows).collect()

    assert outcome.status == "updated" and sorted(outcome.ids) == sorted([first["id"], second["id"]])
    assert {emulator.org.contacts[str(c["id"])]["name"] for c in (first, second)} == {"Gob"}


async def test_lead_mismatch_fails_by_default(client: CloseClient, emulator: Emulator) -> None:
    home, other = await new_lead(client), await new_lead(client, name="Other")
    contact = await new_contact(client, home["id"], "gob@example.com", name="Gob")
    rows = [{"email": "gob@example.com", "name": "Gob B", "lead": other["id"]}]

    [outcome] = await run_action(client, upsert(associated_lead_id="lead"), rows).collect()

    assert outcome.status == "failed" and outcome.error is not None
    assert "Close cannot move contacts" in outcome.error and contact["id"] in outcome.error
    assert emulator.org.contacts[contact["id"]]["name"] == "Gob"


async def test_lead_mismatch_create_under_lead_and_update_in_place(
    client: CloseClient, emulator: Emulator
) -> None:
    home, other = await new_lead(client), await new_lead(client, name="Other")
    contact = await new_contact(client, home["id"], "gob@example.com", name="Gob")
    rows = [{"email": "gob@example.com", "name": "Gob B", "lead": other["id"]}]

    [in_place] = await run_action(
        client, upsert(associated_lead_id="lead", lead_mismatch="update_in_place"), rows
    ).collect()
    assert in_place.status == "updated" and in_place.ids == [contact["id"]]
    assert emulator.org.contacts[contact["id"]]["lead_id"] == home["id"]

    [created] = await run_action(
        client, upsert(associated_lead_id="lead", lead_mismatch="create_under_lead"), rows
    ).collect()
    assert created.status == "created"
    assert sorted(c["lead_id"] for c in contacts_with_email(emulator, "gob@example.com")) == sorted(
        [home["id"], other["id"]]
    )


async def test_lookups_are_batched_one_search_per_chunk(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client)
    for i in range(0, 250, 2):
        await new_contact(client, lead["id"], f"person{i}@example.com", name=f"Person {i}")
    rows = [{"email": f"person{i}@example.com", "name": f"Person {i}"} for i in range(250)]
    requests = Requests(emulator)

    outcomes = await run_action(client, upsert(), rows, chunk_size=100).collect()

    assert requests.count("POST", "/data/search/") <= math.ceil(250 / 100)
    assert sum(o.status == "created" for o in outcomes) == 125
    assert sum(o.status == "unchanged" for o in outcomes) == 125


async def test_200_upserts_half_matching_cost_at_most_1_1_requests_per_record(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    for i in range(0, 200, 2):
        await new_contact(client, lead["id"], f"p{i}@example.com", name="Old name")
    rows = [{"email": f"p{i}@example.com", "name": f"Person {i}", "lead": lead["id"]} for i in range(200)]
    requests = Requests(emulator)

    run = run_action(client, upsert(associated_lead_id="lead"), rows)
    await run.collect()

    assert run.summary.by_status == {"updated": 100, "created": 100}
    assert requests.count() / 200 <= 1.1
    assert len(contacts_with_email(emulator, "p1@example.com")) == 1
