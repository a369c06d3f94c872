"""The OAuth client against the emulator's OAuth server: the whole login, then rotation, end to end.

The emulator stands where Close stands, so this is the closest the suite gets to a real login:
authorize (the emulator approves at once and redirects), the loopback listener catches the
redirect, the code is exchanged, the Bearer token reaches the API, and a refresh rotates it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close._client import CloseClient
from closeflow.close._credentials import CredentialsFile, OAuthProfile, resolve_connection
from closeflow.close._errors import Unauthorized
from closeflow.close._oauth import OAuthApp, OAuthCredentials, refresh
from closeflow.close._oauth_login import run_authorization_flow

try:
    from closeflow.emulator import Emulator
    from closeflow.emulator._config import OAuthClientConfig
except ImportError:  # pragma: no cover - the emulator is built alongside this client
    pytest.skip("closeflow.emulator.Emulator is not available yet", allow_module_level=True)

CLIENT = OAuthClientConfig()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Emulator:
    return Emulator(clock=clock)


def app_for(emu: Emulator) -> OAuthApp:
    return OAuthApp.for_base_url(CLIENT.client_id, CLIENT.client_secret, emu.base_url)


async def login(emu: Emulator, clock: FakeClock) -> OAuthProfile:
    """Run `closeflow auth oauth` with the emulator as Close and an httpx2 request as the browser."""
    app = app_for(emu)
    shown: asyncio.Queue[str] = asyncio.Queue()
    flow = asyncio.create_task(
        run_authorization_flow(
            app, open_browser=False, show=shown.put_nowait, transport=emu.transport(), clock=clock
        )
    )
    authorize_url = await asyncio.wait_for(shown.get(), 10)
    async with httpx2.AsyncClient(transport=emu.transport()) as close:
        consent = await close.get(authorize_url)
    assert consent.status_code == 302
    async with httpx2.AsyncClient(trust_env=False) as browser:
        landed = await browser.get(consent.headers["Location"])
    assert landed.status_code == 200
    token = await asyncio.wait_for(flow, 10)
    return OAuthProfile.from_token(CLIENT.client_id, CLIENT.client_secret, token, base_url=emu.base_url)


async def test_login_through_the_emulator_then_call_the_api_with_the_bearer_token(
    emu: Emulator, clock: FakeClock
) -> None:
    profile = await login(emu, clock)
    token = profile.token()
    assert token.refresh_token is not None
    assert token.expires_at == clock.now() + 3600

    credentials = OAuthCredentials(app_for(emu), token, clock=clock, transport=emu.transport())
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=credentials.httpx_auth()
    ) as http:
        me = await http.get("/me/")
    assert me.status_code == 200
    assert credentials.organization_id == token.organization_id


async def test_expiry_refreshes_rotates_and_persists_into_the_profile(
    emu: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    file = CredentialsFile(tmp_path / "credentials.json")
    file.save_profile("emulator", await login(emu, clock))
    first = file.get("emulator")
    assert isinstance(first, OAuthProfile)

    connection = resolve_connection(env={}, path=file.path, clock=clock, transport=emu.transport())
    clock.advance(3600.0)
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=connection.base_url, auth=connection.credentials.httpx_auth()
    ) as http:
        assert (await http.get("/me/")).status_code == 200

    rotated = file.get("emulator")
    assert isinstance(rotated, OAuthProfile)
    assert rotated.token().refresh_token != first.token().refresh_token
    old_refresh = first.token().refresh_token
    assert old_refresh is not None
    with pytest.raises(Unauthorized, match="revoked or already used"):
        await refresh(app_for(emu), old_refresh, transport=emu.transport(), clock=clock)


async def test_twenty_concurrent_requests_across_expiry_refresh_once_against_the_emulator(
    emu: Emulator, clock: FakeClock
) -> None:
    token = (await login(emu, clock)).token()
    credentials = OAuthCredentials(app_for(emu), token, clock=clock, transport=emu.transport())
    clock.advance(3600.0 - 1.0)
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=credentials.httpx_auth()
    ) as http:
        responses = await asyncio.gather(*(http.get("/me/") for _ in range(20)))

    assert [r.status_code for r in responses] == [200] * 20
    assert credentials.refresh_count == 1
    assert emu.requests("POST", "/oauth2/token/") == 2  # the login's code exchange, then one refresh
    assert emu.requests("GET", "/me/") == 20


async def test_an_access_token_dropped_early_is_refreshed_on_the_401(emu: Emulator, clock: FakeClock) -> None:
    token = (await login(emu, clock)).token()
    credentials = OAuthCredentials(app_for(emu), token, clock=clock, transport=emu.transport())
    emu.oauth.expire_access_tokens()
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=credentials.httpx_auth()
    ) as http:
        response = await http.get("/me/")

    assert response.status_code == 200
    assert credentials.refresh_count == 1
    assert emu.requests("GET", "/me/") == 2


def test_the_emulator_client_is_the_documented_one() -> None:
    # The names other tests and the docs rely on.
    assert (CLIENT.client_id, CLIENT.client_secret) == ("oa2client_emulator", "emulator-client-secret")


async def test_close_client_with_a_profile_connection_survives_expiry_and_revocation(
    emu: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    file = CredentialsFile(tmp_path / "credentials.json")
    file.save_profile("emulator", await login(emu, clock))
    connection = resolve_connection(env={}, path=file.path, clock=clock, transport=emu.transport())
    client = CloseClient(
        connection.credentials, base_url=connection.base_url, transport=emu.transport(), clock=clock
    )
    async with client:
        clock.advance(3600.0)
        me = await client.me()
        assert me["id"]
        emu.oauth.revoke_all()
        clock.advance(3600.0)
        with pytest.raises(Unauthorized, match="revoked or already used") as caught:
            await client.me()

    stored = file.get("emulator")
    assert isinstance(stored, OAuthProfile)
    for secret in (stored.access_token.get_secret_value(), str(stored.token().refresh_token)):
        assert secret not in f"{caught.value} {caught.value!r}"


async def test_two_connections_to_one_profile_share_a_single_refresh(
    emu: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    # `closeflow check` and a sync in the same process, or two processes, hold the same profile:
    # the second to notice expiry must adopt the first's rotated pair, not spend a dead token.
    file = CredentialsFile(tmp_path / "credentials.json")
    file.save_profile("emulator", await login(emu, clock))
    first, second = (
        resolve_connection(env={}, path=file.path, clock=clock, transport=emu.transport()) for _ in range(2)
    )
    clock.advance(3600.0)
    for connection in (first, second):
        async with httpx2.AsyncClient(
            transport=emu.transport(), base_url=connection.base_url, auth=connection.credentials.httpx_auth()
        ) as http:
            assert (await http.get("/me/")).status_code == 200
    assert emu.requests("POST", "/oauth2/token/") == 2  # the login, then exactly one refresh
    assert (tmp_path / "credentials.json.lock").exists()
