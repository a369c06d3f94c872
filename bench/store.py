"""How fast does the store take pages, and what does re-sending unchanged pages cost?

Commits N lead-shaped records (~1 KB of JSON each, with custom fields) in pages of 200, the size the
sync engine sends, side by side into SQLite (a temp file) and Postgres (a throwaway schema):
  initial    — every record new (one "added" change each)
  unchanged  — the same pages again: no row written, no change logged (the no-change sync's cost)
  10% edited — the same pages with every tenth record changed (one "updated" change each)
Prints records/second per phase and the unchanged / initial cost ratio per backend.
Usage: python bench/store.py [--records 100000] [--page 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from closeflow.sync.store import ModelSpec, Store, open_store

PROMOTED = ("date_created", "date_updated", "status_id", "organization_id")


def lead(n: int, version: int = 0) -> dict[str, Any]:
    rng = random.Random(n)
    created = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "id": f"lead_{n:022d}",
        "display_name": f"Company {n} {'ABCDEFGH'[n % 8]}",
        "name": f"Company {n}",
        "description": "x" * rng.randint(40, 200),
        "status_id": f"stat_{n % 5}",
        "status_label": ["Potential", "Qualified", "Customer", "Bad Fit", "Lost"][n % 5],
        "organization_id": "orga_bench",
        "date_created": created.isoformat(timespec="microseconds"),
        "date_updated": (created + timedelta(days=version)).isoformat(timespec="microseconds"),
        "url": f"https://company{n}.example.com",
        "addresses": [{"city": "Springfield", "country": "US", "zipcode": f"{n % 99999:05d}"}],
        "contacts": [{"id": f"cont_{n}_{k}", "name": f"Person {k}"} for k in range(2)],
        "custom.cf_source": ["Web", "Referral", "Event"][n % 3],
        "custom.cf_score": rng.randint(0, 100) + version,
        "custom.cf_renewal": f"2026-{(n % 12) + 1:02d}-15",
        "tasks": [],
        "opportunities": [],
        "html_url": f"https://app.close.com/lead/lead_{n:022d}/",
    }


def pages(records: int, size: int, version: Callable[[int], int]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, records, size):
        yield [lead(n, version(n)) for n in range(start, min(start + size, records))]


def run_phase(store: Store, records: int, size: int, version: Callable[[int], int]) -> tuple[float, int]:
    # Records are built outside the timed region: we measure the store, not the generator.
    batches = list(pages(records, size, version))
    now = datetime(2026, 12, 4, tzinfo=UTC)
    changes = 0
    started = time.perf_counter()
    for number, batch in enumerate(batches):
        changes += len(store.commit_page("leads", "leads", upserts=batch, state={"page": number}, now=now))
    return time.perf_counter() - started, changes


def measure(name: str, store: Store, records: int, size: int) -> dict[str, float]:
    store.ensure_models([ModelSpec("leads", promoted=PROMOTED)])
    results: dict[str, float] = {}
    for phase, version in (
        ("initial", lambda n: 0),
        ("unchanged", lambda n: 0),
        ("10% edited", lambda n: 1 if n % 10 == 0 else 0),
    ):
        seconds, changes = run_phase(store, records, size, version)
        results[phase] = records / seconds
        rate = records / seconds
        print(f"  {name:8} {phase:11} {rate:>10,.0f} records/s   {seconds:6.2f} s   {changes:>7} changes")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=200)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CLOSEFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    print(f"{args.records:,} lead records in pages of {args.page}")
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(os.path.join(folder, "bench.db"))
        table["sqlite"] = measure("sqlite", store, args.records, args.page)
        store.close()
    schema = f"closeflow_bench_{uuid.uuid4().hex[:8]}"
    try:
        store = open_store(args.postgres, schema=schema)
        table["postgres"] = measure("postgres", store, args.records, args.page)
        store.close()
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print()
    print(f"{'':10}{'initial':>12}{'unchanged':>12}{'10% edited':>12}{'unchanged/initial time':>26}")
    for name, row in table.items():
        ratio = row["initial"] / row["unchanged"]
        rates = "".join(f"{row[phase]:>12,.0f}" for phase in ("initial", "unchanged", "10% edited"))
        print(f"{name:10}{rates}{ratio:>26.2f}")
    if len(table) == 2:
        ratio = table["postgres"]["initial"] / table["sqlite"]["initial"]
        print(f"postgres / sqlite initial throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
