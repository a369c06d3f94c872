"""What does going through the MCP server cost, next to calling the actions library directly?

The same contact upserts (half of them matching existing contacts with a new title, half new
contacts under existing leads) three ways, side by side in one process, each against a fresh,
identical in-process emulator without a rate limit (so the time is closeflow's own work):

  library     — closeflow.actions.run_action(UpsertContacts(...)) over every record at once
  mcp confirm — an agent through the MCP SDK's in-memory client: per call of --per-call records,
                a plan (lookups only) and then the same call with its confirmation token
  mcp direct  — the same with --no-confirm: one call per --per-call records

Prints requests per record (the plan's extra lookups show here), writes, seconds, and each
way's time as a multiple of the library's.
Usage: python bench/agents.py [--records 1000] [--per-call 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from closeflow._clock import SystemClock
from closeflow.actions import SqliteLedger, UpsertContacts, run_action
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.mcp import AgentServer, Limits, Resources, ServerOptions, parse_tiers
from closeflow.plays import SqliteRunLedger

CONTACTS_PER_LEAD = 10
SPEC = {"match_property": "email", "match_value": "email"}


@dataclass
class Result:
    name: str
    seconds: float
    requests: int
    writes: int
    calls: int


async def fresh_emulator(records: int) -> tuple[Emulator, list[dict[str, Any]]]:
    emulator = Emulator(clock=SystemClock(), seed=42)
    rows: list[dict[str, Any]] = []
    lead = ""
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as http:
        for i in range(records):
            if i % CONTACTS_PER_LEAD == 0:
                lead = (await http.post("/lead/", json={"name": f"Bench Lead {i}"})).json()["id"]
            email = f"person{i:05d}@bench.example"
            if i < records // 2:
                body = {"lead_id": lead, "name": f"Person {i}", "title": "Old", "emails": [{"email": email}]}
                (await http.post("/contact/", json=body)).raise_for_status()
            rows.append({"email": email, "name": f"Person {i}", "title": "New", "lead_id": lead})
    emulator.request_log.clear()
    return emulator, rows


def _counts(emulator: Emulator) -> tuple[int, int]:
    writes = sum(
        1 for r in emulator.request_log if r.method in ("POST", "PUT") and "/data/search" not in r.path
    )
    return len(emulator.request_log), writes


def _client(emulator: Emulator) -> CloseClient:
    return CloseClient(
        emulator.api_key, base_url=emulator.base_url, transport=emulator.transport(), search_lag=0
    )


async def library(records: int, folder: Path) -> Result:
    emulator, rows = await fresh_emulator(records)
    ledger = SqliteLedger(folder / "library.db")
    async with _client(emulator) as client:
        started = time.perf_counter()
        # The spec an agent's call amounts to (the MCP tools' defaults map same-named keys).
        spec = UpsertContacts(
            **SPEC, email="email", associated_lead_id="lead_id", mappings={"name": "name", "title": "title"}
        )
        run = run_action(client, spec, rows, ledger=ledger)
        await run.collect()
        seconds = time.perf_counter() - started
    ledger.close()
    return Result("library", seconds, *_counts(emulator), calls=0)


async def through_mcp(records: int, per_call: int, confirm: bool, folder: Path) -> Result:
    emulator, rows = await fresh_emulator(records)
    name = "mcp confirm" if confirm else "mcp direct"
    writes_db, runs_db = SqliteLedger(folder / f"{name}.writes.db"), folder / f"{name}.runs.db"
    run_ledger = SqliteRunLedger(str(runs_db))
    calls = 0
    async with _client(emulator) as client:
        resources = Resources(
            client=client, write_ledger=writes_db, run_ledger=run_ledger, clock=client.clock
        )
        options = ServerOptions(
            allow=parse_tiers("read,write"), confirm=confirm, limits=Limits(max_records=per_call)
        )
        server = AgentServer(resources, options).mcp_server()
        started = time.perf_counter()
        async with Client(server, mode="legacy") as session:
            for start in range(0, len(rows), per_call):
                arguments = {"records": rows[start : start + per_call], **SPEC}
                result = await session.call_tool("upsert_contacts", arguments)
                calls += 1
                if confirm:
                    token = json.loads(result.content[0].text)["confirmation_token"]  # type: ignore[union-attr]
                    result = await session.call_tool(
                        "upsert_contacts", {**arguments, "confirmation_token": token}
                    )
                    calls += 1
                assert not result.is_error, result.content
        seconds = time.perf_counter() - started
    writes_db.close()
    run_ledger.close()
    return Result(name, seconds, *_counts(emulator), calls=calls)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--per-call", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = [
            await library(args.records, Path(folder)),
            await through_mcp(args.records, args.per_call, True, Path(folder)),
            await through_mcp(args.records, args.per_call, False, Path(folder)),
        ]
    base = results[0]
    print(
        f"{args.records} contact upserts (half updates, half creates), {args.per_call} records per MCP call"
    )
    header = ("way", "calls", "requests", "req/record", "writes", "seconds", "× library")
    print(
        f"{header[0]:<12} "
        + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], (6, 9, 11, 7, 8, 10), strict=True))
    )
    for r in results:
        print(
            f"{r.name:<12} {r.calls:>6} {r.requests:>9} {r.requests / args.records:>11.3f} {r.writes:>7} "
            f"{r.seconds:>8.2f} {r.seconds / base.seconds:>10.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
