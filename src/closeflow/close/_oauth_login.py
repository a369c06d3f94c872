"""The interactive OAuth login behind `closeflow auth oauth`: a loopback redirect listener on
127.0.0.1, with a paste-the-code (or the redirect URL) fallback when no browser can reach it."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import httpx2
from authlib.common.security import generate_token

from closeflow._clock import Clock
from closeflow.close._errors import Unauthorized
from closeflow.close._oauth import OAuthApp, OAuthToken, authorization_url, exchange_code

CALLBACK_PATH = "/callback"
_PAGE = "<!doctype html><title>closeflow</title><p>{}</p>"


async def run_authorization_flow(
    app: OAuthApp,
    *,
    open_browser: bool,
    port: int = 0,
    prompt: Callable[[str], str] = input,
    show: Callable[[str], None] = print,
    listen: bool = True,
    scope: str | None = None,
    wait_seconds: float | None = 600.0,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> OAuthToken:
    """Send the user to Close's consent screen and catch the redirect on a loopback listener.

    Close only redirects to a registered ``redirect_uri``, so a real app needs a fixed ``port``
    (register ``http://127.0.0.1:PORT/callback``). Where nothing can listen (a remote shell, a
    taken port) or ``listen`` is False, the user pastes the URL the browser landed on, or the code.
    """
    state = generate_token(32)
    callback: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    server: asyncio.Server | None = None
    connections: set[asyncio.StreamWriter] = set()
    if listen:
        try:
            server = await asyncio.start_server(
                lambda r, w: _answer_callback(r, w, state=state, result=callback, open_=connections),
                "127.0.0.1",
                port,
            )
            port = server.sockets[0].getsockname()[1]
        except OSError:
            server = None
    redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    url = authorization_url(app, redirect_uri, state, scope=scope)
    show(url)
    if open_browser:
        webbrowser.open(url)
    if server is not None:
        try:
            async with server:
                try:
                    params = await asyncio.wait_for(callback, wait_seconds)
                except TimeoutError:
                    raise Unauthorized(
                        f"no redirect from Close reached 127.0.0.1:{port} within {wait_seconds:.0f} s; "
                        "check that your OAuth app's redirect URI is http://127.0.0.1:<port>/callback "
                        "and run `closeflow auth oauth --port <port>` again"
                    ) from None
                # Browsers keep idle pre-connected sockets open; closing them lets the server stop.
                for writer in connections:
                    writer.close()
        finally:
            server.close()
    else:
        answer = await asyncio.to_thread(prompt, "Paste the URL your browser landed on (or the code): ")
        params = _parse_pasted(answer, state)
    if "error" in params:
        raise Unauthorized(f"Close did not authorize closeflow ({params['error']})")
    return await exchange_code(app, params["code"], redirect_uri, transport=transport, clock=clock)


async def _answer_callback(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    state: str,
    result: asyncio.Future[dict[str, str]],
    open_: set[asyncio.StreamWriter],
) -> None:
    """Answer one HTTP request on the listener; settle ``result`` on a redirect carrying our state."""
    open_.add(writer)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    finally:
        open_.discard(writer)
    target = head.split(b"\r\n", 1)[0].split(b" ")
    parts = urlsplit(target[1].decode("latin-1") if len(target) == 3 else "/")
    params = dict(parse_qsl(parts.query))
    if parts.path != CALLBACK_PATH or not ({"code", "error"} & params.keys()):
        status, text = "404 Not Found", "Nothing here."
    elif not hmac.compare_digest(params.get("state", ""), state):
        # A redirect we did not ask for (another tab, a forged link): ignore it and keep waiting.
        status, text = "400 Bad Request", "This sign-in link does not belong to the running closeflow login."
    else:
        if not result.done():
            result.set_result(params)
        status = "200 OK"
        text = (
            "closeflow is authorized. You can close this tab."
            if "code" in params
            else "Authorization was declined. You can close this tab."
        )
    body = _PAGE.format(text).encode()
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


def _parse_pasted(answer: str, state: str) -> dict[str, str]:
    answer = answer.strip()
    if not answer:
        raise Unauthorized("no authorization code was pasted; run `closeflow auth oauth` again")
    if "=" not in answer:
        return {"code": answer}  # a bare code: nothing to check the state against
    params = dict(parse_qsl(urlsplit(answer).query or answer.lstrip("?")))
    if not ({"code", "error"} & params.keys()):
        raise Unauthorized("the pasted URL carries no `code`; paste the whole URL from the address bar")
    if not hmac.compare_digest(params.get("state", ""), state):
        raise Unauthorized("the pasted URL belongs to another login attempt (state mismatch); start again")
    return params
