"""Custom fields of every type by name, standard fields of leads, and errors that name the record."""

from __future__ import annotations

import pytest

from closeflow.actions import InsertLead, UpdateLeads, UpsertLeads, run_action
from closeflow.close import CloseClient, UnknownCustomField
from closeflow.emulator import Emulator
from tests.actions._org import Requests, field_id, leads_named, new_contact, new_lead


async def test_insert_lead_writes_custom_fields_of_every_type_by_name(
    client: CloseClient, emulator: Emulator
) -> None:
    owner = emulator.org.users[emulator.org.owner_id]
    spec = InsertLead(
        mappings={"name": "company", "status": "stage", "url": "site", "address.city": "city"},
        custom={
            "Industry": "industry",
            "Employees": "employees",
            "Contract Start": "start",
            "Last Demo": "demo",
            "source": "source",  # names are case-insensitive
            "Products": "products",
            "Owner": "owner",
            "Legacy ID": "legacy",
            "Region": "region",  # a shared field
        },
    )
    row = {
        "company": "Bluth Company",
        "stage": "qualified",
        "site": "https://bluth.example.com",
        "city": "Newport Beach",
        "industry": "Real estate",
        "employees": "120",
        "start": "2026-02-01",
        "demo": "2026-01-15T09:30:00",
        "source": "referral",
        "products": "CRM, Dialer",
        "owner": owner["email"],
        "legacy": 4411,
        "region": "AMER",
    }

    [outcome] = await run_action(client, spec, [row]).collect()

    assert outcome.status == "created", outcome.error
    [lead] = leads_named(emulator, "Bluth Company")

    def value(name: str) -> object:
        return lead.get(f"custom.{field_id(emulator, 'lead', name)}")

    assert lead["status_label"] == "Qualified"
    assert lead["addresses"][0]["city"] == "Newport Beach"
    assert value("Industry") == "Real estate"
    assert value("Employees") == 120
    assert value("Contract Start") == "2026-02-01"
    assert value("Last Demo") == "2026-01-15T09:30:00+00:00"
    assert value("Source") == "Referral"
    assert value("Products") == ["CRM", "Dialer"]
    assert value("Owner") == owner["id"]
    assert value("Legacy ID") == "4411"
    assert value("Region") == "AMER"


async def test_contact_field_on_a_lead_by_name(client: CloseClient, emulator: Emulator) -> None:
    lead = await new_lead(client, name="Bluth")
    contact = await new_contact(client, lead["id"], "gob@example.com")
    spec = UpdateLeads(match_property="id", match_value="id", custom={"Champion": "champion"})

    [outcome] = await run_action(client, spec, [{"id": lead["id"], "champion": contact["id"]}]).collect()

    assert outcome.status == "updated"
    assert emulator.org.leads[lead["id"]][f"custom.{field_id(emulator, 'lead', 'Champion')}"] == contact["id"]


async def test_bad_values_fail_their_record_naming_row_field_and_reason_and_the_rest_is_written(
    client: CloseClient, emulator: Emulator
) -> None:
    spec = InsertLead(
        mappings={"name": "company", "status": "stage"}, custom={"Employees": "employees", "Source": "source"}
    )
    rows = [
        {"company": "Good", "stage": "Potential", "employees": "5", "source": "Event"},
        {"company": "Bad number", "employees": "many"},
        {"company": "Bad choice", "source": "Billboard"},
        {"company": "Bad status", "stage": "Hot"},
    ]
    requests = Requests(emulator)

    outcomes = await run_action(client, spec, rows).collect()

    assert [o.status for o in outcomes] == ["created", "failed", "failed", "failed"]
    assert outcomes[1].error is not None and outcomes[1].error.startswith("row 2 ")
    assert (
        'input "employees"' in outcomes[1].error
        and "Employees" in outcomes[1].error
        and "not a number" in outcomes[1].error
    )
    assert (
        outcomes[2].error is not None
        and "not one of the choices" in outcomes[2].error
        and '"Event"' in outcomes[2].error
    )
    assert (
        outcomes[3].error is not None
        and 'unknown lead status "Hot"' in outcomes[3].error
        and '"Qualified"' in outcomes[3].error
    )
    assert requests.count("POST", "/lead/") == 1


async def test_stop_on_invalid_writes_nothing_of_a_chunk_with_a_bad_record(
    client: CloseClient, emulator: Emulator
) -> None:
    spec = InsertLead(mappings={"name": "company"}, custom={"Employees": "employees"}, stop_on_invalid=True)
    rows = [{"company": "Good"}, {"company": "Bad", "employees": "many"}]
    requests = Requests(emulator)

    run = run_action(client, spec, rows)
    outcomes = await run.collect()

    assert [o.status for o in outcomes] == ["skipped", "failed"]
    assert requests.count("POST", "/lead/") == 0
    assert run.summary.notes and "stop_on_invalid" in run.summary.notes[0]


async def test_unknown_custom_field_is_refused_before_any_record_is_read(
    client: CloseClient, emulator: Emulator
) -> None:
    spec = InsertLead(mappings={"name": "company"}, custom={"Industri": "industry"})
    requests = Requests(emulator)

    with pytest.raises(UnknownCustomField, match='did you mean "Industry"'):
        await run_action(client, spec, [{"company": "Acme"}]).collect()
    assert requests.count("POST") == 0


async def test_upsert_leads_by_domain_and_custom_field(client: CloseClient, emulator: Emulator) -> None:
    acme = await new_lead(client, name="Acme", url="https://www.acme.example/")
    legacy = field_id(emulator, "lead", "Legacy ID")
    bluth = await new_lead(client, name="Bluth", **{f"custom.{legacy}": "L-7"})
    by_domain = UpsertLeads(match_property="domain", match_value="domain", mappings={"description": "note"})
    by_legacy = UpsertLeads(
        match_property='custom."Legacy ID"', match_value="legacy", mappings={"description": "note"}
    )

    [a] = await run_action(client, by_domain, [{"domain": "ACME.example", "note": "by domain"}]).collect()
    [b] = await run_action(client, by_legacy, [{"legacy": "L-7", "note": "by legacy id"}]).collect()

    assert (a.status, a.ids) == ("updated", [acme["id"]])
    assert (b.status, b.ids) == ("updated", [bluth["id"]])
    assert emulator.org.leads[acme["id"]]["description"] == "by domain"
    assert emulator.org.leads[bluth["id"]]["description"] == "by legacy id"


async def test_multi_value_custom_field_merges_by_default(client: CloseClient, emulator: Emulator) -> None:
    products = field_id(emulator, "lead", "Products")
    lead = await new_lead(client, **{f"custom.{products}": ["CRM"]})
    spec = UpdateLeads(match_property="id", match_value="id", custom={"Products": "products"})

    [merged] = await run_action(client, spec, [{"id": lead["id"], "products": "API"}]).collect()
    [same] = await run_action(client, spec, [{"id": lead["id"], "products": "crm"}]).collect()

    assert merged.status == "updated" and same.status == "unchanged"
    assert emulator.org.leads[lead["id"]][f"custom.{products}"] == ["CRM", "API"]
