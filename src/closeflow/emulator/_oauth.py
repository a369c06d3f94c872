"""Close's OAuth 2.0 server (§1.5): authorize, token (code + refresh with rotation), revoke.

The consent screen is skipped: authorize approves the configured test user at once. Client
credentials travel in the form body (client_secret_post), as Close documents. Error bodies follow
RFC 6749 (Close documents none). Authorization codes live 60 s and work once. Tokens are kept
only as SHA-256 digests, so a dump of this object reveals no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from closeflow._clock import Clock

from ._config import EmulatorConfig, OAuthClientConfig

CODE_TTL = 60.0
SCOPE = "all.full_access offline_access"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


@dataclass
class _Code:
    client_id: str
    redirect_uri: str | None
    expires_at: float


@dataclass
class _AccessToken:
    client_id: str
    refresh_digest: str
    expires_at: float


class OAuthServer:
    def __init__(self, config: EmulatorConfig, clock: Clock, *, organization_id: str, user_id: str) -> None:
        self._config = config
        self._clock = clock
        self._organization_id = organization_id
        self._user_id = user_id
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, str] = {}  # refresh digest -> client_id; rotated or revoked ones are removed
        self._access: dict[str, _AccessToken] = {}

    def __repr__(self) -> str:
        return f"OAuthServer(organization_id={self._organization_id!r}, live_tokens={len(self._access)})"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth2/authorize/", self._authorize, methods=["GET"]),
            Route("/oauth2/token/", self._token, methods=["POST"]),
            Route("/oauth2/revoke/", self._revoke, methods=["POST"]),
        ]

    def authenticate_bearer(self, token: str) -> tuple[str, str] | None:
        """(user_id, organization_id) for a live access token; None if unknown, expired or revoked."""
        access = self._access.get(_digest(token))
        if access is None or self._clock.now() >= access.expires_at:
            return None
        return self._user_id, self._organization_id

    def expire_access_tokens(self) -> None:
        """Fault switch: every access token issued so far is now expired (refresh tokens still work)."""
        now = self._clock.now()
        for access in self._access.values():
            access.expires_at = min(access.expires_at, now)

    def revoke_all(self) -> None:
        self._codes.clear()
        self._refresh.clear()
        self._access.clear()

    def _client(self, client_id: str | None) -> OAuthClientConfig | None:
        return next((c for c in self._config.oauth_clients if c.client_id == client_id), None)

    def _authenticated_client(self, form: dict[str, str]) -> OAuthClientConfig | None:
        client = self._client(form.get("client_id"))
        secret = form.get("client_secret", "")
        if client is None or not hmac.compare_digest(client.client_secret.encode(), secret.encode()):
            return None
        return client

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self._client(params.get("client_id"))
        if client is None:
            return _error("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            if not client.redirect_uris:
                return _error("invalid_request", "redirect_uri is required: this client registered none")
            target = client.redirect_uris[0]
        elif (client.redirect_uris and redirect_uri not in client.redirect_uris) or (
            not client.redirect_uris and not _is_loopback(redirect_uri)
        ):
            # Never redirect to an unregistered URI: that would hand the code to a stranger.
            return _error(
                "invalid_request", "redirect_uri does not match the client's registered redirect URIs"
            )
        else:
            target = redirect_uri
        extra = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            return RedirectResponse(_with_query(target, {"error": "unsupported_response_type", **extra}), 302)
        code = secrets.token_urlsafe(24)
        self._codes[_digest(code)] = _Code(client.client_id, redirect_uri, self._clock.now() + CODE_TTL)
        return RedirectResponse(_with_query(target, {"code": code, **extra}), status_code=302)

    async def _form(self, request: Request) -> dict[str, str]:
        # Parsed by hand: Starlette's form parser needs python-multipart for nothing more than this.
        return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))

    async def _token(self, request: Request) -> Response:
        form = await self._form(request)
        client = self._authenticated_client(form)
        if client is None:
            return _error("invalid_client", "client authentication failed", 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(client, form)
        if grant == "refresh_token":
            return self._rotate(client, form)
        if not grant:
            return _error("invalid_request", "grant_type is required")
        return _error("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _exchange_code(self, client: OAuthClientConfig, form: dict[str, str]) -> Response:
        if "code" not in form:
            return _error("invalid_request", "code is required")
        code = self._codes.pop(_digest(form["code"]), None)  # single use, even when the exchange fails
        if code is None or code.client_id != client.client_id or self._clock.now() >= code.expires_at:
            return _error("invalid_grant", "the authorization code is invalid, expired or already used")
        if code.redirect_uri is not None and form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
            return _error("invalid_grant", "redirect_uri differs from the one used to authorize")
        return self._issue(client)

    def _rotate(self, client: OAuthClientConfig, form: dict[str, str]) -> Response:
        if "refresh_token" not in form:
            return _error("invalid_request", "refresh_token is required")
        digest = _digest(form["refresh_token"])
        if self._refresh.get(digest) != client.client_id:
            return _error("invalid_grant", "the refresh token is invalid, revoked or already rotated")
        del self._refresh[digest]  # each refresh returns a new refresh token and revokes the old one
        return self._issue(client)

    def _issue(self, client: OAuthClientConfig) -> Response:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        ttl = self._config.oauth_access_ttl
        self._refresh[_digest(refresh)] = client.client_id
        self._access[_digest(access)] = _AccessToken(
            client.client_id, _digest(refresh), self._clock.now() + ttl
        )
        self._forget_expired()
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": int(ttl),
            "refresh_token": refresh,
            "scope": SCOPE,
            "organization_id": self._organization_id,
            "user_id": self._user_id,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _revoke(self, request: Request) -> Response:
        form = await self._form(request)
        client = self._authenticated_client(form)
        if client is None:
            return _error("invalid_client", "client authentication failed", 401)
        if "token" not in form:
            return _error("invalid_request", "token is required")
        digest = _digest(form["token"])
        # RFC 7009: unknown tokens are not an error. A refresh token takes its access tokens with it.
        if self._refresh.get(digest) == client.client_id:
            del self._refresh[digest]
            self._access = {k: a for k, a in self._access.items() if a.refresh_digest != digest}
        elif (access := self._access.get(digest)) is not None and access.client_id == client.client_id:
            del self._access[digest]
        return JSONResponse({})

    def _forget_expired(self) -> None:
        now = self._clock.now()
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}
        self._access = {k: a for k, a in self._access.items() if a.expires_at > now}
