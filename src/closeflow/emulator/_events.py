"""The event log entries every mutation leaves behind (§7.1).

Handlers describe who is writing with a ``WriteContext`` (taken from the authenticated request);
``event`` builds the Close-shaped event. Event dates are naive ISO strings, unlike object dates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from closeflow.emulator._ids import iso_naive


@dataclass(frozen=True)
class WriteContext:
    """The caller of one request: never holds the API key or token itself, only their ids."""

    user_id: str | None
    request_id: str | None = None
    method: str = "POST"
    path: str = ""
    api_key_id: str | None = None
    oauth_client_id: str | None = None
    oauth_scope: str | None = None


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = set(before) | set(after)
    return sorted(key for key in keys if before.get(key) != after.get(key))


def event(
    *,
    event_id: str,
    timestamp: float,
    organization_id: str,
    context: WriteContext,
    object_type: str,
    object_id: str,
    lead_id: str | None,
    action: str,
    data: dict[str, Any] | None,
    previous_data: dict[str, Any] | None = None,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    when = iso_naive(timestamp)
    return {
        "id": event_id,
        "date_created": when,
        "date_updated": when,
        "organization_id": organization_id,
        "user_id": context.user_id,
        "request_id": context.request_id,
        "api_key_id": context.api_key_id,
        "oauth_client_id": context.oauth_client_id,
        "oauth_scope": context.oauth_scope,
        "object_type": object_type,
        "object_id": object_id,
        "lead_id": lead_id,
        "action": action,
        "changed_fields": list(fields or []),
        # Deep copies: later writes must not rewrite history through shared lists.
        "data": copy.deepcopy(data) if data is not None else None,
        "previous_data": copy.deepcopy(previous_data) if previous_data is not None else None,
        "meta": {"request_method": context.method, "request_path": context.path},
    }
