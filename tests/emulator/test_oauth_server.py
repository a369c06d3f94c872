"""The emulator's OAuth 2.0 server: code grant, refresh rotation, revoke, bearer checks (§1.5)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from starlette.applications import Starlette

from closeflow._clock import FakeClock
from closeflow.emulator._config import EmulatorConfig, OAuthClientConfig
from closeflow.emulator._oauth import OAuthServer

CLIENT = {"client_id": "oa2client_test", "client_secret": "s3cret-client"}
REDIRECT = "http://127.0.0.1:8123/callback"


def _server(clock: FakeClock, redirect_uris: list[str] | None = None) -> OAuthServer:
    client = OAuthClientConfig(redirect_uris=redirect_uris or [], **CLIENT)
    config = EmulatorConfig(oauth_clients=[client], oauth_access_ttl=3600.0)
    return OAuthServer(config, clock, organization_id="orga_test", user_id="user_test")


def _http(server: OAuthServer) -> httpx2.AsyncClient:
    app = Starlette(routes=server.routes())
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://emulator")


async def _code(http: httpx2.AsyncClient, redirect_uri: str = REDIRECT, state: str = "xyz") -> str:
    params = {
        "client_id": CLIENT["client_id"],
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
    }
    response = await http.get("/oauth2/authorize/", params=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


async def _token(http: httpx2.AsyncClient, **form: str) -> httpx2.Response:
    return await http.post("/oauth2/token/", data={**CLIENT, **form})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_code_grant_returns_close_shaped_tokens_that_authenticate(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        code = await _code(http)
        response = await _token(http, grant_type="authorization_code", code=code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "token_type",
        "access_token",
        "expires_in",
        "refresh_token",
        "scope",
        "organization_id",
        "user_id",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "all.full_access offline_access"
    assert server.authenticate_bearer(body["access_token"]) == ("user_test", "orga_test")
    assert server.authenticate_bearer("not-a-token") is None


async def test_code_is_single_use(clock: FakeClock) -> None:
    async with _http(_server(clock)) as http:
        code = await _code(http)
        assert (await _token(http, grant_type="authorization_code", code=code)).status_code == 200
        again = await _token(http, grant_type="authorization_code", code=code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_code_expires_after_a_minute(clock: FakeClock) -> None:
    async with _http(_server(clock)) as http:
        code = await _code(http)
        clock.advance(60)
        response = await _token(http, grant_type="authorization_code", code=code)
    assert response.json()["error"] == "invalid_grant"


async def test_access_token_expires_by_the_clock(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        body = (await _token(http, grant_type="authorization_code", code=await _code(http))).json()
    clock.advance(3599)
    assert server.authenticate_bearer(body["access_token"]) is not None
    clock.advance(1)
    assert server.authenticate_bearer(body["access_token"]) is None


async def test_refresh_rotates_and_the_old_refresh_token_is_refused(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        first = (await _token(http, grant_type="authorization_code", code=await _code(http))).json()
        second = await _token(http, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert second.status_code == 200
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        assert rotated["access_token"] != first["access_token"]
        reused = await _token(http, grant_type="refresh_token", refresh_token=first["refresh_token"])
        third = await _token(http, grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert third.status_code == 200
    assert server.authenticate_bearer(rotated["access_token"]) == ("user_test", "orga_test")


async def test_revoke_kills_the_refresh_token_and_its_access_tokens(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        tokens = (await _token(http, grant_type="authorization_code", code=await _code(http))).json()
        revoked = await http.post("/oauth2/revoke/", data={**CLIENT, "token": tokens["refresh_token"]})
        refresh = await _token(http, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert revoked.status_code == 200
    assert server.authenticate_bearer(tokens["access_token"]) is None
    assert refresh.json()["error"] == "invalid_grant"


async def test_expire_and_revoke_all_switches(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        tokens = (await _token(http, grant_type="authorization_code", code=await _code(http))).json()
        server.expire_access_tokens()
        assert server.authenticate_bearer(tokens["access_token"]) is None
        refreshed = await _token(http, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert refreshed.status_code == 200
        server.revoke_all()
        assert server.authenticate_bearer(refreshed.json()["access_token"]) is None
        after = await _token(
            http, grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"]
        )
    assert after.json()["error"] == "invalid_grant"


async def test_token_endpoint_error_bodies(clock: FakeClock) -> None:
    async with _http(_server(clock)) as http:
        wrong_secret = await http.post(
            "/oauth2/token/",
            data={**CLIENT, "client_secret": "nope", "grant_type": "refresh_token", "refresh_token": "x"},
        )
        basic_only = await http.post(
            "/oauth2/token/",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=(CLIENT["client_id"], CLIENT["client_secret"]),
        )
        unsupported = await _token(http, grant_type="password")
        missing = await _token(http)
        no_code = await _token(http, grant_type="authorization_code")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert (basic_only.status_code, basic_only.json()["error"]) == (401, "invalid_client")
    assert (unsupported.status_code, unsupported.json()["error"]) == (400, "unsupported_grant_type")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (no_code.status_code, no_code.json()["error"]) == (400, "invalid_request")
    assert CLIENT["client_secret"] not in wrong_secret.text


async def test_authorize_refuses_unknown_clients_and_foreign_redirects(clock: FakeClock) -> None:
    async with _http(_server(clock)) as http:
        unknown = await http.get(
            "/oauth2/authorize/",
            params={"client_id": "oa2client_x", "response_type": "code", "redirect_uri": REDIRECT},
        )
        foreign = await http.get(
            "/oauth2/authorize/",
            params={
                "client_id": CLIENT["client_id"],
                "response_type": "code",
                "redirect_uri": "https://evil.example/cb",
            },
        )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_request"


async def test_registered_redirect_uris_are_matched_exactly(clock: FakeClock) -> None:
    registered = "https://app.example/oauth/callback"
    async with _http(_server(clock, [registered])) as http:
        code = await _code(http, registered)
        loopback = await http.get(
            "/oauth2/authorize/",
            params={"client_id": CLIENT["client_id"], "response_type": "code", "redirect_uri": REDIRECT},
        )
        wrong_redirect = await _token(
            http, grant_type="authorization_code", code=code, redirect_uri="https://app.example/other"
        )
    assert loopback.status_code == 400
    assert wrong_redirect.json()["error"] == "invalid_grant"


async def test_tokens_are_stored_only_as_digests(clock: FakeClock) -> None:
    server = _server(clock)
    async with _http(server) as http:
        tokens = (await _token(http, grant_type="authorization_code", code=await _code(http))).json()
    state = repr(vars(server))
    assert tokens["access_token"] not in state
    assert tokens["refresh_token"] not in state
    assert tokens["access_token"] not in repr(server)
