"""The four extraction strategies (see ``_streams.py`` for why each exists).

Each commits page by page: a page's records and the stream's new position go into the store in
one transaction, so a sync killed at any point resumes from its last page with nothing lost and
no change row doubled (a re-read record has the same content hash and makes no change row).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from closeflow.sync._run import StreamRun, moved_back, utc_text
from closeflow.sync._streams import Stream
from closeflow.sync._walk import Position, get_page, walk_list


def _clean(record: dict[str, Any], stream: Stream) -> dict[str, Any]:
    # Search rows carry "__object_type", a property of the response, not of the record.
    record.pop("__object_type", None)
    if stream.extra:
        record.update(dict(stream.extra))
    return record


def _text(state: dict[str, Any] | None, key: str) -> str | None:
    value = (state or {}).get(key)
    return value if isinstance(value, str) else None


async def keyset_stream(run: StreamRun, stream: Stream) -> None:
    """Leads and contacts: Advanced Filtering sorted by ``date_updated`` from the last position."""
    position = _text(run.state(), "position")
    since = moved_back(position, run.lookback) if position else None
    page: list[dict[str, Any]] = []
    records = run.requester.keyset(
        stream.object_type, fields=list(stream.fields), since=since, page_size=stream.page_size
    )
    async for record in records:
        page.append(_clean(record, stream))
        run.progress.records += 1
        if len(page) >= stream.page_size:
            run.commit(page, state={"position": page[-1]["date_updated"]})
            position, page = page[-1]["date_updated"], []
    run.commit(page, state={"position": page[-1]["date_updated"] if page else position})


async def updated_filter_stream(run: StreamRun, stream: Stream) -> None:
    """Opportunities and tasks: every record with ``date_updated`` in the window since the last run.

    A window ends where the previous run *started* (not at the newest ``date_updated`` seen): a
    record edited behind the walk's position during the run has a later ``date_updated`` than that
    start, so the next window contains it. Tasks walk the window in ``date_created`` order
    (``_order_by`` refuses ``date_updated`` there); opportunities in ``date_updated`` order.
    """
    state = run.state() or {}
    walk = state.get("walk") if isinstance(state.get("walk"), dict) else None
    since = _text(state, "since")
    if walk is None:
        window = moved_back(since, run.lookback) if since else None
        started = utc_text(run.clock.now())
        position = Position(window if stream.order_by == "date_updated" else None)
    else:  # resume the walk a killed run left half done
        window, started = _text(walk, "window"), str(walk.get("started"))
        position = Position.from_state(walk.get("position"))
    params = dict(stream.params)
    if window is not None and stream.order_by != "date_updated":
        params["date_updated__gte"] = window
    pages = walk_list(
        run.requester,
        stream.path,
        order_by=stream.order_by,
        position=position,
        params=params,
        page_size=stream.page_size,
    )
    async for page in pages:
        run.progress.records += len(page)
        walk_state = {"window": window, "started": started, "position": position.as_state()}
        run.commit([_clean(r, stream) for r in page], state={"since": since, "walk": walk_state})
    run.commit(state={"since": started, "walk": None})


async def created_paging_stream(run: StreamRun, stream: Stream) -> None:
    """One activity type: new records by ``date_created``; edits and deletions come from the
    event log (``_events.py``), since activities have no ``date_updated`` filter."""
    saved = Position.from_state((run.state() or {}).get("position"))
    # Re-read the lookback: a record created just before the last position may have become
    # visible in the list only after the last run passed it.
    position = Position(moved_back(saved.value, run.lookback)) if saved.value else Position()
    pages = walk_list(
        run.requester,
        stream.path,
        order_by=stream.order_by,
        position=position,
        params=dict(stream.params),
        page_size=stream.page_size,
    )
    committed = False
    async for page in pages:
        run.progress.records += len(page)
        run.commit([_clean(r, stream) for r in page], state={"position": position.as_state()})
        committed = True
    if not committed and run.store.state(run.stream_name) is None:
        run.commit(state={"position": saved.as_state()})  # synced once, nothing listed yet


async def reference_stream(run: StreamRun, stream: Stream) -> None:
    """Small lists re-read whole; whatever is no longer listed is removed."""
    records: list[dict[str, Any]] = []
    page_size = stream.page_size
    while True:
        query = {**dict(stream.params), "_skip": len(records), "_limit": page_size}
        body, page_size = await get_page(run.requester, stream.path, query)
        data = body.get("data")
        page = [_clean(r, stream) for r in data if isinstance(r, dict)] if isinstance(data, list) else []
        records.extend(page)
        # Status lists answer without has_more: one page is all there is.
        if not body.get("has_more") or not page:
            break
    run.progress.records += len(records)
    listed = {record["id"] for record in records}
    removals = [
        record_id
        for record_id in list(run.store.live_ids(stream.model))
        if record_id not in listed and _belongs(run, stream, record_id)
    ]
    run.commit(records, removals, state={"records": len(records)})


def _belongs(run: StreamRun, stream: Stream, record_id: str) -> bool:
    """Several streams share the custom_fields model: each removes only its own kind."""
    if not stream.extra:
        return True
    stored = run.store.get(stream.model, record_id) or {}
    return all(stored.get(key) == value for key, value in stream.extra)


STRATEGIES: dict[str, Callable[[StreamRun, Stream], Awaitable[None]]] = {
    "keyset": keyset_stream,
    "updated_filter": updated_filter_stream,
    "created_paging": created_paging_stream,
    "reference": reference_stream,
}
