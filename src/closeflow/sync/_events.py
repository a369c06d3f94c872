"""Deletions of every model, and edits of activities, from Close's event log (§7.1).

One walk over ``GET /event/`` since the last run (minus the lookback: events are consolidated and
become visible out of order) finds, per object, its newest event. ``deleted`` becomes a removal
in the object's model; ``updated`` of an activity becomes a re-fetch by id (activities have no
``date_updated`` filter, so the event log is the only way to see an edit). Other models' edits
are found by their own streams.

The walk reads the whole window before committing anything, because events come newest first: a
position committed mid-walk would skip the older events still unread if the run were killed.
Removals are idempotent, so a killed run simply repeats the window.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from closeflow.close import NotFound
from closeflow.sync._run import StreamRun, moved_back, naive_text
from closeflow.sync._streams import Stream, model_of_event, stream_of_event

EVENTS_STREAM = "events"
COMMIT_SIZE = 200
REFETCH_BATCH = 100
EVENT_FIELDS = "id,object_type,object_id,action,date_updated"


def anchor_events(run: StreamRun) -> None:
    """Before a first sync extracts anything: deletions from now on will be read from the log."""
    if run.store.state(EVENTS_STREAM) is None:
        run.commit(state={"since": naive_text(run.clock.now())}, model="leads")


async def events_stream(run: StreamRun) -> None:
    started = naive_text(run.clock.now())
    since = (run.store.state(EVENTS_STREAM) or {}).get("since")
    params: dict[str, Any] = {"_fields": EVENT_FIELDS}
    if isinstance(since, str):
        params["date_updated__gte"] = moved_back(since, run.lookback)
    newest: dict[str, tuple[str, str]] = {}  # object id -> (object type, action) of its newest event
    async for event in run.requester.events(params):
        run.progress.records += 1
        object_id, object_type = event.get("object_id"), event.get("object_type")
        if isinstance(object_id, str) and isinstance(object_type, str) and object_id not in newest:
            newest[object_id] = (object_type, str(event.get("action")))
    removals: dict[str, list[str]] = defaultdict(list)
    edits: dict[Stream, list[str]] = defaultdict(list)
    for object_id, (object_type, action) in newest.items():
        model = model_of_event(object_type)
        stream = stream_of_event(object_type)
        if model is not None and action == "deleted":
            removals[model].append(object_id)
        elif stream is not None and stream.refetch_edits and action == "updated":
            edits[stream].append(object_id)
    for stream, ids in edits.items():
        # Only types synced before: a type never extracted will be read whole when it is.
        if run.store.state(stream.name) is not None:
            await _refetch(run, stream, sorted(ids))
    for model, ids in removals.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), COMMIT_SIZE):
            run.commit(removals=ordered[start : start + COMMIT_SIZE], model=model)
    run.commit(state={"since": started}, model="leads")


async def _refetch(run: StreamRun, stream: Stream, ids: list[str]) -> None:
    """Current versions of edited records: ``id__in`` batches, one GET each if that is ignored."""
    for start in range(0, len(ids), REFETCH_BATCH):
        batch = ids[start : start + REFETCH_BATCH]
        params: dict[str, str | int] = {
            **dict(stream.params),
            "id__in": ",".join(batch),
            "_limit": len(batch),
        }
        body = await run.requester.get(stream.path, params=params)
        data = body.get("data")
        records = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
        if any(record.get("id") not in batch for record in records):
            records = [r for r in [await _get_one(run, stream, i) for i in batch] if r is not None]
        run.progress.records += len(records)
        run.commit(records, model=stream.model)


async def _get_one(run: StreamRun, stream: Stream, record_id: str) -> dict[str, Any] | None:
    try:
        return await run.requester.get(f"{stream.path}{record_id}/")
    except NotFound:
        return None  # deleted since: its deletion event is in the log
