"""Every call is a run in the run ledger (source mcp) with its arguments redacted; secrets never reach
the ledger or the answer; over HTTP only a request with the bearer token reaches the protocol."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

from closeflow.cli import app
from closeflow.close import CloseClient, ConfigError
from closeflow.emulator import Emulator
from closeflow.mcp import http_app, redact
from closeflow.plays import SqliteRunLedger
from tests._served import stop
from tests.conftest import Served
from tests.mcp.conftest import Build, answer, connected, writes

TOKEN = "mcp-test-token-0123456789"
API_KEY_RECORD = "sk_live_abcdefghijklmnop"
KNOWN_SECRET = "cfkey_0123456789abcdef"


@pytest.fixture
async def lead_id(client: CloseClient) -> str:
    return str((await client.post("/lead/", json={"name": f"Acme {KNOWN_SECRET}"}))["id"])


async def test_every_call_is_one_run_with_source_mcp_named_after_its_tool(
    build: Build, run_ledger: SqliteRunLedger, emulator: Emulator, lead_id: str, tmp_path: Path
) -> None:
    note = {"records": [{"lead_id": lead_id, "note": "Called, asked for pricing."}]}
    async with connected(build("read,write")) as session:
        read = await session.call_tool("search_leads", {"fields": ["display_name"]})
        plan = await session.call_tool("insert_note", note)
        token = answer(plan)["confirmation_token"]
        execute = await session.call_tool("insert_note", {**note, "confirmation_token": token})
        refused = await session.call_tool("insert_note", {**note, "confirmation_token": token})  # used up
        invalid = await session.call_tool("search_leads", {"limit": "ten"})
    assert [r.is_error for r in (read, plan, execute, refused, invalid)] == [False, False, False, True, True]
    assert writes(emulator) == [("POST", "/lead/"), ("POST", "/activity/note/")]  # the lead, one note

    runs = run_ledger.runs(source="mcp")
    assert {run.id for run in runs} == {answer(r)["run_id"] for r in (read, plan, execute, refused, invalid)}
    assert Counter((run.play, run.status) for run in runs) == Counter(
        {
            ("search_leads", "succeeded"): 1,
            ("search_leads", "failed"): 1,
            ("insert_note", "succeeded"): 2,
            ("insert_note", "failed"): 1,
        }
    )
    by_id = {run.id: run for run in runs}
    calls = (read, plan, execute, refused, invalid)
    modes = [by_id[answer(r)["run_id"]].context["mode"] for r in calls]
    assert modes == ["read", "plan", "execute", "execute", "read"]
    assert by_id[answer(refused)["run_id"]].error == answer(refused)["error"]
    assert "already used" in answer(refused)["error"]
    assert answer(invalid)["error"].startswith("invalid arguments for search_leads: limit:")
    assert by_id[answer(invalid)["run_id"]].context["input"] == {"limit": "ten"}

    listed = CliRunner().invoke(
        app,
        ["runs", "list", "--source", "mcp", "--db", str(tmp_path / "closeflow.db")],
        env={"COLUMNS": "400"},
    )
    assert listed.exit_code == 0, listed.output
    assert "5 run(s)" in listed.output
    rows = [line.split("│")[1:5] for line in listed.output.splitlines() if line.startswith("│")]
    assert Counter((run, play, source) for run, play, source, _status in map(_stripped, rows)) == Counter(
        (run.id, run.play, "mcp") for run in runs
    )


async def test_a_call_to_an_unknown_tool_is_an_error_result_and_a_failed_run(
    build: Build, run_ledger: SqliteRunLedger
) -> None:
    async with connected(build()) as session:
        result = await session.call_tool("delete_everything", {"really": True})
        after = await session.call_tool("list_models", {})
    assert result.is_error
    assert answer(result)["error"].startswith("no tool named 'delete_everything' on this server (tools: ")
    assert after.is_error and "closeflow sync" in answer(after)["error"]  # the session goes on
    [run] = [run for run in run_ledger.runs(source="mcp") if run.play == "delete_everything"]
    assert (run.id, run.status, run.context["input"]) == (
        answer(result)["run_id"],
        "failed",
        {"really": True},
    )


def _stripped(cells: list[str]) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in cells)


async def test_secret_looking_record_values_are_stored_as_stars(
    build: Build, run_ledger: SqliteRunLedger, lead_id: str, tmp_path: Path
) -> None:
    record = {"lead_id": lead_id, "note": "hello", "api_key": API_KEY_RECORD, "password": "hunter2-hunter2"}
    async with connected(build("read,write")) as session:
        result = await session.call_tool("insert_note", {"records": [record]})
    assert not result.is_error, result.content
    [run] = run_ledger.runs(source="mcp")
    assert run.context["input"] == {"records": [{**record, "api_key": "***", "password": "***"}]}
    assert run.nodes[0].input == run.context["input"]
    stored = (tmp_path / "closeflow.db").read_bytes() + _wal(tmp_path / "closeflow.db")
    assert API_KEY_RECORD.encode() not in stored and b"hunter2-hunter2" not in stored


async def test_a_known_secret_is_scrubbed_from_the_stored_run_and_from_the_answer(
    build: Build, run_ledger: SqliteRunLedger, lead_id: str, tmp_path: Path
) -> None:
    server = build("read,write", secrets={"close_api_key": KNOWN_SECRET})
    async with connected(server) as session:
        found = await session.call_tool("search_leads", {"where": f'name = "Acme {KNOWN_SECRET}"'})
        planned = await session.call_tool(
            "insert_note", {"records": [{"lead_id": lead_id, "note": f"the key is {KNOWN_SECRET}"}]}
        )
    assert answer(found)["count"] == 1
    assert answer(found)["records"][0]["display_name"] == "Acme ***"
    assert answer(planned)["outcomes"][0]["changes"][1] == {
        "field": "note",
        "before": None,
        "after": "the key is ***",
    }
    for result in (found, planned):
        assert KNOWN_SECRET not in f"{result.content} {result.structured_content}"
    runs = {run.play: run for run in run_ledger.runs(source="mcp")}
    assert runs["search_leads"].context["input"]["where"] == 'name = "Acme ***"'
    assert runs["insert_note"].context["input"]["records"][0]["note"] == "the key is ***"
    stored = (tmp_path / "closeflow.db").read_bytes() + _wal(tmp_path / "closeflow.db")
    assert KNOWN_SECRET.encode() not in stored


def _wal(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_redact_hides_secret_keys_at_any_depth_and_keeps_a_top_level_key_input() -> None:
    arguments = {
        "key": "email",
        "records": [
            {"email": "a@b.co", "X-Api-Key": "abc", "nested": {"password": "p", "ok": [{"token": 1}]}}
        ],
        "headers": {"Authorization": "Bearer abc", "Accept": "json"},
        "note": f"prefix {KNOWN_SECRET} suffix",
    }
    assert redact(arguments, {"close_api_key": KNOWN_SECRET}) == {
        "key": "email",
        "records": [
            {"email": "a@b.co", "X-Api-Key": "***", "nested": {"password": "***", "ok": [{"token": "***"}]}}
        ],
        "headers": {"Authorization": "***", "Accept": "json"},
        "note": "prefix *** suffix",
    }
    assert redact({"records": [{"key": "k1"}]}, {}) == {"records": [{"key": "***"}]}
    assert redact({"session_id": "s"}, {}) == {"session_id": "***"}


# --- HTTP: bearer token --------------------------------------------------------------------------


def test_http_off_loopback_needs_a_long_enough_token(build: Build) -> None:
    server = build().mcp_server()
    with pytest.raises(ConfigError, match=r"binding to 0\.0\.0\.0 exposes Close to the network"):
        http_app(server, host="0.0.0.0", token=None)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        http_app(build().mcp_server(), host="127.0.0.1", token="short-token")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}]
)
async def test_http_requests_without_the_right_bearer_token_get_401(
    build: Build, headers: dict[str, str]
) -> None:
    asgi = http_app(build().mcp_server(), host="0.0.0.0", token=TOKEN)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=asgi), base_url="http://testserver"
    ) as http:
        response = await http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers
        )
    assert response.status_code == 401
    assert response.json() == {"error": "missing or wrong bearer token"}
    assert response.headers["www-authenticate"] == 'Bearer realm="closeflow"'


@pytest.fixture
def http_server(served_emulator: Served, tmp_path: Path) -> Iterator[str]:
    """`closeflow mcp --http --port 0` in a subprocess; yields the URL it announces."""
    env = {
        **os.environ,
        "CLOSE_API_KEY": served_emulator.emulator.api_key,
        "CLOSEFLOW_MCP_TOKEN": TOKEN,
        "CLOSEFLOW_SEARCH_LAG": "0",
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "closeflow", "mcp", "--http", "--port", "0"]
    command += ["--base-url", served_emulator.base_url]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        yield _announced_url(process)
    finally:
        stop(process)


def _announced_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and selector.select(timeout=deadline - time.monotonic()):
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r" at (http://127\.0\.0\.1:\d+/mcp)$", line.strip())
            if found:
                return found.group(1)
    raise AssertionError(f"closeflow mcp --http did not announce its URL; stderr: {''.join(seen)!r}")


async def test_streamable_http_round_trip_with_the_bearer_token(
    http_server: str, served_emulator: Served, tmp_path: Path
) -> None:
    authorized = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    async with authorized, Client(streamable_http_client(http_server, http_client=authorized)) as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        result = await session.call_tool("search_leads", {"fields": ["display_name"], "limit": 100})
    assert listed == {"search_leads", "search_contacts", "list_models", "describe_model", "query_sql"}
    assert not result.is_error, result.content
    found = answer(result)
    assert found["count"] == 100
    assert {record["id"] for record in found["records"]} <= set(served_emulator.emulator.org.leads)
    assert len({record["id"] for record in found["records"]}) == 100

    async with httpx2.AsyncClient(timeout=30) as anonymous:
        refused = await anonymous.post(
            http_server,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert refused.status_code == 401

    ledger = SqliteRunLedger(str(tmp_path / "closeflow.db"))
    try:
        assert [(run.play, run.status) for run in ledger.runs(source="mcp")] == [
            ("search_leads", "succeeded")
        ]
    finally:
        ledger.close()
