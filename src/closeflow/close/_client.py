"""CloseClient: every request to Close goes through one path (budget → send → observe →
classify → retry), whatever the caller, so rate limits and retries are decided in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx2

from closeflow import __version__
from closeflow._clock import Clock, SystemClock
from closeflow._endpoint_groups import SEARCH_GROUP, endpoint_group
from closeflow.close import _pagination
from closeflow.close._auth import ApiKey, Credentials
from closeflow.close._errors import CloseError, ConfigError, TransportError
from closeflow.close._ratelimit import (
    BudgetSnapshot,
    RateBudget,
    RateBudgets,
    seconds_until_retry,
)
from closeflow.close._retry import RetryPolicy, call_with_retries

logger = logging.getLogger("closeflow.close")
SEARCH_LAG = 120.0

DEFAULT_BASE_URL = "https://api.close.com/api/v1"
DEFAULT_USER_AGENT = f"closeflow/{__version__} (python; httpx2)"

Params = Mapping[str, str | int | float | bool | None]


class CloseClient:
    """An async client for Close's REST API (or the emulator: same requests, other base URL).

    ``credentials`` is a credentials object or a plain API key string. Requests are spent from the
    rate budget of (organization, endpoint group): by default the process-wide
    ``RateBudgets.shared()``, so every client of one organization shares one budget. A client
    given its own ``clock`` (a simulation or a test) gets a registry of its own unless ``budgets``
    is passed, since waits on another clock mean nothing to it.
    """

    def __init__(
        self,
        credentials: Credentials | str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx2.AsyncBaseTransport | None = None,
        concurrency: int = 8,
        timeout: float = 30.0,
        clock: Clock | None = None,
        budgets: RateBudgets | None = None,
        max_attempts: int = 5,
        user_agent: str = DEFAULT_USER_AGENT,
        search_lag: float = SEARCH_LAG,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}")
        if search_lag < 0:
            raise ConfigError(f"search_lag must be 0 or more seconds, got {search_lag}")
        # How far Close's search may trail its writes (§2.4: list counts lagged 30-60 s). A create
        # whose answer was lost is not re-sent until its intent is older than this and search
        # still shows no such record. The emulator's search never lags: 0 is safe there.
        self.search_lag = search_lag
        self.credentials = _as_credentials(credentials)
        self.base_url = base_url.rstrip("/")
        self.clock: Clock = clock or SystemClock()
        if budgets is None:
            budgets = RateBudgets.shared() if clock is None else RateBudgets(clock=self.clock)
        self.budgets = budgets
        self.retry_policy = RetryPolicy(max_attempts=max_attempts)
        self._organization_id = self.credentials.organization_id
        self._slots = asyncio.Semaphore(concurrency)
        self._http = httpx2.AsyncClient(
            base_url=self.base_url + "/",
            auth=self.credentials.httpx_auth(),
            transport=transport,
            timeout=timeout,
            limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"CloseClient(base_url={self.base_url!r}, credentials={type(self.credentials).__name__})"

    async def __aenter__(self) -> CloseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def organization_id(self) -> str | None:
        """Known from OAuth credentials, or after ``me()``; None until then."""
        return self._organization_id

    @property
    def budget_key(self) -> str:
        """The organization key rate budgets are kept under (credentials fingerprint until the
        organization is known)."""
        return self._organization_id or self.credentials.fingerprint

    def budget(self, method: str, path: str) -> RateBudget:
        return self.budgets.budget(self.budget_key, endpoint_group(method, path))

    def rate_limit_states(self) -> list[BudgetSnapshot]:
        """The rate budgets this client has spent from (for ``closeflow check``)."""
        return self.budgets.snapshots(self.credentials.fingerprint, self.budget_key)

    async def me(self) -> dict[str, Any]:
        """``GET /me/``: the credentials' user; also teaches the client its organization id."""
        user = await self.get("/me/")
        organization_id = user.get("organization_id")
        if not isinstance(organization_id, str):
            organizations = user.get("organizations")
            if isinstance(organizations, list) and len(organizations) == 1:
                only = organizations[0]
                organization_id = only.get("id") if isinstance(only, dict) else None
        if isinstance(organization_id, str) and organization_id:
            self._organization_id = organization_id
        return user

    async def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        return await self._request("GET", path, params=params)

    async def post(self, path: str, *, params: Params | None = None, json: Any = None) -> dict[str, Any]:
        return await self._request("POST", path, params=params, json=json)

    async def put(self, path: str, *, params: Params | None = None, json: Any = None) -> dict[str, Any]:
        return await self._request("PUT", path, params=params, json=json)

    async def delete(self, path: str, *, params: Params | None = None, json: Any = None) -> dict[str, Any]:
        return await self._request("DELETE", path, params=params, json=json)

    def paginate(
        self, path: str, params: Params | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record of an offset-paginated list (``_skip``/``_limit`` until ``has_more`` is false)."""
        return _pagination.offset_pages(self, path, params, page_size=page_size)

    def search(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Every result of one ``POST /data/search/`` walk, following ``cursor`` until null."""
        return _pagination.search_cursor(self, body)

    def events(self, params: Params | None = None) -> AsyncIterator[dict[str, Any]]:
        """Event-log events, newest first, following ``cursor_next``."""
        return _pagination.event_cursor(self, params)

    def keyset(
        self,
        object_type: str,
        *,
        query: Mapping[str, Any] | None = None,
        fields: list[str] | None = None,
        since: str | datetime | None = None,
        page_size: int = 200,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every lead/contact matching ``query`` once, oldest ``date_updated`` first, however deep
        (survives the 10k-per-walk cap and expired cursors by re-querying from the last position)."""
        return _pagination.keyset(
            self, object_type, query=query, fields=fields, since=since, page_size=page_size
        )

    async def _request(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> dict[str, Any]:
        path_only = path.split("?", 1)[0]

        async def attempt(number: int) -> dict[str, Any]:
            budget = self.budget(method, path_only)
            permit = await budget.acquire()
            response: httpx2.Response | None = None
            try:
                async with self._slots:
                    response = await self._http.request(method, path, params=params, json=json)
            except httpx2.TransportError as exc:
                logger.debug("%s %s -> %s (attempt %d)", method, path_only, type(exc).__name__, number)
                raise TransportError.from_exception(method, path_only, exc) from None
            finally:
                budget.observe(response, permit)
            logger.debug("%s %s -> %d (attempt %d)", method, path_only, response.status_code, number)
            if response.status_code == 429:
                budget.on_429(seconds_until_retry(response))
            if response.status_code == 404 and method == "DELETE" and number > 1:
                # An earlier attempt deleted it but its answer was lost: the delete succeeded.
                return {}
            if response.status_code >= 400:
                raise CloseError.from_response(method, path_only, response)
            return _json_object(method, path_only, response)

        read_only = endpoint_group(method, path_only) == SEARCH_GROUP
        return await call_with_retries(
            method, attempt, policy=self.retry_policy, clock=self.clock, read_only=read_only
        )


def _as_credentials(credentials: Credentials | str) -> Credentials:
    if isinstance(credentials, str):
        if not credentials.strip():
            raise ConfigError("the Close API key is empty; pass a key or set up credentials")
        return ApiKey(credentials)
    if not isinstance(credentials, Credentials):
        raise ConfigError(
            f"credentials must be an API key string or a Credentials object, got {type(credentials).__name__}"
        )
    return credentials


def _json_object(method: str, path: str, response: httpx2.Response) -> dict[str, Any]:
    if not response.content.strip():
        return {}  # DELETE answers 200 {} or 204 with nothing
    try:
        body = response.json()
    except ValueError:
        raise CloseError(
            "response is not JSON", status=response.status_code, method=method, path=path
        ) from None
    if not isinstance(body, dict):
        raise CloseError(
            f"expected a JSON object, got {type(body).__name__}",
            status=response.status_code,
            method=method,
            path=path,
        )
    return body
