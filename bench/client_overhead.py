"""What does the client cost per request, beyond the HTTP library it stands on?

Runs the same request mix, side by side in one process, through:
  raw     — a bare httpx2.AsyncClient
  client  — closeflow's CloseClient (rate budget, retries, error classification, JSON decoding)
each against (a) the in-process emulator with rate limits off and (b) a canned MockTransport that
costs almost nothing, so (b) isolates the client's own CPU per request.

Prints requests/second, CPU µs per request, and the client's overhead as ratios.
Usage: python bench/client_overhead.py [--requests 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from closeflow.close import CloseClient, RateBudgets
from closeflow.emulator import Emulator

Send = Callable[[int], Awaitable[Any]]


async def _drive(send: Send, requests: int, concurrency: int) -> tuple[float, float]:
    queue = iter(range(requests))

    async def worker() -> None:
        for i in queue:
            await send(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


def _canned_transport(lead: dict[str, Any]) -> httpx2.MockTransport:
    body = json.dumps(lead).encode()
    headers = {"content-type": "application/json", "RateLimit": "limit=100000, remaining=99999, reset=1"}
    return httpx2.MockTransport(lambda request: httpx2.Response(200, content=body, headers=headers))


async def _measure(
    name: str,
    transport_factory: Callable[[], httpx2.AsyncBaseTransport],
    base_url: str,
    api_key: str,
    paths: list[str],
    args: argparse.Namespace,
) -> dict[str, float]:
    results: dict[str, float] = {}
    async with httpx2.AsyncClient(
        transport=transport_factory(), base_url=base_url, auth=httpx2.BasicAuth(api_key, "")
    ) as raw:

        async def raw_send(i: int) -> Any:
            response = await raw.get(paths[i % len(paths)])
            response.raise_for_status()
            return response.json()

        await _drive(raw_send, min(200, args.requests), args.concurrency)  # warm-up
        results["raw_wall"], results["raw_cpu"] = await _drive(raw_send, args.requests, args.concurrency)

    async with CloseClient(
        api_key,
        base_url=base_url,
        transport=transport_factory(),
        concurrency=args.concurrency,
        budgets=RateBudgets(),
    ) as client:

        async def client_send(i: int) -> Any:
            return await client.get(paths[i % len(paths)])

        await _drive(client_send, min(200, args.requests), args.concurrency)
        results["client_wall"], results["client_cpu"] = await _drive(
            client_send, args.requests, args.concurrency
        )

    n = args.requests
    print(f"\n{name}: {n} GET requests, concurrency {args.concurrency}")
    print(f"  {'':8}{'req/s':>10}{'CPU µs/req':>14}")
    for label in ("raw", "client"):
        print(f"  {label:8}{n / results[label + '_wall']:>10.0f}{results[label + '_cpu'] / n * 1e6:>14.1f}")
    overhead = (results["client_cpu"] - results["raw_cpu"]) / n * 1e6
    print(
        f"  client/raw throughput ratio {results['raw_wall'] / results['client_wall']:.2f}; "
        f"client's own CPU ≈ {overhead:.1f} µs/request"
    )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    emu = Emulator(seed=3, leads=500)
    ids = [lead["id"] for lead in emu.org.objects("lead")]
    paths = [f"/lead/{lead_id}/" for lead_id in ids]
    await _measure(
        "in-process emulator (rate limits off)", emu.transport, emu.base_url, emu.api_key, paths, args
    )
    lead = emu.org.get("lead", ids[0])
    assert lead is not None
    await _measure(
        "canned MockTransport (isolates client CPU)",
        lambda: _canned_transport(lead),
        "http://canned/api/v1",
        "api_bench",
        paths,
        args,
    )


if __name__ == "__main__":
    asyncio.run(main())
