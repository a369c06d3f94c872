"""`make demo`: what closeflow does today, end to end, with no Close account.

Starts the emulator on a free loopback port with a seeded organization, then runs real
`closeflow` commands against it exactly as a user would against Close.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time

import httpx2

API_KEY = "api_demo_key"
LEADS = 2000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base_url}/me/", auth=(API_KEY, ""), timeout=2.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the emulator did not become ready at {base_url} within {timeout:.0f}s")


def _step(title: str, args: list[str], env: dict[str, str]) -> None:
    print(f"\n\033[1m── {title}\033[0m\n$ closeflow {shlex.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "closeflow", *args], env=env, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"demo step failed: closeflow {shlex.join(args)} (exit {done.returncode})")


def main() -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/api/v1"
    print(f"Starting the Close emulator with {LEADS} seeded leads on {base_url} …", flush=True)
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "closeflow",
            "emulator",
            "serve",
            "--port",
            str(port),
            "--seed",
            "7",
            "--leads",
            str(LEADS),
            "--api-key",
            API_KEY,
            "--rate-limit",
            "40",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_ready(base_url)
        env = {
            **os.environ,
            "CLOSE_BASE_URL": base_url,
            "CLOSE_API_KEY": API_KEY,
            "CLOSEFLOW_CONFIG_DIR": os.path.join(os.getcwd(), ".closeflow-demo"),
        }
        _step("Who am I, which organization, what rate limits apply", ["check"], env)
        _step(
            "Qualified leads, most recently updated first",
            [
                "leads",
                "search",
                "--where",
                'status = "Qualified"',
                "--sort",
                "-date_updated",
                "--limit",
                "5",
                "--fields",
                "display_name,status_label,date_updated",
            ],
            env,
        )
        _step(
            "Contacts with an email at example.com, as JSON",
            [
                "contacts",
                "search",
                "--where",
                'email contains "example.com"',
                "--limit",
                "3",
                "--fields",
                "name,title,emails",
                "--format",
                "json",
            ],
            env,
        )
        print(
            "\nThe emulator speaks Close's API: point any Close client at it with "
            f"CLOSE_BASE_URL={base_url} CLOSE_API_KEY={API_KEY}."
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
