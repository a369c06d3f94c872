"""Id-set reconciliation: what the event log no longer tells (it keeps 30 days, §7.1).

Lists every id Close still has for a model (ids only: keyset with ``id`` for leads and contacts,
``_fields=id`` list walks for the rest), then

- fetches the ids Close lists that the store lacks (an activity created with a backdated
  ``date_created`` sorts behind every position a list walk resumes from), and
- removes the store's live ids that Close no longer lists.

Runs after extraction, so every id in the store was listed by Close before the id walk began; a
record the walk misses is gone, with two exceptions it must not tombstone: records written within
the lookback (lists lag behind writes, §2.4), and every record when a keyset walk could not list
them all (``KeysetIncomplete``: then nothing is removed and the model stays unreconciled).
"""

from __future__ import annotations

from datetime import UTC, datetime

from closeflow.sync._refetch import refetch
from closeflow.sync._run import StreamRun
from closeflow.sync._streams import Stream
from closeflow.sync._walk import Position, walk_list

COMMIT_SIZE = 200


async def remote_ids(run: StreamRun, stream: Stream) -> set[str]:
    ids: set[str] = set()
    if stream.strategy == "keyset":
        # complete=True: an id this walk had to skip must not read as a deletion.
        async for record in run.requester.keyset(
            stream.object_type, fields=["id"], since=None, page_size=200, complete=True
        ):
            ids.add(str(record["id"]))
    else:
        # date_created never changes, so this order is stable while records are edited.
        params = {**dict(stream.params), "_fields": "id,date_created"}
        pages = walk_list(
            run.requester,
            stream.path,
            order_by="date_created",
            position=Position(),
            params=params,
            page_size=stream.page_size,
        )
        async for page in pages:
            ids.update(str(record["id"]) for record in page)
    run.progress.records += len(ids)
    run.requester.report()
    return ids


async def reconcile_model(run: StreamRun, streams: list[Stream]) -> int:
    """Fetch what Close lists and the store lacks, tombstone what Close no longer lists; returns
    how many were tombstoned. Raises (and changes nothing) when an id walk was incomplete."""
    listed: dict[Stream, set[str]] = {}
    for stream in streams:
        listed[stream] = await remote_ids(run, stream)
    every = set().union(*listed.values())
    # Collected before committing: the store's id cursor must not be open across writes.
    live = list(run.store.live_ids(run.model))
    stored = set(live)
    fetched = 0
    for stream, ids in listed.items():
        # Search rows (leads, contacts) have no id filter to fetch by; their walks start over
        # from the beginning when the keyset stream is read with --full.
        missing = sorted(ids - stored) if stream.strategy != "keyset" else []
        if missing:
            await refetch(run, stream, missing)
            fetched += len(missing)
    recent = run.store.recent_ids(run.model, _moment(run.clock.now() - run.lookback))
    gone = [record_id for record_id in live if record_id not in every and record_id not in recent]
    for start in range(0, len(gone), COMMIT_SIZE):
        run.commit(removals=gone[start : start + COMMIT_SIZE])
    run.commit(state={"removed": len(gone), "fetched": fetched, "listed": len(every)})
    return len(gone)


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
