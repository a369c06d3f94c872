"""What every handler needs from a request: its JSON body, its query, who is calling."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from closeflow.emulator._errors import INVALID_JSON, bad_request
from closeflow.emulator._events import WriteContext
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
