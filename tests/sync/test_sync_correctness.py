"""The sync engine against the emulator: after every step the store holds exactly what Close
holds, and the change log lists exactly what changed (SQLite and Postgres alike)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator, EmulatorConfig
from closeflow.sync import DEFAULT_LOOKBACK, Store
from tests.sync._helpers import (
    assert_store_matches,
    by_record,
    kinds,
    run_sync,
    stored,
    truth,
)


@pytest.fixture
def emu(clock: FakeClock) -> Emulator:
    return Emulator(clock=clock, seed=5, leads=6)


@pytest.fixture
async def close(emu: Emulator) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
    ) as http:
        yield http


async def call(close: httpx2.AsyncClient, method: str, path: str, **body: Any) -> dict[str, Any]:
    response = await close.request(method, path, json=body or None)
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else {}


async def populate(close: httpx2.AsyncClient, emu: Emulator) -> dict[str, str]:
    """One of each kind of child on the first two leads; returns the ids tests edit and delete."""
    lead_ids = sorted(emu.org.leads)[:2]
    ids: dict[str, str] = {}
    for n, lead_id in enumerate(lead_ids):
        emu.clock.advance(1)  # type: ignore[attr-defined]
        ids[f"opportunity{n}"] = (
            await call(close, "POST", "/opportunity/", lead_id=lead_id, note="first", value=1000)
        )["id"]
        ids[f"task{n}"] = (
            await call(close, "POST", "/task/", lead_id=lead_id, text="Call back", date="2026-02-01")
        )["id"]
        ids[f"note{n}"] = (await call(close, "POST", "/activity/note/", lead_id=lead_id, note="met them"))[
            "id"
        ]
        ids[f"call{n}"] = (
            await call(close, "POST", "/activity/call/", lead_id=lead_id, direction="outbound", duration=30)
        )["id"]
        ids[f"lead{n}"] = lead_id
    emu.clock.advance(1)  # type: ignore[attr-defined]
    return ids


async def test_initial_sync_stores_exactly_what_close_has_and_logs_one_added_change_per_record(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    await populate(close, emu)

    result = await run_sync(emu, store)

    assert_store_matches(emu, store)
    changes = store.changes()
    assert all(c.kind == "added" for c in changes)
    for model in ("leads", "contacts", "opportunities", "tasks", "activities"):
        expected = truth(emu, model)
        logged = {c.record_id: c for c in changes if c.model == model}
        assert set(logged) == set(expected)
        for record_id, change in logged.items():
            assert change.after == expected[record_id]
            assert change.before is None
            assert sorted(change.changed_fields) == sorted(expected[record_id])
    assert {"leads_view", "contacts_view", "opportunities_view", "activities_view"} <= set(
        result.views_rebuilt
    )


async def test_a_second_sync_with_nothing_changed_logs_nothing_and_costs_at_most_two_requests_per_stream(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    await populate(close, emu)
    await run_sync(emu, store)
    seq = store.last_seq()
    emu.clock.advance(3600)  # type: ignore[attr-defined]

    result = await run_sync(emu, store)

    assert store.changes(seq) == []
    assert {s.stream: s.requests for s in result.streams if s.requests > 2} == {}
    assert result.views_rebuilt == []
    assert_store_matches(emu, store)


async def test_edits_to_every_kind_of_record_become_updated_changes_with_before_and_after(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    ids = await populate(close, emu)
    await run_sync(emu, store)
    seq = store.last_seq()
    contact_id = emu.org.leads[ids["lead0"]]["contact_ids"][0]
    old = {
        "lead": emu.org.leads[ids["lead0"]]["description"],
        "contact": emu.org.contacts[contact_id]["title"],
    }
    old_note = min(
        (a for a in emu.org.records["activity"].values() if a["_type"] == "Note"),
        key=lambda a: a["date_created"],
    )
    old_note_text = old_note["note"]
    previous = {
        model: stored(store, model) for model in ("leads", "contacts", "opportunities", "tasks", "activities")
    }

    emu.clock.advance(60)  # type: ignore[attr-defined]
    await call(close, "PUT", f"/lead/{ids['lead0']}/", description="Now a customer")
    await call(close, "PUT", f"/contact/{contact_id}/", title="CFO")
    await call(close, "PUT", f"/opportunity/{ids['opportunity0']}/", note="second")
    await call(close, "PUT", f"/task/{ids['task0']}/", text="Call back Monday")
    # A note created long before the newest activity: only the event log can reveal its edit.
    await call(close, "PUT", f"/activity/note/{old_note['id']}/", note="met them twice")
    emu.clock.advance(60)  # type: ignore[attr-defined]
    await run_sync(emu, store)

    assert_store_matches(emu, store)
    changes = by_record(store.changes(seq))
    assert set(changes) == {ids["lead0"], contact_id, ids["opportunity0"], ids["task0"], old_note["id"]}
    assert all(c.kind == "updated" for c in changes.values())
    for record_id, change in changes.items():
        model = change.model
        before_copy, now = previous[model][record_id], truth(emu, model)[record_id]
        differing = {k for k in set(before_copy) | set(now) if before_copy.get(k) != now.get(k)}
        assert set(change.changed_fields) == differing
        assert change.before == {k: before_copy.get(k) for k in differing if k in before_copy}
        assert change.after == {k: now.get(k) for k in differing if k in now}
    lead = changes[ids["lead0"]]
    assert lead.before is not None and lead.after is not None
    assert (lead.before["description"], lead.after["description"]) == (old["lead"], "Now a customer")
    contact = changes[contact_id]
    assert contact.before is not None and contact.after is not None
    assert (contact.before["title"], contact.after["title"]) == (old["contact"], "CFO")
    for record_id, field, before, after in (
        (ids["opportunity0"], "note", "first", "second"),
        (ids["task0"], "text", "Call back", "Call back Monday"),
        (old_note["id"], "note", old_note_text, "met them twice"),
    ):
        change = changes[record_id]
        assert field in change.changed_fields
        assert change.before is not None and change.after is not None
        assert (change.before[field], change.after[field]) == (before, after)


async def test_deletions_of_every_kind_become_removed_changes_including_a_lead_cascade(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    ids = await populate(close, emu)
    await run_sync(emu, store)
    seq = store.last_seq()
    lone_contact = emu.org.leads[ids["lead0"]]["contact_ids"][0]
    cascaded = {
        ids["lead1"],
        *emu.org.leads[ids["lead1"]]["contact_ids"],
        *(r["id"] for kind in ("opportunity", "task", "activity") for r in emu.org.records[kind].values()
          if r.get("lead_id") == ids["lead1"]),
    }  # fmt: skip
    last_copies = {
        record_id: record
        for model in ("leads", "contacts", "opportunities", "tasks", "activities")
        for record_id, record in stored(store, model).items()
    }

    emu.clock.advance(60)  # type: ignore[attr-defined]
    await call(close, "DELETE", f"/contact/{lone_contact}/")
    await call(close, "DELETE", f"/opportunity/{ids['opportunity0']}/")
    await call(close, "DELETE", f"/task/{ids['task0']}/")
    await call(close, "DELETE", f"/activity/note/{ids['note0']}/")
    await call(close, "DELETE", f"/lead/{ids['lead1']}/")
    emu.clock.advance(60)  # type: ignore[attr-defined]
    await run_sync(emu, store)

    assert_store_matches(emu, store)
    removed = {lone_contact, ids["opportunity0"], ids["task0"], ids["note0"]} | cascaded
    changes = store.changes(seq)
    # Deleting the contact bumps its lead; nothing else may change.
    assert {c.record_id for c in changes if c.kind == "removed"} == removed
    assert {c.record_id for c in changes if c.kind != "removed"} <= {ids["lead0"]}
    for change in changes:
        if change.kind == "removed":
            assert change.before == last_copies[change.record_id]
            assert change.after is None and change.changed_fields == []
    assert store.get("leads", ids["lead1"]) is None
    assert store.get("leads", ids["lead1"], include_deleted=True) is not None


async def test_renamed_and_added_custom_fields_rebuild_the_views_with_new_column_names(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    await run_sync(emu, store)
    field = next(iter(emu.org.custom_fields["lead"].values()))
    columns, _ = store.query("select * from leads_view")
    assert field["name"] in columns

    emu.clock.advance(60)  # type: ignore[attr-defined]
    await call(close, "PUT", f"/custom_field/lead/{field['id']}/", name="Renamed Field")
    await call(close, "POST", "/custom_field/lead/", name="Brand New Field", type="text")
    emu.clock.advance(60)  # type: ignore[attr-defined]
    seq = store.last_seq()
    result = await run_sync(emu, store)

    assert "leads_view" in result.views_rebuilt
    columns, rows = store.query("select * from leads_view")
    assert "Renamed Field" in columns and "Brand New Field" in columns
    assert field["name"] not in columns or any(
        f["name"] == field["name"] for f in emu.org.fields_for("lead") if f["id"] != field["id"]
    )
    assert len(rows) == len(emu.org.leads)
    logged = kinds(store.changes(seq))
    assert logged == {("custom_fields", "updated"): 1, ("custom_fields", "added"): 1}


async def test_paging_survives_small_skip_caps_and_expiring_search_cursors(
    clock: FakeClock, store: Store
) -> None:
    # Pages of at most 4 (the engine learns the maximum from Close's 400), offsets capped at 3:
    # every list needs several pages, and offset paging would be refused after the first.
    config = EmulatorConfig(
        # Reference lists (a few dozen rows) are read by offset; they keep realistic caps.
        skip_caps={"default": 3, "lead": 3, "contact": 3, "custom_field": 1000, "user": 1000},
        limit_max={"default": 4, "lead": 4, "contact": 4, "event": 50},
        search_max_results=7,
    )
    emu = Emulator(config, clock=clock, seed=9, leads=25)
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
    ) as http:
        for lead_id in sorted(emu.org.leads)[:12]:
            clock.advance(1)
            await call(http, "POST", "/activity/note/", lead_id=lead_id, note="hello")
            await call(http, "POST", "/opportunity/", lead_id=lead_id, value=5)
    expired = 0

    def expire_now_and_then(progress: Any) -> None:
        nonlocal expired
        if progress.stream in ("leads", "contacts") and progress.requests % 2 == 1:
            emu.search.expire_cursors()
            expired += 1

    await run_sync(emu, store, progress=expire_now_and_then)

    assert expired > 0
    assert_store_matches(emu, store)
    assert len(emu.org.records["activity"]) > 3 * 4 and len(emu.org.records["opportunity"]) > 3 * 4
    refused = [r for r in emu.request_log if r.status == 400]
    assert refused and all("_limit=" in r.query for r in refused)  # only the limit probes failed


async def test_an_event_log_gap_older_than_retention_is_repaired_by_reconciliation(
    emu: Emulator, close: httpx2.AsyncClient, store: Store
) -> None:
    ids = await populate(close, emu)
    await run_sync(emu, store)
    seq = store.last_seq()
    await call(close, "DELETE", f"/opportunity/{ids['opportunity1']}/")
    await call(close, "DELETE", f"/activity/call/{ids['call1']}/")
    lone_contact = emu.org.leads[ids["lead0"]]["contact_ids"][-1]
    await call(close, "DELETE", f"/contact/{lone_contact}/")
    emu.clock.advance(31 * 86_400)  # type: ignore[attr-defined]  # the deletion events expire

    result = await run_sync(emu, store)

    assert {"leads", "contacts", "opportunities", "tasks", "activities"} <= set(result.reconciled)
    assert_store_matches(emu, store)
    removed = {c.record_id for c in store.changes(seq) if c.kind == "removed"}
    assert removed == {ids["opportunity1"], ids["call1"], lone_contact}


async def test_reconcile_on_request_removes_records_deleted_without_an_event(
    emu: Emulator, store: Store
) -> None:
    await run_sync(emu, store)
    seq = store.last_seq()
    victim = sorted(emu.org.leads)[0]
    for contact_id in emu.org.leads[victim]["contact_ids"]:
        emu.org.remove("contact", contact_id)
    emu.org.remove("lead", victim)  # behind the API's back: no event is recorded

    await run_sync(emu, store)
    assert victim in stored(store, "leads")  # the event log cannot know

    # Records written within the lookback are never tombstoned (lists lag behind writes).
    emu.clock.advance(DEFAULT_LOOKBACK + 1)  # type: ignore[attr-defined]
    result = await run_sync(emu, store, reconcile=True)
    assert "leads" in result.reconciled
    assert_store_matches(emu, store)
    assert victim in {c.record_id for c in store.changes(seq) if c.kind == "removed"}
