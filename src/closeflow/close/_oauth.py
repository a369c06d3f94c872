"""OAuth 2.0 with Close (§1.5): the authorization-code grant, refresh-token rotation, revocation.

Authlib builds and parses the protocol messages; httpx2 carries them (Authlib's own httpx
integration imports encode's httpx, which closeflow does not depend on). Token expiry is computed
from a ``Clock`` so tests can move time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx2
from authlib.common.urls import url_decode
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request

from closeflow._clock import Clock, SystemClock
from closeflow.close._auth import redact, short_hash
from closeflow.close._errors import CloseError, ConfigError, Unauthorized

CLOSE_API_HOST = "api.close.com"
# Close serves the consent screen from the web app's host, but the token and revoke endpoints
# from the API host (§1.5).
CLOSE_AUTHORIZE_URL = "https://app.close.com/oauth2/authorize/"

REFRESH_REVOKED = "the refresh token was revoked or already used; run `closeflow auth oauth` again"


@dataclass(frozen=True, repr=False)
class OAuthApp:
    """An OAuth app registered in Close (Settings → Developer → OAuth Apps)."""

    client_id: str
    client_secret: str
    token_url: str
    authorize_url: str
    revoke_url: str

    @classmethod
    def for_base_url(cls, client_id: str, client_secret: str, base_url: str) -> OAuthApp:
        """Derive the OAuth endpoints from an API base URL such as ``https://api.close.com/api/v1``.

        Real Close splits hosts (consent on app.close.com, tokens on api.close.com); anything
        else (the emulator, a proxy) serves all three endpoints at the root of the same origin.
        """
        parts = urlsplit(base_url)
        if not parts.scheme or not parts.netloc:
            raise ConfigError(
                f"not an absolute URL: {base_url!r}; expected e.g. https://api.close.com/api/v1"
            )
        origin = f"{parts.scheme}://{parts.netloc}"
        authorize = CLOSE_AUTHORIZE_URL if parts.hostname == CLOSE_API_HOST else f"{origin}/oauth2/authorize/"
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            token_url=f"{origin}/oauth2/token/",
            authorize_url=authorize,
            revoke_url=f"{origin}/oauth2/revoke/",
        )

    def __repr__(self) -> str:
        return (
            f"OAuthApp(client_id={self.client_id!r}, client_secret={redact(self.client_secret)}, "
            f"token_url={self.token_url!r})"
        )


@dataclass(frozen=True, repr=False)
class OAuthToken:
    """A token pair as Close issues it, with the expiry made absolute when it was received."""

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    organization_id: str | None = None
    user_id: str | None = None

    @classmethod
    def from_response(cls, body: Mapping[str, Any], *, now: float) -> OAuthToken:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise CloseError("Close's token endpoint answered without an access_token")
        token_type = str(body.get("token_type") or "Bearer")
        if token_type.lower() != "bearer":
            raise CloseError(f"Close issued an unsupported token type {token_type!r}")
        expires_in = body.get("expires_in")
        return cls(
            access_token=access,
            refresh_token=_opt_str(body.get("refresh_token")),
            expires_at=now + float(expires_in) if expires_in is not None else None,
            scope=_opt_str(body.get("scope")),
            organization_id=_opt_str(body.get("organization_id")),
            user_id=_opt_str(body.get("user_id")),
        )

    def to_profile(self) -> dict[str, Any]:
        """The fields a credentials-file profile keeps (secrets in the clear: only for that file)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "organization_id": self.organization_id,
            "user_id": self.user_id,
        }

    def expires_within(self, seconds: float, *, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at - seconds

    def __repr__(self) -> str:
        return (
            f"OAuthToken(access_token={redact(self.access_token)}, "
            f"refresh_token={redact(self.refresh_token)}, expires_at={self.expires_at!r}, "
            f"scope={self.scope!r}, organization_id={self.organization_id!r}, user_id={self.user_id!r})"
        )

    __str__ = __repr__


def _opt_str(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def authorization_url(app: OAuthApp, redirect_uri: str, state: str, *, scope: str | None = None) -> str:
    """The consent-screen URL; Close sends the browser back to ``redirect_uri?code=…&state=…``."""
    url: str = prepare_grant_uri(
        app.authorize_url,
        client_id=app.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
    )
    return url


async def exchange_code(
    app: OAuthApp,
    code: str,
    redirect_uri: str,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> OAuthToken:
    """Trade an authorization code for a token pair (client credentials in the form body, §1.5)."""
    body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri)
    return await _token_request(app, body, transport=transport, clock=clock, grant="authorization_code")


async def refresh(
    app: OAuthApp,
    refresh_token: str,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> OAuthToken:
    """Trade a refresh token for a new pair. Close rotates: the old refresh token dies here."""
    body = prepare_token_request("refresh_token", refresh_token=refresh_token)
    return await _token_request(app, body, transport=transport, clock=clock, grant="refresh_token")


async def revoke(app: OAuthApp, token: str, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
    """Revoke a refresh token (and with it the access tokens issued from it)."""
    form = {"client_id": app.client_id, "client_secret": app.client_secret, "token": token}
    async with httpx2.AsyncClient(transport=transport) as http:
        response = await http.post(app.revoke_url, data=form)
    if response.status_code >= 400:
        raise _token_error(response, grant="revoke", url=app.revoke_url)


async def _token_request(
    app: OAuthApp,
    body: str,
    *,
    transport: httpx2.AsyncBaseTransport | None,
    clock: Clock | None,
    grant: str,
) -> OAuthToken:
    form = dict(url_decode(body))
    form["client_id"] = app.client_id
    form["client_secret"] = app.client_secret
    async with httpx2.AsyncClient(transport=transport) as http:
        response = await http.post(app.token_url, data=form, headers={"Accept": "application/json"})
    if response.status_code >= 400:
        raise _token_error(response, grant=grant, url=app.token_url)
    try:
        payload = response.json()
    except ValueError as exc:
        raise CloseError(f"Close's token endpoint answered {response.status_code} without JSON") from exc
    if not isinstance(payload, dict):
        raise CloseError("Close's token endpoint answered with a JSON value that is not an object")
    return OAuthToken.from_response(payload, now=(clock or SystemClock()).now())


def _token_error(response: httpx2.Response, *, grant: str, url: str) -> CloseError:
    """Turn an RFC 6749 error body into a typed error; the request's secrets are never echoed."""
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    code = payload.get("error") if isinstance(payload, dict) else None
    context: dict[str, Any] = {"status": response.status_code, "method": "POST", "path": urlsplit(url).path}
    if code == "invalid_grant":
        if grant == "refresh_token":
            return Unauthorized(REFRESH_REVOKED, **context)
        return Unauthorized(
            "Close rejected the authorization code (expired, already used, or issued for another "
            "redirect URI); run `closeflow auth oauth` again",
            **context,
        )
    if code in ("invalid_client", "unauthorized_client") or response.status_code == 401:
        return Unauthorized(
            "Close rejected the OAuth client id or secret; check the app under "
            "Settings → Developer → OAuth Apps",
            **context,
        )
    detail = f" ({code})" if isinstance(code, str) else ""
    return CloseError(f"Close's OAuth endpoint refused the {grant} request{detail}", **context)


class TokenStore(Protocol):
    """Where a rotated token pair is persisted before it is used (see ``OAuthCredentials``).

    A store shared by several holders of the same connection (other ``OAuthCredentials`` in this
    process, other processes) also offers ``exclusive()`` — held around "re-read, refresh, save"
    — and ``latest()``, the pair last saved by anyone: whoever refreshes second then adopts the
    first one's new pair instead of spending a refresh token that rotation already killed.
    """

    def save(self, token: OAuthToken) -> None: ...


@runtime_checkable
class SharedTokenStore(TokenStore, Protocol):
    def latest(self) -> OAuthToken | None: ...

    def exclusive(self) -> contextlib.AbstractAsyncContextManager[None]: ...


class OAuthCredentials(httpx2.Auth):
    """Bearer auth that refreshes the access token before it expires, and once on a 401.

    Close rotates refresh tokens: every refresh kills the old one. So a refresh must happen at
    most once at a time per credentials object (concurrent requests wait on the lock and reuse
    the new token), and the new pair is saved to the ``store`` before the new access token is
    sent anywhere, so a crash right after can never strand the only valid refresh token in memory.
    """

    def __init__(
        self,
        app: OAuthApp,
        token: OAuthToken,
        *,
        store: TokenStore | None = None,
        clock: Clock | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        refresh_margin: float = 300.0,
    ) -> None:
        self._app = app
        self._token = token
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._transport = transport
        self._margin = refresh_margin
        self._lock = asyncio.Lock()
        self.refresh_count = 0

    @property
    def token(self) -> OAuthToken:
        return self._token

    @property
    def app(self) -> OAuthApp:
        return self._app

    def httpx_auth(self) -> httpx2.Auth:
        return self

    @property
    def fingerprint(self) -> str:
        return "oauth:" + short_hash(self._app.client_id, self._token.user_id or "")

    @property
    def organization_id(self) -> str | None:
        return self._token.organization_id

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        # The request may be sent twice (after a 401), so its body must be replayable.
        await request.aread()
        token = self._token
        if token.refresh_token and token.expires_within(self._margin, now=self._clock.now()):
            token = await self._refresh(stale=token)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401 or not token.refresh_token:
            return
        token = await self._refresh(stale=token)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        yield request

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise TypeError("OAuthCredentials refreshes asynchronously; use it with httpx2.AsyncClient")
        yield request  # pragma: no cover - makes this a generator, like the method it overrides

    async def _refresh(self, *, stale: OAuthToken) -> OAuthToken:
        async with self._lock:
            if self._token is not stale:
                # Another request refreshed while this one waited: the stale refresh token is
                # already revoked by rotation, so reuse the new pair instead of refreshing again.
                return self._token
            shared = self._store if isinstance(self._store, SharedTokenStore) else None
            async with shared.exclusive() if shared else contextlib.nullcontext():
                latest = shared.latest() if shared else None
                if (
                    latest is not None
                    and latest.refresh_token
                    and latest.refresh_token != stale.refresh_token
                ):
                    # Someone else holding this connection rotated it already: adopt their pair.
                    self._token = stale = latest
                    if not latest.expires_within(self._margin, now=self._clock.now()):
                        return latest
                return await self._rotate(stale)

    async def _rotate(self, stale: OAuthToken) -> OAuthToken:
        if not stale.refresh_token:
            raise Unauthorized("the OAuth access token expired and there is no refresh token")
        fresh = await refresh(self._app, stale.refresh_token, transport=self._transport, clock=self._clock)
        # Close may leave out fields it does not change; keep what we knew.
        fresh = OAuthToken(
            access_token=fresh.access_token,
            refresh_token=fresh.refresh_token or stale.refresh_token,
            expires_at=fresh.expires_at,
            scope=fresh.scope or stale.scope,
            organization_id=fresh.organization_id or stale.organization_id,
            user_id=fresh.user_id or stale.user_id,
        )
        self.refresh_count += 1
        try:
            if self._store is not None:
                self._store.save(fresh)
        finally:
            # Even if saving failed, the old refresh token is dead: keeping the new pair in
            # memory is the only way this process can still reach Close.
            self._token = fresh
        return fresh

    def __repr__(self) -> str:
        return f"OAuthCredentials(client_id={self._app.client_id!r}, token={self._token!r})"

    __str__ = __repr__
