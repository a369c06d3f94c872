"""`closeflow auth oauth`: the browser login with a loopback redirect listener, and its paste fallback.

The browser is played by an httpx2 request to the real listener on 127.0.0.1; Close's token
endpoint by a MockTransport that accepts one code.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close._errors import Unauthorized
from closeflow.close._oauth import OAuthApp, OAuthToken
from closeflow.close._oauth_login import run_authorization_flow

APP = OAuthApp.for_base_url("oa2client_test", "client-secret", "https://emu.test/api/v1")


class TokenEndpoint:
    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        if form.get("code") != "the-code":
            return httpx2.Response(400, json={"error": "invalid_grant"})
        return httpx2.Response(
            200,
            json={"token_type": "Bearer", "access_token": "at", "refresh_token": "rt", "expires_in": 3600},
        )


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def browser() -> httpx2.AsyncClient:
    # A real loopback connection; no proxy from the environment may intercept it.
    return httpx2.AsyncClient(trust_env=False)


async def start_flow(
    endpoint: TokenEndpoint, **kwargs: object
) -> tuple[asyncio.Task[OAuthToken], dict[str, str]]:
    shown: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(
        run_authorization_flow(
            APP,
            open_browser=False,
            show=shown.put_nowait,
            transport=endpoint.transport(),
            clock=FakeClock(),
            **kwargs,  # type: ignore[arg-type]
        )
    )
    url = await asyncio.wait_for(shown.get(), 10)
    assert url.startswith("https://emu.test/oauth2/authorize/?")
    return task, query(url)


async def test_loopback_flow_catches_the_redirect_and_exchanges_the_code() -> None:
    endpoint = TokenEndpoint()
    task, params = await start_flow(endpoint)
    redirect_uri = params["redirect_uri"]
    assert redirect_uri.startswith("http://127.0.0.1:")
    assert redirect_uri.endswith("/callback")
    assert len(params["state"]) >= 32

    async with browser() as http:
        page = await http.get(redirect_uri, params={"code": "the-code", "state": params["state"]})
    token = await asyncio.wait_for(task, 10)

    assert page.status_code == 200
    assert "authorized" in page.text
    assert (token.access_token, token.refresh_token) == ("at", "rt")
    assert len(endpoint.forms) == 1
    assert endpoint.forms[0]["redirect_uri"] == redirect_uri  # must equal the authorize request's


async def test_loopback_flow_ignores_a_redirect_with_someone_elses_state() -> None:
    endpoint = TokenEndpoint()
    task, params = await start_flow(endpoint)
    async with browser() as http:
        forged = await http.get(params["redirect_uri"], params={"code": "evil", "state": "not-ours"})
        stray = await http.get(params["redirect_uri"].replace("/callback", "/favicon.ico"))
        assert not task.done()
        await http.get(params["redirect_uri"], params={"code": "the-code", "state": params["state"]})
    token = await asyncio.wait_for(task, 10)

    assert (forged.status_code, stray.status_code) == (400, 404)
    assert token.access_token == "at"
    assert [form["code"] for form in endpoint.forms] == ["the-code"]


async def test_loopback_flow_finishes_despite_an_idle_preconnected_browser_socket() -> None:
    endpoint = TokenEndpoint()
    task, params = await start_flow(endpoint)
    port = urlsplit(params["redirect_uri"]).port
    # Browsers open speculative connections and send nothing on them.
    _, idle = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with browser() as http:
            await http.get(params["redirect_uri"], params={"code": "the-code", "state": params["state"]})
        assert (await asyncio.wait_for(task, 10)).access_token == "at"
    finally:
        idle.close()


async def test_loopback_flow_reports_a_declined_consent() -> None:
    endpoint = TokenEndpoint()
    task, params = await start_flow(endpoint)
    async with browser() as http:
        await http.get(params["redirect_uri"], params={"error": "access_denied", "state": params["state"]})

    with pytest.raises(Unauthorized, match="access_denied"):
        await asyncio.wait_for(task, 10)
    assert endpoint.forms == []


async def test_loopback_flow_listens_on_the_requested_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = TokenEndpoint()
    task, params = await start_flow(endpoint, port=port)
    assert params["redirect_uri"] == f"http://127.0.0.1:{port}/callback"
    async with browser() as http:
        await http.get(params["redirect_uri"], params={"code": "the-code", "state": params["state"]})
    assert (await asyncio.wait_for(task, 10)).access_token == "at"


async def test_when_the_port_is_taken_the_user_pastes_the_redirect_url() -> None:
    endpoint = TokenEndpoint()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        prompts: list[str] = []
        shown: list[str] = []

        def paste(message: str) -> str:
            prompts.append(message)
            state = query(shown[0])["state"]
            return f"http://127.0.0.1:{port}/callback?" + urlencode({"code": "the-code", "state": state})

        token = await run_authorization_flow(
            APP,
            open_browser=False,
            port=port,
            prompt=paste,
            show=shown.append,
            transport=endpoint.transport(),
        )

    assert token.access_token == "at"
    assert len(prompts) == 1
    assert endpoint.forms[0]["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


async def test_paste_fallback_accepts_a_bare_code() -> None:
    endpoint = TokenEndpoint()
    token = await run_authorization_flow(
        APP,
        open_browser=False,
        listen=False,
        prompt=lambda _: "  the-code\n",
        show=lambda _: None,
        transport=endpoint.transport(),
    )
    assert token.refresh_token == "rt"


async def test_paste_fallback_refuses_a_url_from_another_login_attempt() -> None:
    endpoint = TokenEndpoint()
    with pytest.raises(Unauthorized, match="state mismatch"):
        await run_authorization_flow(
            APP,
            open_browser=False,
            listen=False,
            prompt=lambda _: "http://127.0.0.1:1/callback?code=the-code&state=old",
            show=lambda _: None,
            transport=endpoint.transport(),
        )
    assert endpoint.forms == []
