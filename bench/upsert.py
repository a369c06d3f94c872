"""How many requests does a contact upsert cost, and how close to Close's write ceiling does it run?

2,000 contact upserts by email, half of them matching contacts that already exist (with a new
title, so each is a real update), the other half new contacts under existing leads. Two runs,
side by side in one process, each against a fresh, identical in-process emulator whose rate
limit is enforced on the real clock (so throughput is real):

  closeflow — closeflow.actions.run_action(UpsertContacts(...)): batched lookups, one write per
              record that changes something
  naive     — what a simple integration does with the plain client: per record, one
              /data/search/ for the email, then one PUT or POST (same concurrency)

Prints requests per record, writes/s, and throughput as a fraction of the emulator's write
ceiling (writes/s ÷ the contact:write limit per second), plus any 429s.
Usage: python bench/upsert.py [--records 2000] [--limit 100] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from closeflow._clock import SystemClock
from closeflow.actions import UpsertContacts, run_action
from closeflow.close import (
    CloseClient,
    Condition,
    CustomFieldRegistry,
    RateBudgets,
    compile_query,
    search_body,
)
from closeflow.emulator import Emulator, EmulatorConfig, RateLimitConfig

CONTACTS_PER_LEAD = 10


@dataclass
class Result:
    name: str
    seconds: float
    requests: int
    writes: int
    rejected: int


async def fresh_emulator(args: argparse.Namespace) -> tuple[Emulator, list[dict[str, Any]]]:
    """An emulator holding the contacts half the input matches; returns it and the input records."""
    # Seed unthrottled, then enforce the limit: the bench measures the upserts, not the set-up.
    limits = RateLimitConfig(default=1_000_000)
    emulator = Emulator(EmulatorConfig(rate_limit=limits), clock=SystemClock(), seed=42)
    matching = args.records // 2
    leads: list[str] = []
    records: list[dict[str, Any]] = []
    async with httpx2.AsyncClient(
        transport=emulator.transport(), base_url=emulator.base_url, auth=(emulator.api_key, "")
    ) as http:
        for i in range(args.records):
            if i % CONTACTS_PER_LEAD == 0:
                lead = (
                    await http.post("/lead/", json={"name": f"Bench Lead {i // CONTACTS_PER_LEAD}"})
                ).json()
                leads.append(lead["id"])
            email = f"person{i:05d}@bench.example"
            if i < matching:
                body: dict[str, Any] = {"lead_id": leads[-1], "name": f"Person {i}", "title": "Old title"}
                body["emails"] = [{"email": email, "type": "office"}]
                (await http.post("/contact/", json=body)).raise_for_status()
            records.append(
                {"email": email, "name": f"Person {i}", "title": "New title", "lead_id": leads[-1]}
            )
    limits.default = args.limit
    await asyncio.sleep(limits.window * 1.1)  # start in a window the set-up did not use
    return emulator, records


def _client(emulator: Emulator, args: argparse.Namespace) -> CloseClient:
    # Its own budget registry: both runs talk to "the same" organization id and must not share state.
    return CloseClient(
        emulator.api_key,
        base_url=emulator.base_url,
        transport=emulator.transport(),
        concurrency=args.concurrency,
        budgets=RateBudgets(),
    )


async def run_closeflow(emulator: Emulator, records: list[dict[str, Any]], args: argparse.Namespace) -> float:
    spec = UpsertContacts(
        match_property="email",
        match_value="email",
        email="email",
        associated_lead_id="lead_id",
        mappings={"name": "name", "title": "title"},
    )
    async with _client(emulator, args) as client:
        started = time.perf_counter()
        run = run_action(client, spec, records, concurrency=args.concurrency)
        async for outcome in run:
            if outcome.status not in ("created", "updated"):
                raise SystemExit(f"unexpected outcome: {outcome.to_dict()}")
        return time.perf_counter() - started


async def run_naive(emulator: Emulator, records: list[dict[str, Any]], args: argparse.Namespace) -> float:
    async with _client(emulator, args) as client:
        registry = CustomFieldRegistry(client)
        queue = iter(records)

        async def worker() -> None:
            for record in queue:
                query = await compile_query(Condition("email", "=", record["email"]), "contact", registry)
                found = await client.post(
                    "/data/search/", json=search_body(query, "contact", fields=["id"], limit=1)
                )
                fields = {"name": record["name"], "title": record["title"]}
                if found["data"]:
                    await client.put(f"/contact/{found['data'][0]['id']}/", json=fields)
                else:
                    emails = [{"email": record["email"], "type": "office"}]
                    await client.post(
                        "/contact/", json={**fields, "lead_id": record["lead_id"], "emails": emails}
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return time.perf_counter() - started


async def measure(name: str, args: argparse.Namespace) -> Result:
    emulator, records = await fresh_emulator(args)
    mark = len(emulator.request_log)
    runner = run_closeflow if name == "closeflow" else run_naive
    seconds = await runner(emulator, records, args)
    log = emulator.request_log[mark:]
    writes = sum(
        1 for r in log if r.path.startswith("/contact/") and r.method in ("POST", "PUT") and r.status < 300
    )
    return Result(
        name, seconds, sum(1 for r in log if r.status != 429), writes, sum(1 for r in log if r.status == 429)
    )


async def main(args: argparse.Namespace) -> None:
    print(
        f"{args.records} contact upserts, half matching; contact:write limit {args.limit}/s; "
        f"concurrency {args.concurrency}"
    )
    results = [await measure("closeflow", args), await measure("naive", args)]
    print(
        f"{'':10} {'req/record':>10} {'writes':>7} {'seconds':>8} {'writes/s':>9} "
        f"{'of ceiling':>10} {'429s':>5}"
    )
    for r in results:
        rate = r.writes / r.seconds
        print(
            f"{r.name:10} {r.requests / args.records:10.3f} {r.writes:7d} {r.seconds:8.2f} {rate:9.1f} "
            f"{rate / args.limit:10.2f} {r.rejected:5d}"
        )
    ours, naive = results
    print(
        f"naive / closeflow: {naive.requests / ours.requests:.2f}× the requests, "
        f"{naive.seconds / ours.seconds:.2f}× the time"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument(
        "--limit", type=int, default=100, help="contact:write requests per second (and every other group)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
