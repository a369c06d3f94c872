"""What every handler needs from a request: its JSON body, its query, who is calling."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from closeflow.emulator._errors import INVALID_JSON, bad_request, not_found
from closeflow.emulator._events import WriteContext
from closeflow.emulator._listing import project, requested_fields
from closeflow.emulator._org import Organization

# Scope keys set by the app's middleware (see _app.py).
CONTEXT_KEY = "closeflow.write_context"


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``. Anything unparsable is Close's invalid-JSON 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(INVALID_JSON) from None
    if not isinstance(body, dict):
        raise bad_request(INVALID_JSON)
    return body


def org_of(request: Request) -> Organization:
    org: Organization = request.app.state.emulator.org
    return org


def context_of(request: Request) -> WriteContext:
    context = request.scope.get(CONTEXT_KEY)
    if isinstance(context, WriteContext):
        return context
    return WriteContext(user_id=None, method=request.method, path=request.url.path)


async def item_response(
    request: Request,
    found: Callable[[], dict[str, Any] | None],
    update: Callable[[dict[str, Any], WriteContext], dict[str, Any]],
    delete: Callable[[WriteContext], None],
) -> JSONResponse:
    """GET, PUT or DELETE of one record a route names: ``found`` reads it (None → 404), ``update``
    applies a PUT body, ``delete`` removes it; the answer honours ``_fields`` as Close's does."""
    if request.method == "DELETE":
        delete(context_of(request))
        return JSONResponse({})
    if request.method == "PUT":
        record = update(await json_body(request), context_of(request))
    else:
        current = found()
        if current is None:
            raise not_found()
        record = current
    return JSONResponse(project(record, requested_fields(request.query_params)))
