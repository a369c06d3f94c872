"""Activities the list walk cannot see, event-log gaps, and whose bookkeeping a commit touches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.close._pagination import KeysetIncomplete, keyset
from closeflow.emulator import Emulator, EmulatorConfig
from closeflow.sync import EVENT_RETENTION, Store, sync
from tests.sync._helpers import assert_store_matches, client_of, run_sync, stored


@pytest.fixture
def emu(clock: FakeClock) -> Emulator:
    return Emulator(clock=clock, seed=7, leads=6)


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


def notes(emu: Emulator) -> list[str]:
    return sorted(i for i, r in emu.org.records["activity"].items() if r["_type"] == "Note")


async def test_an_activity_created_with_a_backdated_date_created_is_fetched_from_its_created_event(
    emu: Emulator, close: httpx2.AsyncClient, clock: FakeClock, store: Store
) -> None:
    await run_sync(emu, store)
    clock.advance(3600)
    lead = sorted(emu.org.leads)[0]
    note = await call(
        close,
        "POST",
        "/activity/note/",
        lead_id=lead,
        note="imported",
        date_created="2020-01-01T00:00:00+00:00",
    )
    clock.advance(60)

    await run_sync(emu, store)

    assert store.get("activities", note["id"]) is not None
    assert_store_matches(emu, store)


async def test_reconciliation_fetches_activities_close_lists_but_the_store_lacks(
    emu: Emulator, clock: FakeClock, store: Store
) -> None:
    await run_sync(emu, store)
    missing = notes(emu)[0]
    # Lost locally (as if a list walk never returned it): tombstoned without Close knowing.
    store.commit_page("test", "activities", removals=[missing], now=datetime.fromtimestamp(clock.now(), UTC))
    clock.advance(3600)

    result = await run_sync(emu, store, reconcile=True)

    assert "activities" in result.reconciled
    assert missing in stored(store, "activities")


async def test_a_gap_is_remembered_until_every_gap_model_reconciled_even_when_a_stream_failed(
    emu: Emulator, close: httpx2.AsyncClient, clock: FakeClock, store: Store
) -> None:
    await run_sync(emu, store)
    opportunity = sorted(emu.org.records["opportunity"])[0]
    await call(close, "DELETE", f"/opportunity/{opportunity}/")
    clock.advance(EVENT_RETENTION + 86_400)
    emu.faults.fail_next(1000, status=400, method="GET", path_pattern=r"/opportunity/")
    async with client_of(emu) as client:
        failed_run = await sync(client, store)
    assert "opportunities" not in failed_run.reconciled
    emu.faults.reset()
    clock.advance(3600)

    second = await run_sync(emu, store)

    assert "opportunities" in second.reconciled
    assert opportunity not in stored(store, "opportunities")
    assert_store_matches(emu, store)
    third = await run_sync(emu, store)
    assert third.reconciled == []


async def test_the_gap_test_counts_the_lookback(emu: Emulator, clock: FakeClock, store: Store) -> None:
    await run_sync(emu, store)
    clock.advance(EVENT_RETENTION - 60)  # the position is inside retention, position - lookback is not

    result = await run_sync(emu, store, lookback=300)

    assert "leads" in result.reconciled


async def test_an_activity_edit_whose_event_expired_is_read_again_after_a_gap(
    emu: Emulator, close: httpx2.AsyncClient, clock: FakeClock, store: Store
) -> None:
    await run_sync(emu, store)
    note = notes(emu)[0]
    clock.advance(3600)
    await call(close, "PUT", f"/activity/note/{note}/", note="edited while closeflow was off")
    clock.advance(EVENT_RETENTION + 86_400)

    await run_sync(emu, store)

    assert (store.get("activities", note) or {}).get("note") == "edited while closeflow was off"
    assert_store_matches(emu, store)


async def test_refetching_many_edited_activities_learns_the_lists_limit_maximum(
    clock: FakeClock, store: Store
) -> None:
    limits = {"lead": 200, "contact": 200, "default": 1000, "event": 50, "activity.note": 50}
    emu = Emulator(EmulatorConfig(limit_max=limits), clock=clock, seed=7, leads=6)
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
    ) as close:
        for _ in range(60):
            await call(close, "POST", "/activity/note/", lead_id=sorted(emu.org.leads)[0], note="n")
        clock.advance(60)
        await run_sync(emu, store)
        clock.advance(3600)
        for note in notes(emu)[:60]:
            await call(close, "PUT", f"/activity/note/{note}/", note="edited")
    clock.advance(120)

    await run_sync(emu, store)

    assert_store_matches(emu, store)


async def test_the_event_log_and_views_are_nobodys_cursor_and_leave_last_sync_alone(
    emu: Emulator, clock: FakeClock, store: Store
) -> None:
    await run_sync(emu, store)
    before = {m.name: m.last_sync for m in store.models()}
    clock.advance(3600)

    await run_sync(emu, store, models=["activities"])

    infos = {m.name: m for m in store.models()}
    assert infos["leads"].last_sync == before["leads"]
    assert sorted(infos["leads"].cursor or {}) == ["leads"]
    assert "views" not in (infos["custom_fields"].cursor or {})


async def test_a_keyset_walk_that_must_skip_records_raises_when_asked_to_be_complete(
    clock: FakeClock,
) -> None:
    emu = Emulator(EmulatorConfig(search_max_results=4), clock=clock, seed=7, leads=12)
    async with CloseClient(
        emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock
    ) as client:
        async with httpx2.AsyncClient(
            transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
        ) as close:
            clock.advance(3600)
            for lead in sorted(emu.org.leads)[:8]:  # a bulk edit: eight leads in one instant
                await call(close, "PUT", f"/lead/{lead}/", description="bulk")
        with pytest.raises(KeysetIncomplete, match="share date_updated"):
            async for _ in keyset(client, "lead", fields=["id"], page_size=2, complete=True):
                pass
