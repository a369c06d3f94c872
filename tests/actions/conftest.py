"""Fixtures for the actions tests: a CloseClient wired to the in-process emulator on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from closeflow._clock import FakeClock
from closeflow.actions import SqliteLedger
from closeflow.close import CloseClient
from closeflow.emulator import Emulator


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), clock=clock
    ) as close_client:
        yield close_client


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "closeflow.db")
