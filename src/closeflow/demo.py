"""`make demo`: what closeflow does today, end to end, with no Close account.

Starts the emulator on a free loopback port with a seeded organization, then runs real
`closeflow` commands against it exactly as a user would against Close: check the connection,
search, sync every data model into `demo.db`, upsert leads from a CSV (dry run first, then for
real, then again to show nothing is written twice), sync again and read the change log.
"""

from __future__ import annotations

import csv
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from closeflow.sync import open_store

API_KEY = "api_demo_key"
LEADS = 1000
DB = "demo.db"
NEW_LEADS = [
    {"company": "Dunder Mifflin", "website": "https://dundermifflin.example.com", "industry": "Paper"},
    {"company": "Vance Refrigeration", "website": "https://vance.example.com", "industry": "HVAC"},
    {"company": "Sabre", "website": "https://sabre.example.com", "industry": "Printers"},
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base_url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base_url}/me/", auth=(API_KEY, ""), timeout=2.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the emulator did not become ready at {base_url} within {timeout:.0f}s")


def _step(title: str, args: list[str], env: dict[str, str], *, ok_codes: tuple[int, ...] = (0,)) -> None:
    print(f"\n\033[1m── {title}\033[0m\n$ closeflow {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "closeflow", *args], env=env, check=False)  # noqa: S603
    if done.returncode not in ok_codes:
        raise SystemExit(f"demo step failed: closeflow {shlex.join(args)} (exit {done.returncode})")


def _write_input(folder: Path) -> Path:
    path = folder / "new_leads.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(NEW_LEADS[0]))
        writer.writeheader()
        writer.writerows(NEW_LEADS)
    return path


def main() -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/api/v1"
    for stale in (DB, f"{DB}-wal", f"{DB}-shm"):
        Path(stale).unlink(missing_ok=True)
    print(f"Starting the Close emulator with {LEADS} seeded leads on {base_url} …", flush=True)
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "closeflow", "emulator", "serve", "--port", str(port),
         "--seed", "7", "--leads", str(LEADS), "--api-key", API_KEY, "--rate-limit", "40"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_ready(base_url)
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "CLOSE_BASE_URL": base_url, "CLOSE_API_KEY": API_KEY,
                   "CLOSEFLOW_CONFIG_DIR": folder, "COLUMNS": "100"}  # fmt: skip
            _run_steps(env, _write_input(Path(folder)), Path(folder) / "ledger.db")
        print(
            f'\nExplore the synced data: .venv/bin/closeflow sql --db {DB} "select * from leads_view limit 5"'  # noqa: S608
        )
        print(
            "The emulator speaks Close's API: point any Close client at it with "
            f"CLOSE_BASE_URL=<its URL> CLOSE_API_KEY={API_KEY} (closeflow emulator serve --help)."
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def _run_steps(env: dict[str, str], csv_path: Path, ledger: Path) -> None:
    _step("Who am I, which organization, what rate limits apply", ["check"], env)
    _step("Qualified leads, most recently updated first",
          ["leads", "search", "--where", 'status = "Qualified"', "--sort", "-date_updated",
           "--limit", "5", "--fields", 'display_name,status_label,custom."Source"'], env)  # fmt: skip
    _step("Sync every data model into demo.db (incremental from here on)", ["sync", "--db", DB], env)
    _step("What the store holds", ["models", "--db", DB], env)
    store = open_store(DB)
    first_sync_seq = store.last_seq()
    store.close()
    upsert = ["leads", "upsert", "--input", str(csv_path), "--match", "url=website", "--map", "name=company",
              "--map", "url=website", "--custom", "Industry=industry", "--ledger", str(ledger)]  # fmt: skip
    _step("Upsert three leads from a CSV: the plan first, nothing sent", [*upsert, "--dry-run"], env)
    _step("Now for real", upsert, env)
    _step("The same command again: the batch resumes, nothing is written twice", upsert, env)
    _step("Sync again: only what changed travels", ["sync", "--db", DB], env)
    _step("The change log since the first sync: the three new leads, `added`",
          ["changes", "--db", DB, "--model", "leads", "--since", str(first_sync_seq)], env)  # fmt: skip
    _step("SQL over the synced leads, custom fields by name",
          ["sql", "--db", DB, 'select display_name, "Industry" from leads_view where "Industry" in '
           "('Paper', 'HVAC', 'Printers') order by display_name"], env)  # fmt: skip


if __name__ == "__main__":
    main()
