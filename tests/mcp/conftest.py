"""Fixtures for the MCP tests: the agent server over the in-process emulator, reached through the
MCP SDK's own in-memory client, so every test speaks the protocol an agent speaks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from closeflow._clock import FakeClock
from closeflow.actions import SqliteLedger
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.mcp import AgentServer, Resources, ServerOptions, parse_config
from closeflow.plays import SqliteRunLedger


@pytest.fixture
async def client(emulator: Emulator, clock: FakeClock) -> AsyncIterator[CloseClient]:
    async with CloseClient(
        emulator.api_key,
        base_url=emulator.base_url,
        transport=emulator.transport(),
        clock=clock,
        search_lag=0,
    ) as close_client:
        yield close_client


@pytest.fixture
def run_ledger(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteRunLedger]:
    ledger = SqliteRunLedger(str(tmp_path / "closeflow.db"), clock=clock)
    yield ledger
    ledger.close()


@pytest.fixture
def write_ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "writes.db")
    yield ledger
    ledger.close()


Build = Callable[..., AgentServer]


@pytest.fixture
def build(
    client: CloseClient,
    run_ledger: SqliteRunLedger,
    write_ledger: SqliteLedger,
    clock: FakeClock,
    tmp_path: Path,
) -> Build:
    """``build(allow="read,write", confirm=True, config={...}, catalog=None, **limits)`` → AgentServer."""
    from closeflow.mcp import Limits, parse_tiers

    def make(
        allow: str = "read",
        *,
        confirm: bool = True,
        config: dict[str, Any] | None = None,
        catalog: Any = None,
        store_target: str | None = None,
        secrets: dict[str, str] | None = None,
        **limits: int,
    ) -> AgentServer:
        resources = Resources(
            client=client,
            write_ledger=write_ledger,
            run_ledger=run_ledger,
            clock=clock,
            catalog=catalog,
            store_target=store_target or str(tmp_path / "store.db"),
        )
        options = ServerOptions(
            allow=parse_tiers(allow),
            confirm=confirm,
            config=parse_config(config),
            limits=Limits(**limits),
            secrets=secrets or {},
        )
        return AgentServer(resources, options)

    return make


@asynccontextmanager
async def connected(server: AgentServer) -> AsyncIterator[Client]:
    """An MCP client session with ``server`` over the SDK's in-memory transport."""
    async with Client(server.mcp_server(), mode="legacy") as session:
        yield session


def answer(result: Any) -> dict[str, Any]:
    """The JSON answer of a tool call (its text content)."""
    return json.loads(result.content[0].text)


def writes(emulator: Emulator) -> list[tuple[str, str]]:
    """(method, path) of every request that changed Close: anything but GET and the search POST."""
    return [
        (r.method, r.path)
        for r in emulator.request_log
        if r.method != "GET" and not r.path.startswith("/data/search")
    ]
