"""Id-set reconciliation: the deletions the event log no longer holds (it keeps 30 days, §7.1).

Lists every id Close still has for a model (ids only: keyset with ``id`` for leads and contacts,
``_fields=id`` list walks for the rest), then removes the store's live ids that are not among
them. Runs after extraction, so every id in the store was listed by Close before the id walk
began; a record the walk misses is gone.
"""

from __future__ import annotations

from closeflow.sync._run import StreamRun
from closeflow.sync._streams import Stream
from closeflow.sync._walk import Position, walk_list

COMMIT_SIZE = 200


async def remote_ids(run: StreamRun, stream: Stream) -> set[str]:
    ids: set[str] = set()
    if stream.strategy == "keyset":
        async for record in run.requester.keyset(
            stream.object_type, fields=["id"], since=None, page_size=200
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
    """Tombstone the live records of ``run.model`` that Close no longer lists; returns how many."""
    listed: set[str] = set()
    for stream in streams:
        listed |= await remote_ids(run, stream)
    # Collected before committing: the store's id cursor must not be open across writes.
    gone = [record_id for record_id in run.store.live_ids(run.model) if record_id not in listed]
    for start in range(0, len(gone), COMMIT_SIZE):
        run.commit(removals=gone[start : start + COMMIT_SIZE])
    run.commit(state={"removed": len(gone), "listed": len(listed)})
    return len(gone)
