"""The library's entry points: run a spec over records, over one record, or search."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from closeflow.actions._inputs import Records, chunks
from closeflow.actions._ledger import Ledger, SqliteLedger
from closeflow.actions._mapping import Mapper
from closeflow.actions._notes import insert_note
from closeflow.actions._outcome import Outcome
from closeflow.actions._run import DEFAULT_CHUNK, BatchRun, Progress
from closeflow.actions._specs import InsertNote, SearchContacts, SearchLeads
from closeflow.close import CloseClient, ConfigError, CustomFieldRegistry, find


def run_action(
    client: CloseClient,
    spec: Any,
    records: Records | None = None,
    *,
    batch_id: str | None = None,
    ledger: Ledger | None = None,
    registry: CustomFieldRegistry | None = None,
    progress: Progress | None = None,
    concurrency: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    search_lag: float | None = None,
) -> BatchRun:
    """Run a write or delete spec over ``records`` (dicts; any iterable or async iterable).

    Iterate the returned ``BatchRun`` for one ``Outcome`` per record, in input order; its
    ``summary`` holds the totals. Without a ``ledger`` the run keeps one in memory (creates are
    still never sent twice within the run); pass ``SqliteLedger(path)`` and a ``batch_id`` to make a
    batch resumable across processes. A delete with ``where`` takes no records.

    ``search_lag`` (seconds; default the client's ``search_lag``) is how old a create whose answer
    was lost must be before a miss in Close's search counts as "never applied" and the create is
    sent again (on a later run; never in the run that lost the answer). Close's search lags
    30-60 s; only a Close without that lag (the emulator) makes a smaller value safe.
    """
    return BatchRun(
        client,
        spec,
        records,
        batch_id=batch_id,
        ledger=ledger,
        registry=registry,
        progress=progress,
        concurrency=concurrency,
        chunk_size=chunk_size,
        search_lag=search_lag,
    )


async def execute(
    client: CloseClient,
    spec: Any,
    record: dict[str, Any],
    *,
    registry: CustomFieldRegistry | None = None,
    ledger: Ledger | None = None,
    batch_id: str | None = None,
) -> Outcome:
    """Run a write spec on one record (a play node, an agent's tool call) and return its outcome."""
    if isinstance(spec, InsertNote):
        own = SqliteLedger(":memory:") if ledger is None else None
        try:
            return await insert_note(
                client,
                spec,
                record,
                ledger=ledger or own,  # type: ignore[arg-type]
                batch_id=batch_id or f"batch_{uuid.uuid4().hex[:16]}",
                run_id=uuid.uuid4().hex,
            )
        finally:
            if own is not None:
                own.close()
    if spec.action.startswith("delete") and getattr(spec, "where", None) is not None:
        raise ConfigError("execute() runs a spec on one record; a delete by where runs with run_action()")
    run = run_action(
        client, spec, [record], registry=registry, ledger=ledger, batch_id=batch_id, chunk_size=1
    )
    outcomes = await run.collect()
    return outcomes[0]


async def search(
    client: CloseClient, spec: SearchLeads | SearchContacts, *, registry: CustomFieldRegistry | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The records a search spec selects, with the requested fields (custom ones under
    ``custom.<Field Name>``), sorted and limited; streams beyond Close's 10k cap when sorted by
    ``date_updated``."""
    async for record in find(
        client,
        spec.object_type,
        where=spec.where,
        fields=spec.fields,
        sort=spec.sort,
        limit=spec.limit,
        registry=registry,
    ):
        yield record


async def validate(
    client: CloseClient, spec: Any, records: Records, *, registry: CustomFieldRegistry | None = None
) -> AsyncIterator[Outcome]:
    """The records that would fail mapping (bad values, unknown status labels, malformed emails),
    without any lookup or write; run it first for an all-or-nothing batch from a file."""
    mapper = await Mapper.create(client, spec, registry or CustomFieldRegistry(client))
    async for chunk in chunks(records, DEFAULT_CHUNK):
        for row, record in chunk:
            prepared = await mapper.prepare(record, row)
            if prepared.error is not None:
                yield Outcome(prepared.key, row, "failed", "fail", error=prepared.error)
