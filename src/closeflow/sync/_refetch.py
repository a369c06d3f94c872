"""Fetching known records by id from a list endpoint: activities the event log says changed, and
records reconciliation finds listed by Close but missing from the store."""

from __future__ import annotations

from typing import Any

from closeflow.close import NotFound
from closeflow.sync._run import StreamRun
from closeflow.sync._streams import Stream
from closeflow.sync._walk import get_page

REFETCH_BATCH = 100


async def refetch(run: StreamRun, stream: Stream, ids: list[str]) -> None:
    """Current versions of ``ids``: ``id__in`` batches, one GET each if that filter is ignored.

    Batches go through ``get_page``, so a ``_limit`` above the list's (unpublished) maximum is
    learnt from Close's refusal and the rest of the ids are asked for in batches that fit."""
    start, batch_size = 0, REFETCH_BATCH
    while start < len(ids):
        batch = ids[start : start + batch_size]
        query: dict[str, Any] = {**dict(stream.params), "id__in": ",".join(batch), "_limit": len(batch)}
        body, limit = await get_page(run.requester, stream.path, query)
        if limit < len(batch):  # Close named a smaller maximum: the page holds only that many
            batch_size = limit
            continue
        data = body.get("data")
        records = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
        if any(record.get("id") not in batch for record in records):
            records = [r for r in [await _get_one(run, stream, i) for i in batch] if r is not None]
        run.progress.records += len(records)
        run.commit(records, model=stream.model)
        start += len(batch)


async def _get_one(run: StreamRun, stream: Stream, record_id: str) -> dict[str, Any] | None:
    try:
        return await run.requester.get(f"{stream.path}{record_id}/")
    except NotFound:
        return None  # deleted since: its deletion event is in the log, or reconciliation sees it
