"""The client against the in-process emulator (one FakeClock for both): deep keyset walks and
rate-limit pacing behave as against Close."""

from __future__ import annotations

import asyncio

from closeflow._clock import FakeClock
from closeflow.close import CloseClient
from closeflow.emulator import Emulator, EmulatorConfig, RateLimitConfig


def _client(emu: Emulator, clock: FakeClock) -> CloseClient:
    return CloseClient(emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock)


async def test_keyset_reads_three_times_the_per_walk_cap_exactly_once() -> None:
    clock = FakeClock()
    emu = Emulator(config=EmulatorConfig(search_max_results=40), clock=clock, seed=7, leads=120)
    async with _client(emu, clock) as client:
        ids = [record["id"] async for record in client.keyset("lead", page_size=25)]
    assert len(ids) == 120
    assert set(ids) == set(emu.org.leads)
    assert emu.requests("POST", "/data/search/") >= 120 // 40 + 1


async def test_keyset_survives_every_cursor_expiring_mid_walk() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=7, leads=150)
    ids: list[str] = []
    async with _client(emu, clock) as client:
        async for record in client.keyset("lead", page_size=20):
            ids.append(record["id"])
            if len(ids) in (30, 70, 71):
                emu.search.expire_cursors()
    assert len(ids) == 150
    assert set(ids) == set(emu.org.leads)
    assert any(entry.status == 400 for entry in emu.request_log)


async def test_keyset_contacts_carry_requested_fields() -> None:
    clock = FakeClock()
    emu = Emulator(config=EmulatorConfig(search_max_results=30), clock=clock, seed=3, leads=40)
    async with _client(emu, clock) as client:
        contacts = [record async for record in client.keyset("contact", fields=["name"], page_size=20)]
    assert len({c["id"] for c in contacts}) == len(contacts) == len(emu.org.contacts)
    assert all({"id", "date_updated", "name"} <= contact.keys() for contact in contacts)


async def test_eight_workers_make_at_most_two_percent_429s_over_500_requests() -> None:
    clock = FakeClock()
    config = EmulatorConfig(rate_limit=RateLimitConfig(default=10, window=1.0))
    emu = Emulator(config=config, clock=clock, seed=7, leads=20)
    queue = list(range(500))
    start = clock.now()

    async with _client(emu, clock) as client:

        async def worker() -> None:
            while queue:
                queue.pop()
                await client.get("/lead/", params={"_limit": 1})

        await asyncio.gather(*(worker() for _ in range(8)))
    statuses = [entry.status for entry in emu.request_log]
    assert statuses.count(200) == 500
    assert statuses.count(429) <= 10
    # 500 requests at 10 per 1 s window need 50 windows; pacing may lose a few to rounding, not half.
    assert clock.now() - start <= 60
