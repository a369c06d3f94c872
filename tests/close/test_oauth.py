"""OAuth 2.0 with Close (close-api.md §1.5): code exchange, refresh, rotation, revocation.

``RotatingOAuthServer`` stands in for Close's token endpoint and one Bearer-protected API route.
Like Close, every refresh issues a new pair and revokes the old refresh token.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close._errors import Unauthorized
from closeflow.close._oauth import (
    REFRESH_REVOKED,
    OAuthApp,
    OAuthCredentials,
    OAuthToken,
    authorization_url,
    exchange_code,
    refresh,
    revoke,
)

CLIENT_ID = "oa2client_test"
CLIENT_SECRET = "client-secret-do-not-leak"
API = "https://emu.test/api/v1"


class RotatingOAuthServer:
    def __init__(self, clock: FakeClock, ttl: float = 3600.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.counter = itertools.count(1)
        self.codes = {"good-code"}
        self.access: dict[str, float] = {}  # access token -> expiry
        self.refresh_tokens: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.refreshes = 0
        self.events: list[tuple[str, str]] = []  # ("api", bearer) in arrival order
        self.refresh_delay_ticks = 0

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def issue(self) -> dict[str, object]:
        n = next(self.counter)
        access, refresh_token = f"access-{n}-secret", f"refresh-{n}-secret"
        self.access[access] = self.clock.now() + self.ttl
        self.refresh_tokens.add(refresh_token)
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh_token,
            "expires_in": self.ttl,
            "scope": "all.full_access offline_access",
            "organization_id": "orga_1",
            "user_id": "user_1",
        }

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/oauth2/token/":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_forms.append(form)
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return httpx2.Response(401, json={"error": "invalid_client"})
            if form["grant_type"] == "authorization_code":
                if form.get("code") not in self.codes:
                    return httpx2.Response(400, json={"error": "invalid_grant"})
                self.codes.discard(form["code"])
                return httpx2.Response(200, json=self.issue())
            if form.get("refresh_token") not in self.refresh_tokens:
                return httpx2.Response(400, json={"error": "invalid_grant"})
            for _ in range(self.refresh_delay_ticks):
                await asyncio.sleep(0)  # let concurrent requests pile up behind the refresh
            self.refresh_tokens.discard(form["refresh_token"])  # rotation
            self.refreshes += 1
            return httpx2.Response(200, json=self.issue())
        if path == "/oauth2/revoke/":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.refresh_tokens.discard(form["token"])
            return httpx2.Response(200, json={})
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.events.append(("api", bearer))
        if self.access.get(bearer, 0.0) <= self.clock.now():
            return httpx2.Response(401, json={"error": "Unauthorized"})
        return httpx2.Response(200, json={"id": "user_1"})


class RecordingStore:
    def __init__(self, server: RotatingOAuthServer) -> None:
        self.server = server
        self.saved: list[OAuthToken] = []

    def save(self, token: OAuthToken) -> None:
        self.saved.append(token)
        self.server.events.append(("saved", token.access_token))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> RotatingOAuthServer:
    return RotatingOAuthServer(clock)


@pytest.fixture
def app() -> OAuthApp:
    return OAuthApp.for_base_url(CLIENT_ID, CLIENT_SECRET, API)


async def logged_in(app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock) -> OAuthToken:
    return await exchange_code(
        app, "good-code", "http://127.0.0.1:5000/callback", transport=server.transport(), clock=clock
    )


def api_client(credentials: OAuthCredentials, server: RotatingOAuthServer) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=server.transport(), base_url=API, auth=credentials.httpx_auth())


def test_urls_for_real_close_split_consent_and_token_hosts() -> None:
    app = OAuthApp.for_base_url(CLIENT_ID, CLIENT_SECRET, "https://api.close.com/api/v1")
    assert app.token_url == "https://api.close.com/oauth2/token/"
    assert app.revoke_url == "https://api.close.com/oauth2/revoke/"
    assert app.authorize_url == "https://app.close.com/oauth2/authorize/"


def test_urls_for_any_other_host_stay_on_the_same_origin() -> None:
    app = OAuthApp.for_base_url(CLIENT_ID, CLIENT_SECRET, "http://127.0.0.1:8765/api/v1/")
    assert app.token_url == "http://127.0.0.1:8765/oauth2/token/"
    assert app.revoke_url == "http://127.0.0.1:8765/oauth2/revoke/"
    assert app.authorize_url == "http://127.0.0.1:8765/oauth2/authorize/"


def test_authorization_url_asks_for_a_code_with_client_redirect_and_state(app: OAuthApp) -> None:
    url = authorization_url(app, "http://127.0.0.1:5000/callback", "st4te")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://emu.test/oauth2/authorize/"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": ["http://127.0.0.1:5000/callback"],
        "state": ["st4te"],
    }


async def test_exchange_code_posts_client_credentials_in_the_form_body(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    token = await logged_in(app, server, clock)

    assert server.token_forms == [
        {
            "grant_type": "authorization_code",
            "code": "good-code",
            "redirect_uri": "http://127.0.0.1:5000/callback",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ]
    assert token.access_token == "access-1-secret"
    assert token.refresh_token == "refresh-1-secret"
    assert token.expires_at == clock.now() + 3600.0
    assert (token.organization_id, token.user_id) == ("orga_1", "user_1")
    assert token.scope == "all.full_access offline_access"


async def test_exchange_code_with_a_used_code_raises_unauthorized(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    await logged_in(app, server, clock)
    with pytest.raises(Unauthorized, match="authorization code"):
        await logged_in(app, server, clock)


async def test_wrong_client_secret_raises_unauthorized_without_echoing_it(
    server: RotatingOAuthServer, clock: FakeClock
) -> None:
    wrong = OAuthApp.for_base_url(CLIENT_ID, "wrong-secret-value", API)
    with pytest.raises(Unauthorized, match="client id or secret") as caught:
        await logged_in(wrong, server, clock)
    assert "wrong-secret-value" not in f"{caught.value} {caught.value!r}"


async def test_refresh_rotates_the_refresh_token(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    first = await logged_in(app, server, clock)
    assert first.refresh_token is not None
    second = await refresh(app, first.refresh_token, transport=server.transport(), clock=clock)
    assert second.refresh_token == "refresh-2-secret"
    with pytest.raises(Unauthorized):
        await refresh(app, first.refresh_token, transport=server.transport(), clock=clock)


async def test_credentials_refresh_before_expiry_within_the_margin(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    async with api_client(credentials, server) as http:
        clock.advance(3600.0 - 301.0)
        assert (await http.get("/me/")).status_code == 200
        assert server.refreshes == 0
        clock.advance(2.0)  # now 299 s before expiry: inside the 300 s margin
        assert (await http.get("/me/")).status_code == 200

    assert server.refreshes == 1
    # Refreshed before sending: no request ever went out with a token about to expire.
    assert [bearer for _, bearer in server.events] == ["access-1-secret", "access-2-secret"]
    assert credentials.token.refresh_token == "refresh-2-secret"


async def test_credentials_refresh_once_on_a_401_and_retry_the_request(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    server.access["access-1-secret"] = 0.0  # Close dropped the access token early
    async with api_client(credentials, server) as http:
        response = await http.post("/lead/", json={"name": "Acme"})

    assert response.status_code == 200
    assert server.refreshes == 1
    assert [bearer for _, bearer in server.events] == ["access-1-secret", "access-2-secret"]


async def test_a_second_401_after_refreshing_is_returned_not_retried_forever(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    server.ttl = 0.0  # every new access token is dead on arrival
    server.access["access-1-secret"] = 0.0
    async with api_client(credentials, server) as http:
        response = await http.get("/me/")

    assert response.status_code == 401
    assert server.refreshes == 1
    assert len(server.events) == 2


async def test_rotated_token_is_persisted_before_the_new_access_token_is_used(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    store = RecordingStore(server)
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), store=store, clock=clock, transport=server.transport()
    )
    clock.advance(3600.0)
    async with api_client(credentials, server) as http:
        assert (await http.get("/me/")).status_code == 200

    assert [t.refresh_token for t in store.saved] == ["refresh-2-secret"]
    assert server.events == [("saved", "access-2-secret"), ("api", "access-2-secret")]


async def test_twenty_concurrent_requests_across_expiry_cause_exactly_one_refresh(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    store = RecordingStore(server)
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), store=store, clock=clock, transport=server.transport()
    )
    server.refresh_delay_ticks = 5
    clock.advance(3600.0 - 10.0)
    async with api_client(credentials, server) as http:
        responses = await asyncio.gather(*(http.get("/me/") for _ in range(20)))

    assert [r.status_code for r in responses] == [200] * 20
    assert server.refreshes == 1
    assert len(store.saved) == 1
    assert server.events == [("saved", "access-2-secret")] + [("api", "access-2-secret")] * 20


async def test_concurrent_401s_share_one_refresh(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    server.access["access-1-secret"] = 0.0
    server.refresh_delay_ticks = 5
    async with api_client(credentials, server) as http:
        responses = await asyncio.gather(*(http.get("/me/") for _ in range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    assert server.refreshes == 1


async def test_revoked_refresh_token_raises_a_clear_unauthorized_without_the_token(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    token = await logged_in(app, server, clock)
    credentials = OAuthCredentials(app, token, clock=clock, transport=server.transport())
    server.refresh_tokens.clear()  # revoked in Close's settings, or used by another process
    clock.advance(3600.0)
    async with api_client(credentials, server) as http:
        with pytest.raises(Unauthorized) as caught:
            await http.get("/me/")

    assert REFRESH_REVOKED in str(caught.value)
    assert "closeflow auth oauth" in str(caught.value)
    shown = f"{caught.value} {caught.value!r} {caught.value.args}"
    for secret in ("refresh-1-secret", "access-1-secret", CLIENT_SECRET):
        assert secret not in shown


async def test_revoke_posts_the_token_with_client_credentials(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    token = await logged_in(app, server, clock)
    assert token.refresh_token is not None
    await revoke(app, token.refresh_token, transport=server.transport())

    assert "refresh-1-secret" not in server.refresh_tokens
    with pytest.raises(Unauthorized, match="revoked or already used"):
        await refresh(app, token.refresh_token, transport=server.transport(), clock=clock)


async def test_no_secret_appears_in_reprs_or_logs_during_a_refresh(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    clock.advance(3600.0)
    async with api_client(credentials, server) as http:
        await http.get("/me/")
    logging.getLogger("closeflow.test").info("%r %s %r %r", credentials, credentials, app, credentials.token)

    shown = f"{caplog.text} {credentials!r} {app!r} {credentials.token!r} {credentials.token!s}"
    for secret in ("access-1-secret", "refresh-1-secret", "access-2-secret", "refresh-2-secret"):
        assert secret not in shown
    assert CLIENT_SECRET not in shown
    assert "acce…****" in repr(credentials.token)


async def test_fingerprint_names_client_and_user_and_is_stable_across_refreshes(
    app: OAuthApp, server: RotatingOAuthServer, clock: FakeClock
) -> None:
    credentials = OAuthCredentials(
        app, await logged_in(app, server, clock), clock=clock, transport=server.transport()
    )
    before = credentials.fingerprint
    clock.advance(3600.0)
    async with api_client(credentials, server) as http:
        await http.get("/me/")

    assert credentials.fingerprint == before
    assert before.startswith("oauth:")
    assert len(before) == len("oauth:") + 16
    assert credentials.organization_id == "orga_1"


def test_oauth_credentials_refuse_a_sync_client(app: OAuthApp) -> None:
    credentials = OAuthCredentials(app, OAuthToken(access_token="a"))
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200))
    with httpx2.Client(transport=transport, auth=credentials) as http, pytest.raises(TypeError):
        http.get("https://emu.test/api/v1/me/")
