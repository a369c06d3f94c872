"""Shared fixtures: an in-process emulator on a fake clock, and an authenticated client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Emulator:
    """An org with users, statuses, a pipeline and custom fields of every type, and no leads."""
    return Emulator(clock=clock, seed=11)


@pytest.fixture
async def close(emulator: Emulator) -> AsyncIterator[httpx2.AsyncClient]:
    """An httpx2 client authenticated with the emulator's API key, as a Close integration would be."""
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as client:
        yield client
