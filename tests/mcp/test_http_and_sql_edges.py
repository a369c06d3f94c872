"""Edges of the transport and of query answers: DNS-rebinding protection on every loopback address,
the bearer scheme case-insensitive, and SQL values that JSON cannot carry made safe."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from closeflow.mcp import http_app
from closeflow.sync import open_store
from closeflow.sync.store import ModelSpec
from tests.mcp.conftest import Build, answer, connected

TOKEN = "a-bearer-token-long-enough-0123"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def _post(app: object, host: str, headers: dict[str, str]) -> int:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=f"http://{host}",
    ) as http:
        return (await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **headers})).status_code


@pytest.mark.parametrize("bound", ["127.0.0.1", "127.0.0.2", "0:0:0:0:0:0:0:1"])
async def test_every_loopback_address_refuses_a_foreign_host_header(build: Build, bound: str) -> None:
    server = build().mcp_server()
    app = http_app(server, host=bound, token=None)
    async with server.session_manager.run():
        assert await _post(app, "evil.example:8770", {}) == 421  # a rebound name: refused


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_bearer_scheme_is_case_insensitive_and_the_token_is_not(build: Build, scheme: str) -> None:
    server = build().mcp_server()
    app = http_app(server, host="0.0.0.0", token=TOKEN)
    async with server.session_manager.run():
        assert await _post(app, "testserver", {"Authorization": f"{scheme} {TOKEN}"}) == 200
        assert await _post(app, "testserver", {"Authorization": f"{scheme} {TOKEN.upper()}"}) == 401


async def test_sql_values_json_cannot_carry_come_back_safe(build: Build, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = open_store(str(path))
    store.ensure_models([ModelSpec("leads")])
    store.close()
    sql = "select 1e999 as inf, -1e999 as neg, x'00ff' as blob, hex(zeroblob(6000)) as long_text"
    async with connected(build(store_target=str(path))) as session:
        result = await session.call_tool("query_sql", {"sql": sql})
    text = result.content[0].text  # type: ignore[union-attr]
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    [row] = answer(result)["rows"]
    assert (row["inf"], row["neg"], row["blob"]) == (None, None, "x'00ff'")
    assert row["long_text"] == "0" * 10_000 + "… (12,000 characters; use substr() for the rest)"


async def test_query_sql_reads_the_data_models_not_the_ledgers_beside_them(
    build: Build, tmp_path: Path
) -> None:
    from closeflow.actions import SqliteLedger
    from closeflow.plays import open_run_ledger

    path = tmp_path / "closeflow.db"  # the CLI's layout: store, run ledger and write ledger in one file
    store = open_store(str(path))
    store.ensure_models([ModelSpec("leads")])
    store.close()
    open_run_ledger(str(path)).close()
    SqliteLedger(path).close()
    async with connected(build(store_target=str(path))) as session:
        leads = await session.call_tool("query_sql", {"sql": "select count(*) as n from leads"})
        runs = await session.call_tool("query_sql", {"sql": "select * from play_runs"})
        writes = await session.call_tool(
            "query_sql", {"sql": "select * from leads join action_ledger on 1=1"}
        )
    assert answer(leads)["rows"] == [{"n": 0}]
    assert runs.is_error and answer(runs)["error"].startswith(
        "play_runs is not readable through this query path"
    )
    assert writes.is_error and "action_ledger is not readable" in answer(writes)["error"]
