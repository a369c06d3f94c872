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
from closeflow.sync._events import EVENTS_STREAM, PENDING, anchor_events, events_stream
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
    events_run = runner.run_for(EVENTS_STREAM, "leads", shown=False)
    anchor_events(events_run)
    pending = _note_gap(events_run, clock.now())

    failed_models = await _extract(runner, streams)

    to_reconcile = set(pending)
    if reconcile or full:
        to_reconcile |= {s.model for s in streams if s.model not in REFERENCE_MODELS}
    for model in sorted(to_reconcile - failed_models):
        model_streams = [s for s in STREAMS if s.model == model]
        run = runner.run_for(f"reconcile.{model}", model)
        if await runner.guarded(run, "reconciling", reconcile_model(run, model_streams)):
            result.reconciled.append(model)
            if model in pending:  # cleared only now: a failed run keeps the gap to repair
                pending.discard(model)
                state = store.state(EVENTS_STREAM) or {}
                run.save_state(EVENTS_STREAM, {**state, PENDING: sorted(pending)})

    events_run = runner.run_for(EVENTS_STREAM, "leads")
    await runner.guarded(events_run, "events", events_stream(events_run))

    now = datetime.fromtimestamp(clock.now(), UTC)
    result.views_rebuilt = rebuild_views(store, now=now)
    return result


def _note_gap(run: StreamRun, now: float) -> set[str]:
    """The models whose deletions the event log lost, kept in its state until each reconciles.

    A gap: the walk would start (position minus lookback) before the oldest event Close still
    keeps. Then deletions of every model ever synced are lost, and so are edits of activities,
    so the activity types' positions start over and they are read whole again."""
    state = run.store.state(EVENTS_STREAM) or {}
    pending = {str(model) for model in state.get(PENDING) or []}
    since = state.get("since")
    if not isinstance(since, str) or timestamp_of(since) - run.lookback >= now - EVENT_RETENTION:
        return pending
    states = run.store.all_states()
    rewalk = [s for s in STREAMS if s.strategy == "created_paging" and s.name in states]
    for stream in rewalk:
        run.save_state(stream.name, {**states[stream.name], "position": None})
    pending |= {s.model for s in STREAMS if s.model not in REFERENCE_MODELS and s.name in states}
    # Kept with the old position: a run killed before it repairs anything finds the gap again.
    run.save_state(EVENTS_STREAM, {**state, PENDING: sorted(pending)})
    return pending


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
