"""Insert contact, update (on_none), search, and execute() for a single record."""

from __future__ import annotations

from closeflow.actions import (
    InsertContact,
    SearchLeads,
    UpdateContacts,
    UpdateLeads,
    execute,
    from_text,
    run_action,
    search,
)
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, contacts_with_email, field_id, new_contact, new_lead


async def test_insert_contact_under_a_lead_with_typed_phones_and_urls(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    spec = InsertContact(
        associated_lead_id="lead",
        email="email",
        phone="mobile",
        phone_type="mobile",
        mappings={"name": "name", "title": "title", "urls": "links"},
        custom={"Source": "source"},
    )
    row = {
        "lead": lead["id"],
        "email": "gob@example.com",
        "mobile": "415 555 0100",
        "name": "Gob",
        "title": "Magician",
        "links": "https://gob.example, https://magic.example",
        "source": "Event",
    }

    outcome = await execute(client, spec, row)

    assert outcome.status == "created"
    contact = emulator.org.contacts[outcome.ids[0]]
    assert contact["lead_id"] == lead["id"] and contact["title"] == "Magician"
    assert [(p["phone"], p["type"]) for p in contact["phones"]] == [("+14155550100", "mobile")]
    assert [u["url"] for u in contact["urls"]] == ["https://gob.example", "https://magic.example"]
    assert contact[f"custom.{field_id(emulator, 'contact', 'Source')}"] == "Event"


async def test_insert_contact_rejects_a_malformed_email_before_writing(
    client: CloseClient, emulator: Emulator
) -> None:
    requests = Requests(emulator)
    outcome = await execute(client, InsertContact(email="email"), {"email": "gob-at-example"})
    assert outcome.status == "failed" and outcome.error is not None
    assert 'emails: "gob-at-example" is not an email address' in outcome.error
    assert requests.count("POST") == 0


async def test_update_skips_or_fails_records_that_match_nothing(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    await new_contact(client, lead["id"], "gob@example.com", name="Gob")
    rows = [{"email": "gob@example.com", "title": "CEO"}, {"email": "nobody@example.com", "title": "CEO"}]
    skip = UpdateContacts(match_property="email", match_value="email", mappings={"title": "title"})

    outcomes = await run_action(client, skip, rows).collect()
    failing = await run_action(client, skip.model_copy(update={"on_none": "fail"}), rows[1:]).collect()

    assert [o.status for o in outcomes] == ["updated", "skipped"]
    assert failing[0].status == "failed"
    assert contacts_with_email(emulator, "gob@example.com")[0]["title"] == "CEO"
    assert contacts_with_email(emulator, "nobody@example.com") == []


async def test_update_from_csv_text_reports_close_validation_errors(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client, name="Bluth")
    spec = UpdateLeads(match_property="id", match_value="id", custom={"Champion": "champion"})
    rows = from_text(f"id,champion\n{lead['id']},cont_doesnotexist\n", "csv")

    [outcome] = await run_action(client, spec, rows).collect()

    assert outcome.status == "failed" and outcome.row == 1
    assert f"custom.{field_id(emulator, 'lead', 'Champion')}" in outcome.field_errors


async def test_search_returns_requested_fields_with_custom_names(
    client: CloseClient, emulator: Emulator
) -> None:
    industry = field_id(emulator, "lead", "Industry")
    for name, value in (("Acme", "Retail"), ("Bluth", "Software"), ("Cyberdyne", "Software")):
        await new_lead(client, name=name, **{f"custom.{industry}": value})
    spec = SearchLeads(
        where='custom."Industry" = "Software"', fields=["name", 'custom."Industry"'], sort="name", limit=1
    )

    found = [record async for record in search(client, spec)]

    assert [(r["name"], r["custom.Industry"]) for r in found] == [("Bluth", "Software")]
