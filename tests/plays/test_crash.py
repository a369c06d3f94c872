"""`closeflow run` killed with SIGKILL in the middle of a batch, then restarted: every enrolled record
ends with exactly one completed run, and Close (the emulator, over HTTP) has no duplicate writes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests._served import emulator_process

API_KEY = "api_emulator_key"
LEADS = 40
SEEDS = (1, 2, 3)

PLAY = """
kind: play
name: crash-follow-up
trigger:  # the leads it creates are synced too: they must not enrol themselves
  model: leads
  on: [added]
  when: "{{ not (record.display_name or '').startswith('crash ') }}"
enrolment: {mode: once, batch_size: 4}
nodes:
  - id: sibling
    type: action
    action: insert_lead
    config: {mappings: {name: name}}
    record: {name: "crash {{ record.id }}"}
  - id: contact
    type: action
    action: upsert_contacts
    config: {match_property: email, match_value: email, email: email, associated_lead_id: lead_id,
             mappings: {name: name}}
    record: {email: "crash+{{ record.id | lower }}@example.com", name: Follow-up, lead_id: {path: record.id}}
"""


@pytest.fixture
def served_url() -> Iterator[str]:
    """``closeflow emulator serve --port 0`` in a subprocess (fresh per test); the base URL it prints."""
    with emulator_process(leads=LEADS) as served:
        yield served.base_url


def _runner(folder: Path, db: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "closeflow",
        "run",
        "--plays",
        str(folder),
        "--db",
        str(db),
        "--base-url",
        url,
        "--concurrency",
        "2",
    ]


def _environment() -> dict[str, str]:
    # The emulator's search never lags behind its writes, so a restarted runner may resolve a create
    # whose answer died with the killed process at once instead of waiting out Close's search lag.
    return {**os.environ, "CLOSE_API_KEY": API_KEY, "COLUMNS": "120", "CLOSEFLOW_SEARCH_LAG": "0"}


def _completed_nodes(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM play_run_nodes WHERE status = 'succeeded'").fetchone()[0]
            )
    except sqlite3.OperationalError:  # the tables do not exist yet
        return 0


def _kill_mid_batch(folder: Path, db: Path, url: str, rng: random.Random) -> bool:
    """Start the runner, SIGKILL it once a random number of nodes have completed; True if it was killed."""
    target = rng.randint(1, LEADS)  # completed nodes before the kill: somewhere inside some batch
    runner = subprocess.Popen(
        _runner(folder, db, url), env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 90
    try:
        while runner.poll() is None and time.monotonic() < deadline:
            if _completed_nodes(db) >= target:
                time.sleep(rng.uniform(0, 0.05))
                runner.send_signal(signal.SIGKILL)
                runner.wait(timeout=10)
                return True
            time.sleep(0.005)
        return False
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)


def _all(url: str, path: str, fields: str) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    with httpx2.Client(base_url=url, auth=(API_KEY, ""), timeout=30) as http:
        while True:
            page = http.get(path, params={"_skip": len(records), "_limit": 100, "_fields": fields}).json()
            records.extend(page["data"])
            if not page["has_more"]:
                return records


@pytest.mark.parametrize("seed", SEEDS)
def test_a_runner_killed_mid_batch_and_restarted_writes_each_record_exactly_once(
    tmp_path: Path, served_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    folder, db = tmp_path / "plays", tmp_path / "closeflow.db"
    folder.mkdir()
    (folder / "crash.yaml").write_text(textwrap.dedent(PLAY), encoding="utf-8")
    kills = sum(_kill_mid_batch(folder, db, served_url, rng) for _ in range(2))
    assert kills >= 1, "the runner finished before it could be killed; the test proved nothing"
    done = subprocess.run(
        _runner(folder, db, served_url),
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    with sqlite3.connect(db) as conn:
        enrolled = [row[0] for row in conn.execute("SELECT record_id FROM play_enrolments")]
        runs = conn.execute("SELECT record_id, status FROM play_runs").fetchall()
        failures = conn.execute(
            "SELECT run_id, node_id, attempt, error FROM play_run_nodes WHERE status = 'failed'"
        ).fetchall()
    seeded = [
        lead for lead in _all(served_url, "/lead/", "id,name") if not str(lead["name"]).startswith("crash ")
    ]
    assert sorted(enrolled) == sorted(str(lead["id"]) for lead in seeded)
    assert Counter(record for record, _ in runs) == Counter(enrolled)  # one run per enrolled record
    assert {status for _, status in runs} == {"succeeded"}, failures

    names = Counter(str(lead["name"]) for lead in _all(served_url, "/lead/", "id,name"))
    siblings = {name: n for name, n in names.items() if name.startswith("crash ")}
    assert len(siblings) == LEADS
    assert set(siblings.values()) == {1}, {name: n for name, n in siblings.items() if n > 1}
    emails = Counter(
        str(email["email"])
        for contact in _all(served_url, "/contact/", "id,emails")
        for email in contact["emails"]  # type: ignore[attr-defined]
        if str(email["email"]).startswith("crash+")
    )
    assert len(emails) == LEADS
    assert set(emails.values()) == {1}, {email: n for email, n in emails.items() if n > 1}
