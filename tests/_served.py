"""`closeflow emulator serve --port 0` in its own process, as the crash tests and CLI tests need it:
a real port, a process of its own (so the one under test can be SIGKILLed), the URL it prints."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class EmulatorProcess:
    base_url: str
    api_key: str


@contextlib.contextmanager
def emulator_process(
    *, leads: int, seed: int = 3, options: tuple[str, ...] = ()
) -> Iterator[EmulatorProcess]:
    """Start the emulator with ``leads`` seeded leads; yield once it has printed its base URL and key."""
    command = [sys.executable, "-m", "closeflow", "emulator", "serve", "--port", "0"]
    command += ["--leads", str(leads), "--seed", str(seed), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        base_url = api_key = ""
        deadline = time.monotonic() + 90
        while not (base_url and api_key) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("Close emulator: "):
                base_url = line.split(": ", 1)[1].strip()
            elif line.startswith("API key: "):
                api_key = line.split(": ", 1)[1].strip()
        assert base_url and api_key, "the emulator did not print its base URL and API key"
        yield EmulatorProcess(base_url, api_key)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    """Terminate ``process``, and kill it if it has not exited 10 s later."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
