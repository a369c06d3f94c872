"""A batch killed mid-way (SIGKILL) and re-run with the same batch id leaves every record in Close
exactly once; so does a batch whose create answers are lost after Close applied them.

Everything runs as a user would: the emulator and `closeflow leads upsert` are separate processes
talking HTTP, and the only state shared between the two runs is the ledger file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from closeflow.cli import app
from closeflow.emulator import Emulator
from tests._served import emulator_process
from tests.conftest import Served, _serve

RECORDS = 300
# Paced so a kill lands mid-batch whatever the machine's speed: 300 creates take about 3 s.
RATE_LIMIT = 100


def _leads_csv(path: Path, count: int) -> Path:
    lines = ["company,site"] + [f"Crash Test {i:03d},https://crash{i:03d}.example" for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _upsert(csv_path: Path, ledger: Path) -> list[str]:
    # The emulator's search shows a lead as soon as it is created (Close's lags 30-60 s), so the
    # re-run may send a create whose POST never arrived at once instead of waiting --search-lag.
    return [
        *("leads", "upsert", "--input", str(csv_path), "--match", "url=site"),
        *("--map", "name=company", "--map", "url=site", "--batch-id", "B", "--ledger", str(ledger)),
        *("--search-lag", "0"),
    ]


@pytest.fixture
def served() -> Iterator[tuple[str, str]]:
    """`closeflow emulator serve --port 0` in its own process; yields (base URL, API key)."""
    with emulator_process(leads=0, options=("--rate-limit", str(RATE_LIMIT))) as process:
        yield process.base_url, process.api_key


def _all_leads(base_url: str, api_key: str) -> list[dict[str, str]]:
    leads: list[dict[str, str]] = []
    with httpx2.Client(base_url=base_url, auth=(api_key, "")) as http:
        while True:
            reply = http.get("/lead/", params={"_skip": len(leads), "_limit": 200, "_fields": "id,name,url"})
            if reply.status_code == 429:
                time.sleep(0.2)
                continue
            page = reply.json()
            leads += page["data"]
            if not page["has_more"]:
                return leads


def _lead_count(http: httpx2.Client) -> int | None:
    reply = http.get("/lead/", params={"_limit": 1, "_fields": "id", "query": "*"})
    return int(reply.json()["total_results"]) if reply.status_code == 200 else None


def _assert_each_exactly_once(leads: list[dict[str, str]], count: int) -> None:
    names = Counter(lead["name"] for lead in leads)
    expected = {f"Crash Test {i:03d}" for i in range(count)}
    assert {name for name, n in names.items() if n > 1} == set()
    assert set(names) == expected
    assert len(leads) == count


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_batch_killed_mid_way_and_rerun_creates_every_lead_exactly_once(
    served: tuple[str, str], tmp_path: Path, seed: int
) -> None:
    base_url, api_key = served
    kill_at = random.Random(seed).randint(20, RECORDS - 100)
    env = {**os.environ, "CLOSE_BASE_URL": base_url, "CLOSE_API_KEY": api_key}
    env.pop("CLOSEFLOW_CONFIG_DIR", None)
    command = [
        sys.executable,
        "-m",
        "closeflow",
        *_upsert(_leads_csv(tmp_path / "in.csv", RECORDS), tmp_path / "l.db"),
    ]

    run = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    landed = 0
    with httpx2.Client(base_url=base_url, auth=(api_key, "")) as http:
        deadline = time.monotonic() + 60
        while landed < kill_at and run.poll() is None and time.monotonic() < deadline:
            landed = _lead_count(http) or landed
            time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    assert run.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    assert kill_at <= landed < RECORDS

    report = tmp_path / "again.jsonl"
    again = subprocess.run(
        [*command, "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )

    assert again.returncode == 0, again.stdout + again.stderr
    statuses = Counter(json.loads(line)["status"] for line in report.read_text().splitlines())
    assert set(statuses) <= {"skipped", "created"} and statuses.total() == RECORDS
    # Only the creates in flight when the process died (at most --concurrency 8) lack an outcome.
    assert statuses["skipped"] >= kill_at - 8
    _assert_each_exactly_once(_all_leads(base_url, api_key), RECORDS)


@pytest.fixture
def lossy_emulator() -> Iterator[Served]:
    """The emulator on a port losing 10% of the answers to lead creates after applying them."""
    emulator = Emulator(seed=5)
    emulator.faults.drop_rate = 0.1
    emulator.faults.drop_after_processing = True
    emulator.faults.methods = {"POST"}
    emulator.faults.path_pattern = r"/lead/$"
    yield from _serve(emulator)


def test_lost_answers_to_applied_creates_never_duplicate_a_lead(
    lossy_emulator: Served, tmp_path: Path
) -> None:
    count = 120
    env = {"CLOSE_BASE_URL": lossy_emulator.base_url, "CLOSE_API_KEY": lossy_emulator.emulator.api_key}
    command = _upsert(_leads_csv(tmp_path / "in.csv", count), tmp_path / "l.db")

    result = CliRunner().invoke(app, [*command, "--report", str(tmp_path / "r.jsonl")], env=env)

    assert result.exit_code == 0, result.output
    dropped = lossy_emulator.emulator.faults.injected["drop_after_processing"]
    assert dropped >= 3
    assert (tmp_path / "r.jsonl").read_text().count('"recovered: ') == dropped
    leads = list(lossy_emulator.emulator.org.leads.values())
    _assert_each_exactly_once([{"name": lead["name"]} for lead in leads], count)
