"""Options every command that talks to Close shares, and how they become a client."""

from __future__ import annotations

import typer

from closeflow.close import CloseClient, Connection, resolve_connection

ProfileOption = typer.Option(
    None, "--profile", "-p", help="Named connection from the credentials file (default: its default profile)."
)
BaseUrlOption = typer.Option(
    None,
    "--base-url",
    help="Close API base URL, e.g. http://127.0.0.1:8765/api/v1 for the emulator. Default: the "
    "profile's own, or $CLOSE_BASE_URL with $CLOSE_API_KEY, else https://api.close.com/api/v1.",
)


def connection(profile: str | None, base_url: str | None) -> Connection:
    """Credentials by precedence: CLOSE_API_KEY / --base-url, then the profile, then the default profile."""
    return resolve_connection(profile=profile, base_url=base_url)


def client_for(profile: str | None, base_url: str | None, *, concurrency: int = 8) -> CloseClient:
    conn = connection(profile, base_url)
    return CloseClient(conn.credentials, base_url=conn.base_url, concurrency=concurrency)
