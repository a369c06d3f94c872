"""Options every command that talks to Close shares, and how they become a client."""

from __future__ import annotations

import os

import typer

from closeflow.close import SEARCH_LAG, CloseClient, ConfigError, Connection, resolve_connection

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


def client_for(
    profile: str | None, base_url: str | None, *, concurrency: int = 8, search_lag: float | None = None
) -> CloseClient:
    """A client for the resolved connection. ``search_lag`` (seconds Close's search may trail its
    writes) defaults to ``$CLOSEFLOW_SEARCH_LAG``, else 120; the emulator's search never lags, so
    runs against it may set 0."""
    conn = connection(profile, base_url)
    if search_lag is None:
        search_lag = _env_seconds("CLOSEFLOW_SEARCH_LAG", SEARCH_LAG)
    return CloseClient(
        conn.credentials, base_url=conn.base_url, concurrency=concurrency, search_lag=search_lag
    )


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more seconds, not {text!r}")
    return value
