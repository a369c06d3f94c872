"""The emulator's ASGI app: a routing table over plain handlers, behind Close's request pipeline.

Middleware order, outermost first (each is a small pure-ASGI class):

1. ``PathNormalisation`` — collapse ``//``, make the trailing slash optional, alias the legacy
   plural ``/custom_fields/`` (§1.2, §12.1), and turn ``POST`` + ``x-http-method-override: GET``
   with ``{"_params": {...}}`` into the equivalent GET (§1.3).
2. ``RequestLog`` — every request with its final status, including 401/429/5xx.
3. ``FaultMiddleware`` (``_faults.py``) — injected 5xx, latency and dropped connections.
4. ``Authentication`` — Basic with the API key as username, or an OAuth Bearer token.
5. ``RateLimiting`` — ``RateLimiter.admit`` per identity and endpoint group; headers on every answer.
6. The router. ``/oauth2/…`` routes sit at the root and skip 4 and 5.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeflow.emulator import _routes_custom_fields as cf
from closeflow.emulator import _routes_events as events
from closeflow.emulator import _routes_leads as leads
from closeflow.emulator import _routes_opportunities as opportunities
from closeflow.emulator import _routes_org as org_routes
from closeflow.emulator import _routes_tasks as tasks
from closeflow.emulator._errors import INVALID_JSON, UNAUTHORIZED, ApiError
from closeflow.emulator._events import WriteContext
from closeflow.emulator._faults import FaultMiddleware
from closeflow.emulator._ids import key_id
from closeflow.emulator._requests import CONTEXT_KEY, json_body, org_of
from closeflow.emulator._routes_activities import activity_routes
from closeflow.emulator._search import SearchError

if TYPE_CHECKING:
    from closeflow.emulator._emulator import Emulator

IDENTITY_KEY = "closeflow.identity"  # the raw key or token; removed once the rate limiter has seen it
OAUTH_PREFIX = "/oauth2/"
_SLASHES = re.compile(r"/{2,}")

ALL = ["GET", "POST", "PUT", "DELETE"]


async def data_search(request: Request) -> JSONResponse:
    emulator = request.app.state.emulator
    return JSONResponse(emulator.search.search(await json_body(request), org_of(request)))


def api_routes(base: str) -> list[BaseRoute]:
    """The routing table under ``/api/v1``: one row per path, handlers dispatch on method."""
    table: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/me/", org_routes.me, ["GET"]),
        ("/user/", org_routes.list_users, ["GET"]),
        ("/user/{user_id}/", org_routes.get_user, ["GET"]),
        ("/organization/{organization_id}/", org_routes.get_organization, ["GET", "PUT"]),
        ("/status/lead/", org_routes.lead_statuses, ["GET", "POST"]),
        ("/status/lead/{status_id}/", org_routes.lead_status, ["PUT", "DELETE"]),
        ("/status/opportunity/", org_routes.opportunity_statuses, ["GET", "POST"]),
        ("/status/opportunity/{status_id}/", org_routes.opportunity_status, ["PUT", "DELETE"]),
        ("/pipeline/", org_routes.pipelines, ["GET", "POST"]),
        ("/pipeline/{pipeline_id}/", org_routes.pipeline, ["GET", "PUT", "DELETE"]),
        ("/custom_field/shared/{field_id}/association/", cf.shared_field_association, ["POST"]),
        (
            "/custom_field/shared/{field_id}/association/{target}/",
            cf.shared_field_association,
            ["GET", "PUT", "DELETE"],
        ),
        ("/custom_field/{object_type}/", cf.custom_fields, ["GET", "POST"]),
        ("/custom_field/{object_type}/{field_id}/", cf.custom_field, ["GET", "PUT", "DELETE"]),
        ("/custom_field_schema/{object_type}/", cf.custom_field_schema, ["GET", "PUT"]),
        ("/lead/", leads.list_leads, ["GET"]),
        ("/lead/", leads.create_lead_handler, ["POST"]),
        ("/lead/{lead_id}/", leads.get_lead, ["GET"]),
        ("/lead/{lead_id}/", leads.update_lead_handler, ["PUT"]),
        ("/lead/{lead_id}/", leads.delete_lead_handler, ["DELETE"]),
        ("/contact/", leads.list_contacts, ["GET"]),
        ("/contact/", leads.create_contact_handler, ["POST"]),
        ("/contact/{contact_id}/", leads.get_contact, ["GET"]),
        ("/contact/{contact_id}/", leads.update_contact_handler, ["PUT"]),
        ("/contact/{contact_id}/", leads.delete_contact_handler, ["DELETE"]),
        ("/opportunity/", opportunities.list_opportunities, ["GET"]),
        ("/opportunity/", opportunities.create_opportunity_handler, ["POST"]),
        ("/opportunity/{opportunity_id}/", opportunities.opportunity, ["GET", "PUT", "DELETE"]),
        ("/task/", tasks.tasks, ["GET", "POST", "PUT"]),
        ("/task/{task_id}/", tasks.task, ["GET", "PUT", "DELETE"]),
        ("/event/", events.list_events_handler, ["GET"]),
        ("/event/{event_id}/", events.get_event, ["GET"]),
        ("/data/search/", data_search, ["POST"]),
    ]
    routes: list[BaseRoute] = [
        Route(base + path, endpoint, methods=methods) for path, endpoint, methods in table
    ]
    return routes + activity_routes(base)


def build_app(emulator: Emulator) -> ASGIApp:
    # The org is built before the app; the event log takes its consolidation window from config here.
    emulator.org.event_log.consolidation_window = emulator.config.event_consolidation_window
    routes = api_routes(emulator.config.base_path) + list(emulator.oauth.routes())
    router = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            SearchError: _search_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    router.state.emulator = emulator
    app: ASGIApp = RateLimiting(router, emulator)
    app = Authentication(app, emulator)
    app = FaultMiddleware(app, emulator.faults, emulator.clock)
    app = RequestLog(app, emulator)
    return PathNormalisation(app, emulator.config.base_path)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body, status_code=exc.status)


async def _search_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SearchError)
    return JSONResponse(exc.to_json(), status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # An emulator bug still answers in Close's 5xx shape (§12.6: `error` is an object), so clients
    # on a port see JSON; Starlette re-raises afterwards, so in-process tests see the bug itself.
    return JSONResponse({"error": {"message": "Internal server error"}}, status_code=500)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Every error body is JSON (§12.6), including the router's own 404/405.
    assert isinstance(exc, HTTPException)
    message = "Not found" if exc.status_code == 404 else exc.detail
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class PathNormalisation:
    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.plural = base_path + "/custom_fields/"
        self.singular = base_path + "/custom_field/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _SLASHES.sub("/", scope["path"])
        if not path.endswith("/"):
            path += "/"
        if path.startswith(self.plural):
            path = self.singular + path[len(self.plural) :]
        scope = {**scope, "path": path, "raw_path": path.encode()}
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "POST" and headers.get(b"x-http-method-override", b"").upper() == b"GET":
            raw = await _read_body(receive)
            try:
                params = (json.loads(raw) if raw.strip() else {}).get("_params", {})
                query = urlencode({k: _param(v) for k, v in params.items()})
            except (ValueError, AttributeError):
                await _send_json(send, 400, {"error": INVALID_JSON})
                return
            existing = scope.get("query_string", b"").decode()
            combined = "&".join(part for part in (existing, query) if part)
            scope = {**scope, "method": "GET", "query_string": combined.encode()}
            receive = _empty_receive
        await self.app(scope, receive, send)


def _param(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class RequestLog:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        logged = False

        async def observe(message: Message) -> None:
            nonlocal logged
            # Log before the answer leaves: a client on a real port may read the log as soon as
            # it has its response.
            if message["type"] == "http.response.start" and not logged:
                logged = True
                self.emulator.log_request(scope["method"], scope["path"], message["status"], query)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            if not logged:  # dropped before any answer
                self.emulator.log_request(scope["method"], scope["path"], 0, query)


class Authentication:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OAUTH_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        found = self._authenticate(headers.get(b"authorization", b"").decode("latin-1"))
        if found is None:
            await _send_json(send, 401, UNAUTHORIZED, {"WWW-Authenticate": 'Basic realm="api"'})
            return
        identity, context = found
        context = WriteContext(
            user_id=context.user_id,
            request_id=self.emulator.request_ids.new("req_"),
            method=scope["method"],
            path=scope["path"],
            api_key_id=context.api_key_id,
            oauth_client_id=context.oauth_client_id,
            oauth_scope=context.oauth_scope,
        )
        await self.app({**scope, IDENTITY_KEY: identity, CONTEXT_KEY: context}, receive, send)

    def _authenticate(self, header: str) -> tuple[str, WriteContext] | None:
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            api_key = decoded.partition(":")[0]
            if api_key in self.emulator.config.api_keys:
                return api_key, WriteContext(user_id=self.emulator.org.owner_id, api_key_id=key_id(api_key))
            return None
        if scheme.lower() == "bearer" and credentials:
            owner = self.emulator.oauth.authenticate_bearer(credentials)
            if owner is None:
                return None
            clients = self.emulator.config.oauth_clients
            # The bearer check names no client; with one configured client it can only be that one.
            client_id = clients[0].client_id if len(clients) == 1 else None
            return credentials, WriteContext(
                user_id=owner[0], oauth_client_id=client_id, oauth_scope="all.full_access"
            )
        return None


class RateLimiting:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator
        self.base = emulator.config.base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = scope.get(IDENTITY_KEY) if scope["type"] == "http" else None
        if not isinstance(identity, str):
            await self.app(scope, receive, send)
            return
        scope = {k: v for k, v in scope.items() if k != IDENTITY_KEY}
        path = scope["path"]
        relative = path[len(self.base) :] if path.startswith(self.base) else path
        verdict = self.emulator.rate_limiter.admit(identity, self.emulator.org.id, scope["method"], relative)
        if not verdict.allowed:
            await _send_json(send, 429, verdict.body or {}, verdict.headers)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in verdict.headers.items()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, with_headers)
