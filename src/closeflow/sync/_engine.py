"""The incremental engine: runs the declared streams against Close into a store.

Order of a run, and why:

1. Extraction. Streams are grouped by rate-limit endpoint group; groups run concurrently (each
   has its own budget), the streams of one group one after another (they would only queue on
   the same budget). Store writes happen between awaits, so transactions never interleave.
2. Reconciliation (``--reconcile``, ``--full``, or when the event log's position is older than its
   30-day retention): deletions the log can no longer tell us about.
3. The event log: deletions of every model and edits of activities. It runs after extraction so
   that a re-fetched activity is never overwritten by an older copy from a list page still in
   flight, and a deletion is applied after any stale copy a list returned.
4. Views, when the custom-field definitions changed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime

from closeflow._clock import Clock
from closeflow.close import CloseClient, CloseError
from closeflow.sync._events import EVENTS_STREAM, anchor_events, events_stream
from closeflow.sync._extract import STRATEGIES
from closeflow.sync._progress import Phase, ProgressCallback, StreamProgress, SyncResult
from closeflow.sync._reconcile import reconcile_model
from closeflow.sync._requester import StreamRequester
from closeflow.sync._run import DEFAULT_LOOKBACK, EVENT_RETENTION, StreamRun, timestamp_of
from closeflow.sync._streams import MODELS, REFERENCE_MODELS, STREAMS, Stream, streams_for
from closeflow.sync._views import rebuild_views
from closeflow.sync.store import Store


class _Runner:
    def __init__(
        self,
        client: CloseClient,
        store: Store,
        *,
        clock: Clock,
        lookback: float,
        full: bool,
        progress: ProgressCallback | None,
        result: SyncResult,
    ) -> None:
        self.client, self.store, self.clock = client, store, clock
        self.lookback, self.full, self.callback, self.result = lookback, full, progress, result

    def run_for(self, name: str, model: str, *, full: bool = False, shown: bool = True) -> StreamRun:
        progress = StreamProgress(name, model)
        if shown:
            self.result.streams.append(progress)
        requester = StreamRequester(self.client, progress, self.callback)
        return StreamRun(name, model, self.store, requester, self.clock, self.lookback, full)

    async def guarded(self, run: StreamRun, phase: Phase, work: Awaitable[object]) -> bool:
        """Run one stream's work; a Close failure fails that stream, not the whole sync."""
        run.progress.phase = phase
        run.requester.report()
        try:
            await work
        except CloseError as error:
            run.progress.phase, run.progress.error = "failed", str(error)
            run.requester.report()
            return False
        run.progress.phase = "done"
        run.requester.report()
        return True


async def sync(
    client: CloseClient,
    store: Store,
    *,
    models: Sequence[str] | None = None,
    full: bool = False,
    reconcile: bool = False,
    lookback: float = DEFAULT_LOOKBACK,
    progress: ProgressCallback | None = None,
    clock: Clock | None = None,
) -> SyncResult:
    """Bring ``store`` up to date with Close for ``models`` (all when None; reference models are
    always included). ``full`` re-reads everything and reconciles; ``reconcile`` compares id sets.
    A stream that fails is reported in ``SyncResult.failed``; the others still complete."""
    streams = streams_for(list(models) if models else None)
    clock = clock or client.clock
    result = SyncResult()
    runner = _Runner(
        client, store, clock=clock, lookback=lookback, full=full, progress=progress, result=result
    )
    store.ensure_models(MODELS)
    events_state = store.state(EVENTS_STREAM)
    anchor_events(runner.run_for(EVENTS_STREAM, "leads", shown=False))

    failed_models = await _extract(runner, streams)

    since = (events_state or {}).get("since")
    gap = isinstance(since, str) and timestamp_of(since) < clock.now() - EVENT_RETENTION
    to_reconcile = (
        {s.model for s in streams if s.model not in REFERENCE_MODELS} if (reconcile or full) else set()
    )
    if gap:  # the log lost deletions of every model ever synced, selected or not
        states = store.all_states()
        to_reconcile |= {s.model for s in STREAMS if s.model not in REFERENCE_MODELS and s.name in states}
    for model in sorted(to_reconcile - failed_models):
        model_streams = [s for s in STREAMS if s.model == model]
        run = runner.run_for(f"reconcile.{model}", model)
        if await runner.guarded(run, "reconciling", reconcile_model(run, model_streams)):
            result.reconciled.append(model)

    events_run = runner.run_for(EVENTS_STREAM, "leads")
    await runner.guarded(events_run, "events", events_stream(events_run))

    now = datetime.fromtimestamp(clock.now(), UTC)
    result.views_rebuilt = rebuild_views(store, now=now)
    return result


async def _extract(runner: _Runner, streams: Sequence[Stream]) -> set[str]:
    """Run every stream, groups concurrently; returns the models a stream of which failed."""
    by_group: dict[str, list[StreamRun]] = defaultdict(list)
    pairs: list[tuple[Stream, StreamRun]] = []
    for stream in streams:
        run = runner.run_for(stream.name, stream.model, full=runner.full)
        by_group[stream.group].append(run)
        pairs.append((stream, run))
    runs = {id(run): stream for stream, run in pairs}
    failed: set[str] = set()

    async def group(members: list[StreamRun]) -> None:
        for run in members:
            stream = runs[id(run)]
            work = STRATEGIES[stream.strategy]
            if not await runner.guarded(run, "extracting", work(run, stream)):
                failed.add(stream.model)

    await asyncio.gather(*(group(members) for members in by_group.values()))
    return failed
