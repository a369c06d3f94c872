"""Shared fixtures: an in-process emulator on a fake clock, an authenticated client for it, and the
emulator served on a real loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import uvicorn

from closeflow._clock import FakeClock
from closeflow.emulator import Emulator, EmulatorConfig, RateLimitConfig


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a store or ledger lives: a SQLite file, then a fresh Postgres schema (tests that take
    it run on both)."""
    from tests.plays._fixtures import postgres_schema_url

    if request.param == "sqlite":
        yield str(tmp_path / "closeflow.db")
    else:
        yield from postgres_schema_url()


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


# --- the emulator on a real loopback port (uvicorn in a thread), for clients that need TCP ---


@dataclass
class Served:
    emulator: Emulator
    base_url: str


def _serve(emu: Emulator) -> Iterator[Served]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(emu.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the emulator did not start on a loopback port")
        time.sleep(0.02)
    try:
        yield Served(emu, f"http://127.0.0.1:{port}{emu.config.base_path}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served_emulator() -> Iterator[Served]:
    yield from _serve(Emulator(seed=11, leads=120))


@pytest.fixture
def served_rate_limited_emulator() -> Iterator[Served]:
    config = EmulatorConfig(rate_limit=RateLimitConfig(default=4, window=1.0))
    yield from _serve(Emulator(config=config, seed=11, leads=20))
