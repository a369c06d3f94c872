"""`make demo`: what closeflow does today, end to end, with no Close account.

Starts the emulator on a free loopback port with a seeded organization, then runs real
`closeflow` commands against it exactly as a user would against Close: check the connection,
search, sync every data model into `demo.db`, upsert leads from a CSV (dry run first, then for
real, then again to show nothing is written twice), sync again and read the change log. Then the
plays: it changes some leads in the emulator (qualifies some, moves others, deletes one), runs
`closeflow run` once with the example plays of `examples/plays/` (sync → changes → plays), and
shows the runs, one run node by node, and what the local webhook receiver got. Last, an agent's
view: `closeflow mcp` over stdio, driven by the MCP SDK's client as an AI assistant would drive it
(a query of the synced data, an upsert planned and then confirmed with its token).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2

from closeflow.close import ApiKey, CloseClient
from closeflow.plays import open_run_ledger
from closeflow.sync import open_store

API_KEY = "api_demo_key"
LEADS = 1000
DB = "demo.db"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plays"
EXAMPLE_WEBHOOK = "http://127.0.0.1:8799"  # the receiver address the example plays name
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
            # CLOSEFLOW_SEARCH_LAG=0: the emulator's search never trails its writes (Close's does).
            env = {**os.environ, "CLOSE_BASE_URL": base_url, "CLOSE_API_KEY": API_KEY,
                   "CLOSEFLOW_SEARCH_LAG": "0", "CLOSEFLOW_CONFIG_DIR": folder, "COLUMNS": "100"}  # fmt: skip
            _run_steps(env, _write_input(Path(folder)), Path(folder) / "ledger.db")
            _play_steps(env, base_url, Path(folder))
            _agent_steps(env)
        print(
            f'\nExplore the synced data: .venv/bin/closeflow sql --db {DB} "select * from leads_view limit 5"'  # noqa: S608
        )
        print(
            f"Explore the run history: .venv/bin/closeflow runs list --db {DB}; closeflow runs show <run id> "
            f"--db {DB}; or SQL over the play_runs and play_run_nodes tables of {DB}"
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


class _Receiver(BaseHTTPRequestHandler):
    """The demo's webhook endpoint: prints and keeps every JSON body posted to it."""

    received: ClassVar[list[tuple[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.loads(body or b"null")
        self.received.append((self.path, payload))
        print(f"  [receiver] {self.path} {json.dumps(payload, ensure_ascii=False)}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _receiver() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


async def _change_leads(base_url: str) -> dict[str, list[str]]:
    """What a sales team does between two syncs: qualify three leads, move two, delete one."""
    async with CloseClient(ApiKey(API_KEY), base_url=base_url) as client:
        statuses = {s["label"]: s["id"] for s in (await client.get("/status/lead/"))["data"]}
        page = await client.get("/lead/", params={"_limit": 100, "_fields": "id,display_name,status_label"})
        potential = [lead for lead in page["data"] if lead["status_label"] == "Potential"]
        done: dict[str, list[str]] = {"qualified": [], "bad fit": [], "deleted": []}
        for lead, label, key in [*((lead, "Qualified", "qualified") for lead in potential[:3]),
                                 *((lead, "Bad Fit", "bad fit") for lead in potential[3:5])]:  # fmt: skip
            await client.put(f"/lead/{lead['id']}/", json={"status_id": statuses[label]})
            done[key].append(lead["display_name"])
        await client.delete(f"/lead/{potential[5]['id']}/")
        done["deleted"].append(potential[5]["display_name"])
        return done


def _play_steps(env: dict[str, str], base_url: str, folder: Path) -> None:
    server, receiver_url = _receiver()
    plays = folder / "plays"
    plays.mkdir()
    for example in sorted(EXAMPLES.glob("*.yaml")):
        text = example.read_text(encoding="utf-8").replace(EXAMPLE_WEBHOOK, receiver_url)
        (plays / example.name).write_text(text, encoding="utf-8")
    try:
        _step("The example plays (examples/plays/)", ["plays", "list", "--plays", str(plays)], env)
        _step("…and the tool they call", ["tools", "list", "--plays", str(plays)], env)
        print("\n\033[1m── Meanwhile, in Close: leads change\033[0m", flush=True)
        for what, names in asyncio.run(_change_leads(base_url)).items():
            print(f"  {what}: {', '.join(names)}")
        store = open_store(DB)
        before_run = store.last_seq()
        store.close()
        _step("Run the plays once: sync → new changes → triggers → runs (--every 5m keeps going)",
              ["run", "--plays", str(plays), "--db", DB], env)  # fmt: skip
        _step("Run history", ["runs", "list", "--db", DB], env)
        ledger = open_run_ledger(DB)
        qualified = ledger.runs(play="qualified-follow-up", limit=1)
        by_status: dict[str, int] = {}
        for run in ledger.runs(limit=10_000):
            by_status[run.status] = by_status.get(run.status, 0) + 1
        ledger.close()
        if qualified:
            _step("One run, node by node", ["runs", "show", qualified[0].id, "--db", DB], env)
        _summary(before_run, by_status, _Receiver.received)
    finally:
        server.shutdown()


def _agent_steps(env: dict[str, str]) -> None:
    try:
        from mcp import Client, StdioServerParameters
    except ImportError:
        print("\n(the agent steps need the mcp extra: pip install -e '.[mcp]')")
        return
    command = ["mcp", "--allow", "read,write", "--db", DB]
    _step("What an agent is shown (closeflow mcp, tiers read and write)", [*command, "--list-tools"], env)
    server = StdioServerParameters(command=sys.executable, args=["-m", "closeflow", *command], env=env)
    upsert = {
        "records": [
            {"email": "pam@dundermifflin.example.com", "name": "Pam Beesly", "title": "Office Manager"}
        ],
        "match_property": "email",
        "match_value": "email",
    }

    async def agent() -> None:
        async with Client(server, read_timeout_seconds=60) as session:
            for title, name, arguments in (
                ("query_sql", "query_sql", {"sql": "select status_label, count(*) as leads from leads_view "
                                            "group by status_label order by leads desc", "max_rows": 5}),
                ("upsert_contacts, first call: the plan and a token", "upsert_contacts", upsert),
            ):  # fmt: skip
                result = (await session.call_tool(name, arguments)).structured_content or {}
                print(f"\n\033[1m── Agent calls {title}\033[0m\n{json.dumps(result)[:900]}")
            token = result["confirmation_token"]
            confirmed = await session.call_tool(name, {**upsert, "confirmation_token": token})
            again = await session.call_tool(name, {**upsert, "confirmation_token": token})
        print("\n\033[1m── Agent calls it again with the token: written once\033[0m")
        print(json.dumps((confirmed.structured_content or {}).get("summary")))
        print("\n\033[1m── …and the spent token cannot write twice\033[0m")
        print((again.structured_content or {}).get("error"))

    asyncio.run(agent())
    wide = {**env, "COLUMNS": "160"}  # room for the refused call's error on its one line
    _step("What the agent did, in the run ledger", ["runs", "list", "--source", "mcp", "--db", DB], wide)


def _summary(before_run: int, by_status: dict[str, int], received: list[tuple[str, Any]]) -> None:
    store = open_store(DB)
    try:
        models = {info.name: info.rows for info in store.models() if info.rows}
        changes = store.changes(before_run)
    finally:
        store.close()
    kinds: dict[str, int] = {}
    for change in changes:
        key = f"{change.model} {change.kind}"
        kinds[key] = kinds.get(key, 0) + 1
    print("\n\033[1m── Summary\033[0m")
    print("  records in demo.db: " + ", ".join(f"{name} {rows}" for name, rows in models.items()))
    print("  changes picked up by the last run: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print("  runs by status: " + ", ".join(f"{k} {n}" for k, n in sorted(by_status.items())))
    print(f"  webhook receiver got {len(received)} request(s): "
          + ", ".join(sorted({path for path, _ in received})))  # fmt: skip


if __name__ == "__main__":
    main()
