"""Deletions of every model, and edits of activities, from Close's event log (§7.1).

One walk over ``GET /event/`` since the last run (minus the lookback: events are consolidated and
become visible out of order) finds, per object, its newest event. ``deleted`` becomes a removal
in the object's model; any other action on an activity becomes a re-fetch by id, unless the store
already holds a version as new as the event (activities have no ``date_updated`` filter, so the
event log is the only way to see an edit, or a creation backdated behind the list walk's
position). Other models' edits are found by their own streams.

The walk reads the whole window before committing anything, because events come newest first: a
position committed mid-walk would skip the older events still unread if the run were killed.
Removals are idempotent, so a killed run simply repeats the window.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from closeflow.sync._refetch import refetch
from closeflow.sync._run import StreamRun, moved_back, naive_text, timestamp_of
from closeflow.sync._streams import Stream, model_of_event, stream_of_event

EVENTS_STREAM = "events"
PENDING = "pending_reconcile"  # models a gap in the log left to reconcile (see _engine._note_gap)
COMMIT_SIZE = 200
EVENT_FIELDS = "id,object_type,object_id,action,date_updated"


def anchor_events(run: StreamRun) -> None:
    """Before a first sync extracts anything: deletions from now on will be read from the log."""
    if run.store.state(EVENTS_STREAM) is None:
        run.save_state(EVENTS_STREAM, {"since": naive_text(run.clock.now())})


async def events_stream(run: StreamRun) -> None:
    started = naive_text(run.clock.now())
    state = run.store.state(EVENTS_STREAM) or {}
    since = state.get("since")
    params: dict[str, Any] = {"_fields": EVENT_FIELDS}
    if isinstance(since, str):
        params["date_updated__gte"] = moved_back(since, run.lookback)
    newest: dict[str, tuple[str, str, str]] = {}  # object id -> (type, action, date) of its newest event
    async for event in run.requester.events(params):
        run.progress.records += 1
        object_id, object_type = event.get("object_id"), event.get("object_type")
        if isinstance(object_id, str) and isinstance(object_type, str) and object_id not in newest:
            newest[object_id] = (object_type, str(event.get("action")), str(event.get("date_updated")))
    removals: dict[str, list[str]] = defaultdict(list)
    fetches: dict[Stream, list[str]] = defaultdict(list)
    for object_id, (object_type, action, moment) in newest.items():
        model = model_of_event(object_type)
        stream = stream_of_event(object_type)
        if model is not None and action == "deleted":
            removals[model].append(object_id)
        elif (
            stream is not None and stream.refetch_edits and not _stored_since(run, stream, object_id, moment)
        ):
            # Any other action (created, updated, sent, completed, …) may carry a version the list
            # walk never returned: a backdated date_created sorts behind the walk's position.
            fetches[stream].append(object_id)
    # Removals first and on their own: a re-fetch that fails must not hold deletions back.
    for model, ids in removals.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), COMMIT_SIZE):
            run.commit(removals=ordered[start : start + COMMIT_SIZE], model=model)
    for stream, ids in fetches.items():
        # Only types synced before: a type never extracted will be read whole when it is.
        if run.store.state(stream.name) is not None:
            await refetch(run, stream, sorted(ids))
    # The gap bookkeeping the engine keeps in this state survives the position moving on.
    run.save_state(EVENTS_STREAM, {**(run.store.state(EVENTS_STREAM) or {}), "since": started})


def _stored_since(run: StreamRun, stream: Stream, record_id: str, moment: str) -> bool:
    """The store already holds a version at least as new as the event (no request needed)."""
    record = run.store.get(stream.model, record_id)
    stored = record.get("date_updated") if record else None
    if not isinstance(stored, str):
        return False
    try:
        return timestamp_of(stored) >= timestamp_of(moment)
    except ValueError:
        return False
