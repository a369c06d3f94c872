"""`closeflow auth …`: store, inspect and remove connections to Close organizations."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.table import Table

from closeflow.cli._app import app, console, fail, guarded, run
from closeflow.cli._common import BaseUrlOption
from closeflow.close import (
    DEFAULT_BASE_URL,
    ApiKey,
    CloseClient,
    ConfigError,
    CredentialsFile,
    OAuthApp,
    OAuthProfile,
    resolve_connection,
    revoke,
    run_authorization_flow,
)

auth_app = typer.Typer(
    help="Connect closeflow to a Close organization (API key or OAuth).", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")

ProfileName = typer.Option("default", "--profile", "-p", help="Name to store this connection under.")


async def _whoami(client: CloseClient) -> dict[str, Any]:
    async with client:
        return await client.me()


@auth_app.command("login")
@guarded
def login(
    profile: str = ProfileName,
    base_url: str | None = BaseUrlOption,
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="CLOSE_API_KEY",
        help="API key (Settings → Developer → API Keys). Prompted for, hidden, when omitted.",
        show_envvar=True,
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help="Save without calling GET /me/ first."),
) -> None:
    """Store an API key as a named connection (checked against /me/ first)."""
    key = api_key or typer.prompt("Close API key", hide_input=True)
    if not key.strip():
        raise fail("the API key is empty")
    base_url = base_url or os.environ.get("CLOSE_BASE_URL") or None
    url = base_url or DEFAULT_BASE_URL
    who = "" if no_verify else _describe(run(_whoami(CloseClient(ApiKey(key.strip()), base_url=url))))
    store = CredentialsFile()
    store.save_profile(profile, {"kind": "api_key", "api_key": key.strip(), "base_url": base_url})
    console.print(f"Saved profile [bold]{profile}[/] in {store.path}{who}")


@auth_app.command("oauth")
@guarded
def oauth(
    client_id: str = typer.Option(
        ..., "--client-id", envvar="CLOSE_OAUTH_CLIENT_ID", help="OAuth app client id."
    ),
    client_secret: str = typer.Option(
        ...,
        "--client-secret",
        envvar="CLOSE_OAUTH_CLIENT_SECRET",
        prompt=True,
        hide_input=True,
        help="OAuth app client secret.",
    ),
    profile: str = ProfileName,
    base_url: str | None = BaseUrlOption,
    port: int = typer.Option(0, "--port", help="Loopback port for the redirect listener (0: any free port)."),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Print the authorization URL instead of opening it."
    ),
) -> None:
    """Authorize closeflow with Close's OAuth 2.0 authorization-code flow and store the tokens."""
    base_url = base_url or os.environ.get("CLOSE_BASE_URL") or None
    url = base_url or DEFAULT_BASE_URL
    oauth_app = OAuthApp.for_base_url(client_id, client_secret, url)
    token = run(run_authorization_flow(oauth_app, open_browser=not no_browser, port=port))
    store = CredentialsFile()
    store.save_profile(profile, OAuthProfile.from_token(client_id, client_secret, token, base_url=base_url))
    console.print(
        f"Saved OAuth profile [bold]{profile}[/] for organization {token.organization_id} in {store.path}"
    )


@auth_app.command("status")
@guarded
def status(base_url: str | None = BaseUrlOption) -> None:
    """List stored connections (secrets are never shown) and which one commands will use."""
    store = CredentialsFile()
    data = store.load()
    table = Table("profile", "kind", "base URL", "organization", "default")
    for name, prof in sorted(data.profiles.items()):
        table.add_row(
            name,
            prof.kind,
            prof.base_url or DEFAULT_BASE_URL,
            getattr(prof, "organization_id", None) or "",
            "✓" if name == data.default_profile else "",
        )
    console.print(table if data.profiles else f"No stored profiles in {store.path}.")
    try:
        conn = resolve_connection(base_url=base_url)
    except ConfigError as exc:
        console.print(f"Commands would fail: {exc}")
        return
    via = f"profile {conn.profile_name}" if conn.profile_name else conn.source
    console.print(f"Commands will use: {via} → {conn.base_url}")


@auth_app.command("logout")
@guarded
def logout(
    profile: str = ProfileName,
    revoke_token: bool = typer.Option(
        True, "--revoke/--no-revoke", help="Revoke OAuth refresh tokens at Close."
    ),
) -> None:
    """Remove a stored connection (and revoke its OAuth refresh token)."""
    store = CredentialsFile()
    prof = store.load().profiles.get(profile)
    if prof is None:
        raise fail(f'no profile named "{profile}" in {store.path}')
    if revoke_token and isinstance(prof, OAuthProfile) and prof.refresh_token:
        oauth_app = OAuthApp.for_base_url(
            prof.client_id, prof.client_secret.get_secret_value(), prof.base_url or DEFAULT_BASE_URL
        )
        run(revoke(oauth_app, prof.refresh_token.get_secret_value()))
    store.delete_profile(profile)
    console.print(f"Removed profile [bold]{profile}[/].")


def _describe(me: dict[str, Any]) -> str:
    orgs = me.get("organizations") or [{}]
    org = orgs[0] if isinstance(orgs[0], dict) else {"id": orgs[0]}
    return f" — {me.get('email', '?')} in {org.get('name') or org.get('id', '?')}"
