"""The four ways Close pages a list: offset, search cursor, event cursor, and keyset (ours).

Offset pages stop at a per-resource ``_skip`` cap (leads: ~35k); a search cursor expires after 30 s
and a walk stops at 10k objects. Keyset paging on ``date_updated`` (ascending, ties by id) is the
only way to read a large org whole: when a walk ends early, start a new one ``on_or_after`` the
last ``date_updated`` seen and drop the ids already yielded at exactly that moment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from closeflow.close._errors import CloseError, ConfigError, ValidationError
from closeflow.close._values import utc_text

logger = logging.getLogger("closeflow.close")

SEARCH_PATH = "/data/search/"
DEFAULT_SEARCH_LIMIT = 200
# What Advanced Filtering returns (§3.5): the only object types search and keyset walks cover.
SEARCHABLE = ("lead", "contact")
# Re-queries in a row that yield nothing new before a keyset walk gives up (an expired cursor
# that keeps expiring before the walk gets past the records it has already seen).
MAX_STALLED_WALKS = 3

Params = Mapping[str, str | int | float | bool | None]


class _Requester(Protocol):
    async def get(self, path: str, *, params: Params | None = None) -> dict[str, Any]: ...

    async def post(self, path: str, *, params: Params | None = None, json: Any = None) -> dict[str, Any]: ...


def _records(page: dict[str, Any]) -> list[dict[str, Any]]:
    data = page.get("data")
    return [record for record in data if isinstance(record, dict)] if isinstance(data, list) else []


async def offset_pages(
    client: _Requester, path: str, params: Params | None = None, *, page_size: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    query: dict[str, Any] = dict(params or {})
    if page_size is not None:
        query["_limit"] = page_size
    skip = int(query.get("_skip") or 0)
    while True:
        query["_skip"] = skip
        page = await client.get(path, params=query)
        records = _records(page)
        for record in records:
            yield record
        # Some lists (custom object types) answer without has_more: one page is all there is.
        if not page.get("has_more") or not records:
            return
        # Advance by what came back, not by what was asked: a short page must not skip records.
        skip += len(records)


async def search_cursor(client: _Requester, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    request: dict[str, Any] = dict(body)
    request.setdefault("_limit", DEFAULT_SEARCH_LIMIT)
    request.pop("cursor", None)
    while True:
        page = await client.post(SEARCH_PATH, json=request)
        for record in _records(page):
            yield record
        cursor = page.get("cursor")
        if not cursor:
            return
        request["cursor"] = cursor


async def event_cursor(client: _Requester, params: Params | None = None) -> AsyncIterator[dict[str, Any]]:
    first: dict[str, Any] = dict(params or {})
    # Close wants the other filters repeated with the cursor, but not date_updated (the cursor
    # already encodes the position).
    following = {key: value for key, value in first.items() if not key.startswith("date_updated")}
    query = first
    while True:
        page = await client.get("/event/", params=query)
        records = _records(page)
        for record in records:
            yield record
        cursor = page.get("cursor_next")
        if not cursor or not records:
            return
        query = {**following, "_cursor": cursor}


def _date_updated(object_type: str) -> dict[str, str]:
    return {"type": "regular_field", "object_type": object_type, "field_name": "date_updated"}


def _utc_text(moment: str | datetime) -> str:
    return moment if isinstance(moment, str) else utc_text(moment)


def _just_after(moment: str) -> str:
    return _utc_text(datetime.fromisoformat(moment) + timedelta(microseconds=1))


def keyset_body(
    object_type: str,
    *,
    query: Mapping[str, Any] | None,
    fields: list[str] | None,
    on_or_after: str | None,
    page_size: int,
) -> dict[str, Any]:
    """The ``/data/search/`` body of one keyset walk starting at ``on_or_after``."""
    nodes: list[Any] = [{"type": "object_type", "object_type": object_type}]
    if query is not None:
        nodes.append(dict(query))
    if on_or_after is not None:
        nodes.append(
            {
                "type": "field_condition",
                "field": _date_updated(object_type),
                "condition": {
                    "type": "moment_range",
                    "on_or_after": {"type": "fixed_utc", "value": on_or_after},
                },
            }
        )
    wanted = ["id", "date_updated", *(name for name in fields or [] if name not in ("id", "date_updated"))]
    return {
        "query": {"type": "and", "queries": nodes},
        "_fields": {object_type: wanted},
        "_limit": page_size,
        "sort": [{"direction": "asc", "field": _date_updated(object_type)}],
    }


def _walk_cut_short(error: CloseError) -> bool:
    """A continuation page failed in a way a fresh walk from the last position fixes."""
    if not isinstance(error, ValidationError):
        return False
    return "cursor" in error.field_errors or "max_skip" in error.message


class KeysetIncomplete(CloseError):
    """A keyset walk could not return every record: more share one ``date_updated`` than one search
    walk returns. Raised only by ``keyset(..., complete=True)``; callers that decide absence from a
    walk (id reconciliation) must not conclude anything from an incomplete one."""

    def __init__(self, object_type: str, moment: str) -> None:
        super().__init__(
            f"keyset walk over {object_type} is incomplete: more {object_type}s share date_updated "
            f"{moment} than one search walk returns, and Close offers no way to page past them"
        )
        self.object_type, self.moment = object_type, moment


async def keyset(
    client: _Requester,
    object_type: str,
    *,
    query: Mapping[str, Any] | None = None,
    fields: list[str] | None = None,
    since: str | datetime | None = None,
    page_size: int = DEFAULT_SEARCH_LIMIT,
    complete: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    """Every ``object_type`` record updated ``since`` (all when None), oldest ``date_updated`` first.

    With ``complete=True`` a walk that would have to skip records (see below) raises
    ``KeysetIncomplete`` instead of logging a warning and going on."""
    if object_type not in SEARCHABLE:
        raise ConfigError(f"keyset paging works on {', '.join(SEARCHABLE)}, not {object_type!r}")
    position = _utc_text(since) if since is not None else None
    # Only the ids at exactly `position` can come back on the next walk; older ones are excluded
    # by on_or_after, so the memory stays small however large the org.
    seen_at_position: set[str] = set()
    stalled = 0
    while True:
        body = keyset_body(object_type, query=query, fields=fields, on_or_after=position, page_size=page_size)
        new_records = returned = 0
        finished_naturally = False
        try:
            while True:
                page = await client.post(SEARCH_PATH, json=body)
                records = _records(page)
                returned += len(records)
                for record in records:
                    record_id, moment = record.get("id"), record.get("date_updated")
                    if not isinstance(record_id, str) or not isinstance(moment, str):
                        raise CloseError(f"search result without id/date_updated: {sorted(record)}")
                    if moment == position and record_id in seen_at_position:
                        continue
                    if moment != position:
                        position, seen_at_position = moment, set()
                    seen_at_position.add(record_id)
                    new_records += 1
                    yield record
                cursor = page.get("cursor")
                if not cursor:
                    finished_naturally = True
                    break
                body["cursor"] = cursor
        except CloseError as error:
            if "cursor" not in body or not _walk_cut_short(error):
                raise
        if new_records:
            stalled = 0
        elif finished_naturally and returned >= page_size and position is not None:
            # A whole capped walk of records sharing one date_updated: the rest of that moment
            # cannot be reached (Close offers no id cursor), but everything after it can.
            if complete:
                raise KeysetIncomplete(object_type, position)
            logger.warning(
                "keyset walk over %s: more %ss share date_updated %s than one search walk returns; "
                "skipping past that moment, some of its records may be missing",
                object_type,
                object_type,
                position,
            )
            position, seen_at_position = _just_after(position), set()
        elif finished_naturally:
            return  # a walk from the last position found nothing new: we have everything
        else:
            stalled += 1
            if stalled > MAX_STALLED_WALKS:
                raise CloseError(
                    f"keyset walk over {object_type} made no progress in {stalled} re-queries "
                    f"from date_updated {position}"
                )
