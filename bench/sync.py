"""What does a sync cost in requests and time, against the emulator with per-group rate limits?

For each org size (leads, with the seed's contacts, opportunities, tasks and activities), in a
fresh subprocess so peak RSS is that size's own: an in-process emulator and client share a fake
clock, with every endpoint group limited to ``--rate`` requests per second; a full sync into a
SQLite store, then a sync with nothing changed. Prints per stream the requests per record, the
simulated wall time as a ratio to the rate-limit lower bound (the busiest endpoint group's
requests divided by its rate), the no-change requests per stream, and peak RSS (which includes
the in-memory emulator org).

Then, for the memory claim, the same sizes once more with the emulator in its own process
(`closeflow emulator serve`, no rate limit) and `closeflow sync` run as a child process whose
peak RSS is the sync's alone: streaming means 100k leads cost about what 10k do.

Usage: python bench/sync.py [--sizes 10000,100000] [--rate 40] [--skip-rss]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from closeflow._clock import FakeClock
from closeflow._endpoint_groups import endpoint_group
from closeflow.close import CloseClient
from closeflow.emulator import Emulator, EmulatorConfig, RateLimitConfig
from closeflow.sync import open_store, sync


async def _measure(leads: int, rate: int) -> dict[str, Any]:
    clock = FakeClock()
    started = time.perf_counter()
    emu = Emulator(EmulatorConfig(rate_limit=RateLimitConfig(default=rate)), clock=clock, seed=7, leads=leads)
    seeded = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(str(Path(folder) / "bench.db"))
        async with CloseClient(
            emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock
        ) as client:
            begin, wall = clock.now(), time.perf_counter()
            full = await sync(client, store)
            simulated, real = clock.now() - begin, time.perf_counter() - wall
            groups = Counter(endpoint_group(r.method, r.path) for r in emu.request_log)
            clock.advance(3600)
            quiet = await sync(client, store)
        store.close()
    busiest, busiest_requests = groups.most_common(1)[0]
    lower_bound = busiest_requests / rate
    return {
        "leads": leads,
        "seed_seconds": round(seeded, 1),
        "records": {s.stream: s.records for s in full.streams},
        "requests_per_record": {
            s.stream: round(s.requests / s.records, 4) for s in full.streams if s.records and s.requests
        },
        "requests": full.requests,
        "busiest_group": busiest,
        "busiest_group_requests": busiest_requests,
        "simulated_seconds": round(simulated, 1),
        "ratio_to_lower_bound": round(simulated / lower_bound, 3),
        "real_seconds": round(real, 1),
        "no_change_max_requests_per_stream": max(s.requests for s in quiet.streams),
        "no_change_requests": quiet.requests,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _sync_process_rss(leads: int) -> dict[str, Any]:
    """Peak RSS (MB) and wall seconds of a `closeflow sync` child against a served emulator."""
    server = subprocess.Popen(
        [sys.executable, "-m", "closeflow", "emulator", "serve", "--port", "0", "--leads", str(leads),
         "--seed", "7", "--api-key", "api_bench"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base_url = ""
        while not base_url:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the emulator exited before printing its URL")
            if line.startswith("Close emulator:"):
                base_url = line.split(": ", 1)[1].strip()
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "CLOSE_BASE_URL": base_url, "CLOSE_API_KEY": "api_bench"}
            began = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "closeflow", "sync", "--db", str(Path(folder) / "rss.db")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            _, status, usage = os.wait4(child.pid, 0)
            if status != 0:
                raise RuntimeError(f"closeflow sync failed with status {status}")
            return {"leads": leads, "sync_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                    "sync_seconds": round(time.perf_counter() - began, 1)}  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rate", type=int, default=40)
    parser.add_argument("--skip-rss", action="store_true", help="Skip the separate-process memory run.")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(_measure(args.one, args.rate))))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--rate", str(args.rate)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1], indent=2), flush=True)
    if len(results) > 1:
        print(f"peak RSS ratio with the emulator in process {results[-1]['leads']}/{results[0]['leads']}: "
              f"{results[-1]['peak_rss_mb'] / results[0]['peak_rss_mb']:.2f}")  # fmt: skip
    if args.skip_rss:
        return
    alone = [_sync_process_rss(int(size)) for size in args.sizes.split(",")]
    for row in alone:
        print(json.dumps(row), flush=True)
    if len(alone) > 1:
        ratio = alone[-1]["sync_peak_rss_mb"] / alone[0]["sync_peak_rss_mb"]
        print(
            f"sync process peak RSS ratio {alone[-1]['leads']}/{alone[0]['leads']}: "
            f"{ratio:.2f} (target ≤ 1.25)"
        )


if __name__ == "__main__":
    main()
