"""``GET /event/`` and ``GET /event/{id}/`` (§7.1, §3.2).

Cursor paging only: ``_cursor`` / ``cursor_next`` (older) / ``cursor_previous`` (newer), newest
first, ``_limit`` capped at (and defaulting to) 50 — a larger ``_limit`` is quietly capped, as
Close documents ("capped at"); ``_skip`` other than 0 is refused. A cursor carries its position
and the first request's ``date_updated`` bounds, because Close tells clients to repeat every
other filter but not ``date_updated``. Filter combinations outside Close's list are a 400 naming
the allowed ones (Close's answer there is unconfirmed; refusing keeps clients honest).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from closeflow.emulator._errors import field_error, not_found
from closeflow.emulator._event_log import Event, EventLog, Key
from closeflow.emulator._list_filters import Range, date_range, within
from closeflow.emulator._listing import requested_fields
from closeflow.emulator._requests import org_of

FILTERS = ("object_type", "object_id", "action", "lead_id", "user_id", "request_id")
ALLOWED_COMBINATIONS = frozenset(
    frozenset(combo)
    for combo in (
        (),
        ("object_type", "object_id"),
        ("object_type", "action"),
        ("object_id", "action"),
        ("lead_id", "object_type"),
        ("lead_id", "object_type", "action"),
        ("lead_id", "user_id", "object_type"),
        ("lead_id", "user_id", "object_type", "action"),
        ("lead_id", "user_id"),
        ("user_id", "object_id"),
        ("user_id", "object_id", "action"),
        ("user_id", "object_type"),
        ("user_id", "object_type", "action"),
        ("lead_id",),
        ("user_id",),
        ("request_id",),
    )
)


def _encode(direction: str, key: Key, bounds: Range) -> str:
    raw = json.dumps(
        [direction, list(key), [bounds.lower, bounds.lower_inclusive, bounds.upper, bounds.upper_inclusive]]
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str) -> tuple[str, Key, Range]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        direction, key, bounds = json.loads(raw)
        at, position, event_id = key
        if direction not in ("next", "prev"):
            raise ValueError(direction)
        return direction, (str(at), int(position), str(event_id)), Range(*bounds)
    except (ValueError, TypeError, binascii.Error):
        raise field_error(
            "_cursor", "Invalid cursor: pass cursor_next or cursor_previous unchanged."
        ) from None


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    chosen = {name: params[name] for name in FILTERS if params.get(name)}
    if frozenset(chosen) not in ALLOWED_COMBINATIONS:
        allowed = "; ".join(
            " + ".join(sorted(combo)) for combo in sorted(ALLOWED_COMBINATIONS, key=sorted) if combo
        )
        raise field_error(
            "__all__",
            f"Unsupported filter combination {' + '.join(sorted(chosen))}. Supported: {allowed}"
            " (date_updated may be added to any).",
        )
    return chosen


def _matcher(chosen: dict[str, str], bounds: Range, oldest: str) -> Callable[[Event], bool]:
    items = list(chosen.items())

    def matches(entry: Event) -> bool:
        at = entry["date_updated"]
        return at >= oldest and within(at, bounds) and all(entry.get(name) == value for name, value in items)

    return matches


def _walk(log: EventLog, start: int, step: int) -> Iterator[tuple[Key, Event]]:
    index = start
    while 0 <= index < len(log.order):
        key = log.order[index]
        yield key, log.by_id[key[2]]
        index += step


def list_events(
    log: EventLog, params: Mapping[str, str], *, limit_cap: int, retention: float
) -> dict[str, Any]:
    skip = params.get("_skip")
    if skip not in (None, "", "0"):
        raise field_error("_skip", "The event log does not support _skip: page with _cursor (cursor_next).")
    limit = _limit(params, limit_cap)
    chosen = _filters(params)
    token = params.get("_cursor")
    if token:
        direction, anchor, bounds = _decode(token)
    else:
        direction, anchor, bounds = "next", None, date_range(params, "date_updated", form="naive")
    matches = _matcher(chosen, bounds, log.oldest_visible(retention))
    if direction == "next":
        start = len(log.order) - 1 if anchor is None else bisect.bisect_left(log.order, anchor) - 1
        found = _take(_walk(log, start, -1), matches, limit)
        page = [entry for _, entry in found[:limit]]
        older = len(found) > limit
        newer = anchor is not None and page != []
        keys = [key for key, _ in found[:limit]]
        next_key = keys[-1] if older else None
        prev_key = keys[0] if newer else None
    else:
        assert anchor is not None
        start = bisect.bisect_right(log.order, anchor)
        found = _take(_walk(log, start, 1), matches, limit)
        keys = [key for key, _ in found[:limit]][::-1]
        page = [entry for _, entry in found[:limit]][::-1]
        prev_key = keys[0] if len(found) > limit else None
        next_key = keys[-1] if page else None
    fields = requested_fields(params)
    data = [_project(entry, fields) for entry in page]
    return {
        "data": data,
        "cursor_next": _encode("next", next_key, bounds) if next_key else None,
        "cursor_previous": _encode("prev", prev_key, bounds) if prev_key else None,
    }


def _take(
    walk: Iterator[tuple[Key, Event]], matches: Callable[[Event], bool], limit: int
) -> list[tuple[Key, Event]]:
    # One more than a page: whether it exists decides if the cursor is null.
    found: list[tuple[Key, Event]] = []
    for key, entry in walk:
        if matches(entry):
            found.append((key, entry))
            if len(found) > limit:
                break
    return found


def _limit(params: Mapping[str, str], cap: int) -> int:
    raw = params.get("_limit")
    if raw in (None, ""):
        return cap
    try:
        value = int(raw)
    except ValueError:
        raise field_error(
            "_limit", "Input should be a valid integer, unable to parse string as an integer"
        ) from None
    if value < 1:
        raise field_error("_limit", "Input should be greater than or equal to 1")
    return min(value, cap)


def _project(entry: Event, fields: list[str] | None) -> Event:
    if fields is None:
        return entry
    return {key: entry[key] for key in fields if key in entry}


async def list_events_handler(request: Request) -> JSONResponse:
    emulator = request.app.state.emulator
    body = list_events(
        org_of(request).event_log,
        request.query_params,
        limit_cap=emulator.config.max_limit("event"),
        retention=emulator.config.event_retention,
    )
    return JSONResponse(body)


async def get_event(request: Request) -> JSONResponse:
    emulator = request.app.state.emulator
    log: EventLog = org_of(request).event_log
    entry = log.by_id.get(request.path_params["event_id"])
    if entry is None or entry["date_updated"] < log.oldest_visible(emulator.config.event_retention):
        raise not_found()
    return JSONResponse(_project(entry, requested_fields(request.query_params)))
