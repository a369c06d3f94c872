"""Records that meet the same Close record (again on a re-run, twice in one input, through two of
its values) and creates whose answers were lost: each ends as exactly one correct Close record."""

from __future__ import annotations

from pathlib import Path

import httpx2

from closeflow._clock import FakeClock
from closeflow.actions import InsertLead, SqliteLedger, UpsertContacts, UpsertLeads, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from tests.actions._org import Requests, contacts_with_email, field_id, leads_named, new_contact, new_lead

LAG = 120.0  # closeflow.actions.SEARCH_LAG: how long a lost create waits for Close's search


class LaggingSearch(httpx2.AsyncBaseTransport):
    """Close's search a few seconds after a write: the first ``hidden`` searches find nothing."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, hidden: int) -> None:
        self.inner = inner
        self.hidden = hidden

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/data/search/") and self.hidden:
            self.hidden -= 1
            return httpx2.Response(200, json={"data": [], "cursor": None})
        return await self.inner.handle_async_request(request)


async def test_an_upsert_writes_the_email_it_matched_on_so_a_rerun_finds_the_contact(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    spec = UpsertContacts(
        match_property="email", match_value="email", associated_lead_id="lead", mappings={"name": "name"}
    )
    row = {"email": "ann@example.com", "name": "Ann", "lead": lead["id"]}

    [first] = await run_action(client, spec, [row]).collect()
    [second] = await run_action(client, spec, [row]).collect()

    assert (first.status, second.status) == ("created", "unchanged")
    [contact] = contacts_with_email(emulator, "ann@example.com")
    assert [e["email"] for e in contact["emails"]] == ["ann@example.com"]
    assert second.ids == [contact["id"]]


async def test_an_upsert_matched_on_a_custom_field_writes_that_field_on_create(
    client: CloseClient, emulator: Emulator
) -> None:
    spec = UpsertLeads(match=[{"property": 'custom."Legacy ID"', "value": "lid"}], mappings={"name": "name"})
    row = {"lid": "L-77", "name": "Legacy Co"}

    statuses = [(await run_action(client, spec, [row]).collect())[0].status for _ in range(2)]

    assert statuses == ["created", "unchanged"]
    [lead] = leads_named(emulator, "Legacy Co")
    assert lead[f"custom.{field_id(emulator, 'lead', 'Legacy ID')}"] == "L-77"


async def test_two_rows_with_one_key_each_get_their_own_ledger_row_so_a_resume_writes_the_second(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger
) -> None:
    spec = InsertLead(mappings={"name": "name", "description": "desc"})
    rows = [{"name": "Acme", "desc": "Acme Berlin"}, {"name": "Acme", "desc": "Acme Paris"}]
    await run_action(client, spec, rows[:1], batch_id="b", ledger=ledger).collect()  # then the crash

    outcomes = await run_action(client, spec, rows, batch_id="b", ledger=ledger).collect()

    assert [o.status for o in outcomes] == ["skipped", "created"]
    assert outcomes[0].key != outcomes[1].key
    assert sorted(lead["description"] for lead in leads_named(emulator, "Acme")) == [
        "Acme Berlin",
        "Acme Paris",
    ]


async def test_two_rows_for_two_emails_of_one_contact_keep_both_new_phones(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    contact = await new_contact(client, lead["id"], "gob@work.example")
    await client.put(
        f"/contact/{contact['id']}/",
        json={"emails": [*contact["emails"], {"email": "gob@home.example", "type": "home"}]},
    )
    spec = UpsertContacts(match_property="email", match_value="email", phone="phone")
    rows = [
        {"email": "gob@work.example", "phone": "+14155550111"},
        {"email": "gob@home.example", "phone": "+14155550122"},
    ]

    outcomes = await run_action(client, spec, rows).collect()

    assert [o.status for o in outcomes] == ["updated", "updated"]
    phones = [p["phone"] for p in emulator.org.contacts[contact["id"]]["phones"]]
    assert phones == ["+14155550111", "+14155550122"]


async def test_a_row_with_only_the_phone_of_a_contact_created_by_an_earlier_row_updates_it(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client)
    spec = UpsertContacts(
        match=[{"property": "email", "value": "email"}, {"property": "phone", "value": "phone"}],
        email="email",
        phone="phone",
        associated_lead_id="lead",
        mappings={"title": "title"},
    )
    rows = [
        {"email": "new@example.com", "phone": "+14155550199", "lead": lead["id"]},
        {"email": "", "phone": "(415) 555-0199", "title": "CEO", "lead": lead["id"]},
    ]
    requests = Requests(emulator)

    outcomes = await run_action(client, spec, rows).collect()

    assert [o.status for o in outcomes] == ["created", "updated"]
    assert requests.count("POST", "/contact/") == 1
    [contact] = contacts_with_email(emulator, "new@example.com")
    assert contact["title"] == "CEO" and outcomes[1].ids == [contact["id"]]


async def test_a_lost_create_with_nothing_to_look_it_up_by_is_never_sent_again(
    client: CloseClient, emulator: Emulator, ledger: SqliteLedger, clock: FakeClock
) -> None:
    spec = InsertLead(mappings={"description": "d"})
    rows = [{"d": "only a description"}]
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern=r"/lead/$")
    requests = Requests(emulator)

    [first] = await run_action(client, spec, rows, batch_id="b", ledger=ledger).collect()
    clock.advance(LAG * 10)
    [second] = await run_action(client, spec, rows, batch_id="b", ledger=ledger).collect()

    assert first.status == second.status == "failed"
    assert second.error is not None and "check Close by hand" in second.error
    assert requests.count("POST", "/lead/") == 1
    assert len(emulator.org.leads) == 1


async def test_an_upsert_by_id_that_matches_nothing_fails_instead_of_creating(
    client: CloseClient, emulator: Emulator
) -> None:
    leads = UpsertLeads(match_property="id", match_value="id", mappings={"name": "name"})
    contacts = UpsertContacts(match_property="id", match_value="id", mappings={"name": "name"})

    [gone] = await run_action(client, leads, [{"id": "lead_gone123", "name": "Ghost"}]).collect()
    [bad] = await run_action(client, contacts, [{"id": "not-an-id", "name": "Ghost"}]).collect()

    assert gone.status == "failed" and gone.error is not None and "lead_gone123" in gone.error
    assert bad.status == "failed" and bad.error is not None and "cont_" in bad.error
    assert emulator.org.leads == {} and emulator.org.contacts == {}


async def test_matching_on_name_finds_the_lead_whatever_spaces_either_side_typed(
    client: CloseClient, emulator: Emulator
) -> None:
    lead = await new_lead(client, name="Acme  Corp")
    spec = UpsertLeads(match_property="name", match_value="name", mappings={"description": "d"})

    [loose] = await run_action(client, spec, [{"name": "Acme Corp", "d": "one"}]).collect()
    [exact] = await run_action(client, spec, [{"name": "Acme  Corp", "d": "two"}]).collect()

    assert (loose.status, exact.status) == ("updated", "updated")
    assert loose.ids == exact.ids == [lead["id"]]
    assert len(emulator.org.leads) == 1


async def test_a_case_only_change_to_a_custom_text_field_is_written(
    client: CloseClient, emulator: Emulator
) -> None:
    legacy = field_id(emulator, "lead", "Legacy ID")
    lead = await new_lead(client, **{f"custom.{legacy}": "l-1"})
    spec = UpsertLeads(match_property="id", match_value="id", custom={"Legacy ID": "lid"})

    [outcome] = await run_action(client, spec, [{"id": lead["id"], "lid": "L-1"}]).collect()

    assert outcome.status == "updated"
    assert [(c.field, c.before, c.after) for c in outcome.changes] == [("custom.Legacy ID", "l-1", "L-1")]
    assert emulator.org.leads[lead["id"]][f"custom.{legacy}"] == "L-1"


async def test_a_lost_create_that_search_does_not_show_yet_is_found_later_not_sent_again(
    emulator: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    spec = InsertLead(mappings={"name": "company", "url": "site"})
    rows = [{"company": "Bluth", "site": "https://bluth.example"}]
    emulator.faults.drop_next(1, after_processing=True, method="POST", path_pattern=r"/lead/$")
    lagging = LaggingSearch(emulator.transport(), hidden=1)
    requests = Requests(emulator)

    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=lagging, clock=clock
    ) as client:
        [first] = await run_action(client, spec, rows, batch_id="b", ledger=ledger).collect()
        clock.advance(30)
        [second] = await run_action(client, spec, rows, batch_id="b", ledger=ledger).collect()

    assert first.status == "failed" and lagging.hidden == 0
    assert second.status == "created" and second.note is not None and "recovered" in second.note
    assert requests.count("POST", "/lead/") == 1
    assert [lead["id"] for lead in leads_named(emulator, "Bluth")] == second.ids
