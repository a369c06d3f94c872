"""`closeflow mcp` as an MCP client configuration starts it: a subprocess speaking MCP over stdio,
here against the emulator on a real port."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests._served import EmulatorProcess, emulator_process
from tests.mcp.conftest import answer


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorProcess]:
    with emulator_process(leads=25) as emulator:
        yield emulator


def _server(served: EmulatorProcess, cwd: Path, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "closeflow", "mcp", "--base-url", served.base_url, *args],
        env={
            "CLOSE_API_KEY": served.api_key,
            "CLOSEFLOW_SEARCH_LAG": "0",
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
        cwd=cwd,
    )


async def test_closeflow_mcp_over_stdio_lists_tools_and_searches_the_emulator(
    served: EmulatorProcess, tmp_path: Path
) -> None:
    async with Client(_server(served, tmp_path), read_timeout_seconds=60) as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        result = await session.call_tool(
            "search_leads", {"fields": ["display_name", "status_label"], "limit": 100}
        )

    assert listed == {"search_leads", "search_contacts", "list_models", "describe_model", "query_sql"}
    assert not result.is_error, result.content
    found = answer(result)
    assert found["count"] == 25  # every seeded lead, none twice
    assert len({record["id"] for record in found["records"]}) == 25
    assert all(set(record) == {"id", "display_name", "status_label"} for record in found["records"])
    # the call is in the run ledger of the working directory's closeflow.db
    from closeflow.plays import open_run_ledger

    ledger = open_run_ledger(str(tmp_path / "closeflow.db"))
    try:
        runs = ledger.runs(source="mcp")
    finally:
        ledger.close()
    assert [(run.play, run.status) for run in runs] == [("search_leads", "succeeded")]


async def test_closeflow_mcp_over_stdio_serves_the_tiers_it_is_allowed(
    served: EmulatorProcess, tmp_path: Path
) -> None:
    async with Client(_server(served, tmp_path, "--allow", "read,write"), read_timeout_seconds=60) as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
    assert "upsert_contacts" in listed
    assert "delete_leads" not in listed
