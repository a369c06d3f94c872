"""A sync killed with SIGKILL at random moments and then resumed ends with the same store, and the
same change log, as one that was never interrupted: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from closeflow.sync import open_store
from tests._served import emulator_process
from tests.sync._helpers import RECORD_MODELS, stored

API_KEY = "api_emulator_key"
KILL_SEEDS = (1, 2, 3)
KILLS_PER_SEED = 3


@pytest.fixture(scope="module")
def served_url() -> Iterator[str]:
    """``closeflow emulator serve --port 0`` in a subprocess; the base URL it prints."""
    with emulator_process(leads=300) as served:
        yield served.base_url


def _sync_command(db: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "closeflow", "sync", "--db", str(db), "--base-url", url]


def _environment() -> dict[str, str]:
    return {**os.environ, "CLOSE_API_KEY": API_KEY, "COLUMNS": "120"}


def _complete_sync(db: Path, url: str) -> None:
    done = subprocess.run(
        _sync_command(db, url), env=_environment(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _snapshot(db: Path) -> tuple[dict[str, dict[str, dict[str, object]]], Counter[tuple[str, str, str]]]:
    store = open_store(str(db))
    try:
        models = {model: stored(store, model) for model in RECORD_MODELS}
        changes = Counter((c.model, c.record_id, c.kind) for c in store.changes())
    finally:
        store.close()
    return models, changes


@pytest.fixture(scope="module")
def uninterrupted(served_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, float]:
    """The store and change log of one sync never interrupted, and how long that sync took here."""
    db = tmp_path_factory.mktemp("reference") / "closeflow.db"
    started = time.monotonic()
    _complete_sync(db, served_url)
    return (*_snapshot(db), time.monotonic() - started)


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_a_sync_killed_at_random_points_and_resumed_matches_an_uninterrupted_one(
    seed: int, served_url: str, uninterrupted: tuple[object, object, float], tmp_path: Path
) -> None:
    db = tmp_path / "closeflow.db"
    expected_records, expected_changes, full_sync_seconds = uninterrupted
    rng = random.Random(seed)
    killed = 0
    for _ in range(KILLS_PER_SEED):
        process = subprocess.Popen(
            _sync_command(db, served_url),
            env=_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill somewhere in the middle of what a whole sync takes on this machine right now (start-up
        # included), so the first attempt is always cut short however fast or loaded the machine is.
        time.sleep(full_sync_seconds * rng.uniform(0.35, 0.8))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
    _complete_sync(db, served_url)

    records, changes = _snapshot(db)
    assert records == expected_records
    assert changes == expected_changes  # one "added" per record, however many times it was re-read
    assert set(changes.values()) == {1}
    assert killed >= 1
