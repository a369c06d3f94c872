"""Streamable HTTP for the MCP server: loopback by default; anywhere else only behind a bearer token.

The SDK's app does the protocol (and, on loopback, DNS-rebinding protection); ``BearerToken`` in
front of it refuses any request without ``Authorization: Bearer <token>``, comparing in constant
time, before a byte reaches the protocol.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from closeflow.close import ConfigError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
MIN_TOKEN_LENGTH = 16
PATH = "/mcp"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Off loopback a token is required, and it must be long enough not to be guessed."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"the bearer token must be at least {MIN_TOKEN_LENGTH} characters")
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"binding to {host} exposes Close to the network: set a bearer token (--token-env NAME, "
            "naming an environment variable that holds it) or bind to 127.0.0.1"
        )


class BearerToken:
    """ASGI middleware: 401 for HTTP requests without the right bearer token."""

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    def _allows(self, header: bytes) -> bool:
        scheme, _, given = header.strip().partition(b" ")
        # The scheme is case-insensitive (RFC 9110); the token is compared in constant time.
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not self._allows(given):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="closeflow"'),
                        ],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'}
                )
                return
        await self.app(scope, receive, send)


def http_app(server: Any, *, host: str, token: str | None) -> App:
    """The ASGI app serving ``server`` (an SDK ``Server``) at ``/mcp``.

    On any loopback address the Host and Origin headers must name it (the SDK does that for three
    spellings only; 127.0.0.2 or a long-form ::1 would go unprotected), so a web page cannot reach
    the server through DNS rebinding."""
    from mcp.server.transport_security import TransportSecuritySettings

    check_binding(host, token)
    security = None
    if is_loopback(host):
        shown = f"[{host}]" if ":" in host else host
        names = {shown, "localhost", "127.0.0.1", "[::1]"}
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=sorted(f"{name}:*" for name in names),
            allowed_origins=sorted(f"http://{name}:*" for name in names),
        )
    app: App = server.streamable_http_app(streamable_http_path=PATH, host=host, transport_security=security)
    return BearerToken(app, token) if token else app


async def serve_http(
    server: Any, *, host: str, port: int, token: str | None, announce: Callable[[str], None]
) -> None:
    """Serve until interrupted; ``announce`` gets the URL (with the real port when ``port`` is 0)."""
    import uvicorn

    app = http_app(server, host=host, token=token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    announce(f"http://{shown}:{sock.getsockname()[1]}{PATH}")
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])
