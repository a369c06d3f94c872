"""The executor streams: it reads one chunk ahead at most, and reports progress per record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from closeflow.actions import InsertLead, Outcome, Summary, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator


async def test_outcomes_arrive_before_the_input_is_read_whole(
    client: CloseClient, emulator: Emulator
) -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(30):
            pulled += 1
            yield {"name": f"Lead {i}"}

    run = run_action(client, InsertLead(mappings={"name": "name"}), rows(), chunk_size=10)
    first = await run.__aiter__().__anext__()

    assert first.status == "created" and first.row == 1
    assert pulled == 10


async def test_async_input_and_progress_callback(client: CloseClient, emulator: Emulator) -> None:
    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(5):
            yield {"name": f"Lead {i}"}

    seen: list[tuple[str, int]] = []

    def progress(outcome: Outcome, summary: Summary) -> None:
        seen.append((outcome.status, summary.processed))

    run = run_action(client, InsertLead(mappings={"name": "name"}), rows(), progress=progress, chunk_size=2)
    outcomes = await run.collect()

    assert [o.row for o in outcomes] == [1, 2, 3, 4, 5]
    assert seen == [("created", n) for n in range(1, 6)]
    assert len(emulator.org.leads) == 5
