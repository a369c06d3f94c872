"""The local runner: sync → new change-log entries → triggers → enrolment → runs, once or forever.

Why the order inside a cycle is what it is:

1. Unfinished runs first. A runner killed mid-batch left runs ``pending``/``running``/``waiting``
   in the run ledger; they finish from their last completed node before anything new is enrolled,
   and their action nodes go through the write ledger, so a completed create is never repeated.
2. Enrolment is guarded by the ledger's uniqueness (once: per record; every_change: per record and
   change), so re-reading changes after a crash can never enrol a record twice. A play's cursor
   moves only past changes whose runs already exist in the ledger: nothing is lost either.
3. Runs execute concurrently up to ``concurrency``; the client's shared rate budget does the pacing.
4. A run is driven only under a lease (``RunLedger.claim``): two runners on one database both see
   each other's unfinished runs, and without it both would send the same HTTP node. The lease is
   taken for ``LEASE_SECONDS`` and renewed before every node, so only a single node running longer
   than that (a slow tool) lets it expire; the runner then sees the loss at the next node and stops.
   A runner killed holding leases would make its restarted successor wait them out, so an owner id
   names its host and process: a lease whose holder was a process on this machine that no longer
   exists is taken over at once (a holder elsewhere, or on a non-POSIX system, is waited out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from closeflow._clock import Clock
from closeflow.actions import Ledger
from closeflow.close import CloseClient, ConfigError
from closeflow.plays._engine import run_to_end
from closeflow.plays._expressions import Evaluator
from closeflow.plays._runs import RunLedger, RunRecord
from closeflow.plays._schedule import is_due
from closeflow.plays._segment import change_context, named_custom_fields, trigger_matches
from closeflow.plays._spec import Catalog, Play
from closeflow.sync import Change, Store, StoreError, SyncResult, planned_views, sync

CHANGE_PAGE = 1000  # change-log rows read at a time, so a first run over a big log stays small in memory
SCHEDULE_KEY = "schedule:{play}"  # the ledger cursor that remembers when a scheduled play last ran
LEASE_SECONDS = 300.0  # how long a runner's claim on a run lasts (by its clock) before another may take it


def new_owner() -> str:
    """A runner's lease owner id, ``host/pid/random``: unique per runner, so two runners never share
    a lease, and naming its process, so a successor can tell that a killed holder is gone."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


def holder_is_gone(holder: str) -> bool:
    """True only when ``holder`` was a runner process on this machine that no longer exists. Any
    doubt (another host, a foreign id, not POSIX, a pid reused by a live process) answers False,
    which only means waiting for the lease to expire."""
    host, _, rest = holder.partition("/")
    pid_text = rest.split("/", 1)[0]
    if os.name != "posix" or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: a liveness probe, nothing is sent
    except ProcessLookupError:
        return True
    except OSError:  # exists but is not ours to signal
        return False
    return False


@dataclass
class PlayCycle:
    """What one cycle did for one play (the CLI's live display shows one row of these)."""

    play: str
    due: bool = True
    changes: int = 0  # change-log entries of the trigger's model read
    matched: int = 0  # of which the trigger matched
    enrolled: int = 0  # runs created
    already_enrolled: int = 0  # matched, but the enrolment mode had already run this record/change
    trigger_errors: int = 0  # changes whose trigger expression failed (skipped; the last in ``error``)
    statuses: dict[str, int] = field(default_factory=dict)  # finished runs by status
    error: str | None = None

    def count(self, status: str) -> int:
        return self.statuses.get(status, 0)


@dataclass
class CycleReport:
    """One cycle: the sync (if any), runs resumed from a previous process, and each play's counts."""

    sync: SyncResult | None = None
    resumed: int = 0
    plays: dict[str, PlayCycle] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)  # every run this cycle finished or left waiting

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for run in self.runs:
            totals[run.status] = totals.get(run.status, 0) + 1
        return totals


Progress = Callable[[CycleReport], None]


@dataclass
class _Cycle:
    """The shared pieces of one cycle, so helpers take one argument instead of nine."""

    catalog: Catalog
    store: Store
    client: CloseClient | None
    ledger: RunLedger
    write_ledger: Ledger
    clock: Clock
    report: CycleReport
    progress: Progress | None
    semaphore: asyncio.Semaphore
    http: httpx2.AsyncClient | None
    dry_run: bool = False
    owner: str = field(default_factory=new_owner)
    evaluator: Evaluator = field(default_factory=Evaluator)

    def tick(self) -> None:
        if self.progress is not None:
            self.progress(self.report)

    async def execute(self, run_id: str, counts: PlayCycle | None) -> RunRecord | None:
        """Drive one run under this runner's lease; None when another runner holds it (or finished
        it between our reading the unfinished runs and claiming it)."""
        async with self.semaphore:
            # Claimed inside the semaphore, so time spent queued does not eat into the lease.
            if not self._claim(run_id):
                return None
            try:
                return await self._drive(run_id, counts)
            finally:
                self.ledger.release(run_id, self.owner)

    def _claim(self, run_id: str) -> bool:
        now = self.clock.now()
        until = now + LEASE_SECONDS
        if self.ledger.claim(run_id, self.owner, until=until, now=now):
            return True
        holder = self.ledger.lease_holder(run_id)
        return (
            holder is not None
            and holder_is_gone(holder)
            and self.ledger.take_over(run_id, self.owner, holder=holder, until=until)
        )

    def _renew(self, run_id: str) -> bool:
        """Extend this runner's lease before each node, so a run longer than LEASE_SECONDS keeps it;
        False if it expired and another runner has taken it (this runner stops driving the run)."""
        now = self.clock.now()
        return self.ledger.claim(run_id, self.owner, until=now + LEASE_SECONDS, now=now)

    async def _drive(self, run_id: str, counts: PlayCycle | None) -> RunRecord | None:
        current = self.ledger.run(run_id)
        if current is not None and current.finished:
            return None
        try:
            record = await run_to_end(
                run_id,
                self.catalog,
                ledger=self.ledger,
                client=self.client,
                write_ledger=self.write_ledger,
                clock=self.clock,
                dry_run=self.dry_run,
                http=self.http,
                keep_lease=lambda: self._renew(run_id),
            )
        except Exception as exc:  # the engine fails nodes, not runs; this is its last line of defence
            self.ledger.set_status(run_id, "failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
            found = self.ledger.run(run_id)
            if found is None:
                raise
            record = found
        self.report.runs.append(record)
        if counts is not None:
            counts.statuses[record.status] = counts.statuses.get(record.status, 0) + 1
        self.tick()
        return record


async def run_cycle(
    catalog: Catalog,
    *,
    store: Store,
    client: CloseClient | None,
    ledger: RunLedger,
    write_ledger: Ledger,
    clock: Clock,
    sync_first: bool = True,
    plays: Sequence[str] | None = None,
    progress: Progress | None = None,
    concurrency: int = 8,
    http: httpx2.AsyncClient | None = None,
    ignore_schedule: bool = False,
    limit: int | None = None,
    dry_run: bool = False,
    owner: str | None = None,
) -> CycleReport:
    """One runner cycle: optionally sync, resume unfinished runs, then enrol and run each due play.

    ``plays`` restricts the cycle to those names (``closeflow plays run NAME``); with
    ``ignore_schedule`` they run even when not due (manual plays included); ``limit`` caps the
    records enrolled per play (below the play's own ``max_records_per_run``); ``dry_run`` runs
    action nodes as plans and sends no HTTP node (give it a throwaway ledger: the runs it records
    are enrolments, and the play's cursor moves). ``owner``: this runner's lease owner id (a new
    one when omitted); runs leased by another runner are left to it."""
    unknown = sorted(set(plays or ()) - set(catalog.plays))
    if unknown:
        raise ConfigError(
            f"unknown play(s) {', '.join(unknown)}; the folder has: {', '.join(sorted(catalog.plays))}"
        )
    cycle = _Cycle(
        catalog,
        store,
        client,
        ledger,
        write_ledger,
        clock,
        CycleReport(),
        progress,
        asyncio.Semaphore(max(1, concurrency)),
        http,
        dry_run,
        owner or new_owner(),
    )
    if sync_first:
        if client is None:
            raise ConfigError("run_cycle(sync_first=True) needs a Close client to sync with")
        cycle.report.sync = await sync(client, store, clock=clock)
        cycle.tick()
    await _resume(cycle, plays)
    selected = [catalog.plays[name] for name in plays] if plays is not None else list(catalog.plays.values())
    custom = _custom_names(store)
    for play in selected:
        counts = cycle.report.plays.setdefault(play.name, PlayCycle(play.name))
        key = SCHEDULE_KEY.format(play=play.name)
        last = ledger.cursor(key)
        counts.due = ignore_schedule or is_due(
            play.schedule.kind,
            now=clock.now(),
            last_run=float(last) if last else None,
            every_seconds=play.schedule.every_seconds,
            cron=play.schedule.cron,
        )
        if not counts.due:
            continue
        try:
            await _run_play(cycle, play, counts, custom.get(play.trigger.model, {}), limit)
        except ConfigError as exc:  # a bad expression stops this play, not the others
            counts.error = str(exc)
        ledger.set_cursor(key, int(clock.now()))
        cycle.tick()
    return cycle.report


async def run_forever(
    catalog: Catalog,
    *,
    every: float,
    store: Store,
    client: CloseClient | None,
    ledger: RunLedger,
    write_ledger: Ledger,
    clock: Clock,
    stop: asyncio.Event | None = None,
    cycles: int | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    **options: Any,
) -> list[CycleReport]:
    """Run cycles ``every`` seconds until ``stop`` is set (or ``cycles`` cycles ran); returns the
    reports of the cycles run. A cycle that takes longer than ``every`` is followed at once."""
    if every <= 0:
        raise ConfigError(f"--every must be a positive duration, got {every} seconds")
    reports: list[CycleReport] = []
    options.setdefault("owner", new_owner())  # one runner, one lease owner across its cycles
    while not (stop is not None and stop.is_set()) and (cycles is None or len(reports) < cycles):
        started = clock.now()
        report = await run_cycle(
            catalog,
            store=store,
            client=client,
            ledger=ledger,
            write_ledger=write_ledger,
            clock=clock,
            **options,
        )
        reports.append(report)
        if on_cycle is not None:
            on_cycle(report)
        if cycles is not None and len(reports) >= cycles:
            break
        await _sleep_until(clock, started + every, stop)
    return reports


async def _sleep_until(clock: Clock, deadline: float, stop: asyncio.Event | None) -> None:
    # Short steps, so a stop request is honoured within a second even during a long interval.
    while clock.now() < deadline and not (stop is not None and stop.is_set()):
        await clock.sleep(min(1.0, deadline - clock.now()))


async def _resume(cycle: _Cycle, plays: Sequence[str] | None) -> None:
    known = set(cycle.catalog.plays) | set(cycle.catalog.tools)
    # A tool run is finished by its parent's tool node (resumed with the parent), never on its own:
    # driving it here too would run its nodes twice at once.
    unfinished = [
        run
        for run in cycle.ledger.unfinished()
        if run.source != "tool" and run.play in known and (plays is None or run.play in plays)
    ]
    for run in unfinished:
        if run.play in cycle.catalog.plays:
            cycle.report.plays.setdefault(run.play, PlayCycle(run.play))
    driven = await _gather(cycle.execute(run.id, cycle.report.plays.get(run.play)) for run in unfinished)
    # Runs another runner holds the lease on are that runner's to resume, not counted here.
    cycle.report.resumed = sum(1 for record in driven if record is not None)


async def _run_play(
    cycle: _Cycle, play: Play, counts: PlayCycle, custom_names: dict[str, str], limit: int | None
) -> None:
    cap = (
        play.enrolment.max_records_per_run
        if limit is None
        else min(limit, play.enrolment.max_records_per_run)
    )
    batch: list[tuple[Change, str]] = []
    position = cycle.ledger.cursor(play.name)
    while counts.enrolled < cap:
        changes = cycle.store.changes(position, model=play.trigger.model, limit=CHANGE_PAGE)
        if not changes:
            break
        for change in changes:
            if counts.enrolled >= cap:
                break
            counts.changes += 1
            change = _whole(change)
            # An update's change-log row holds only the changed keys; the stored record fills in the rest.
            stored = (
                cycle.store.get(change.model, change.record_id, include_deleted=True)
                if change.kind == "updated"
                else None
            )
            try:
                matched = trigger_matches(
                    play.trigger, change, cycle.evaluator, play.vars, custom_names, record=stored
                )
            except Exception as exc:  # one change's bad data must not stop the play
                # Counted and reported, then passed: retrying the same expression on the same change
                # fails the same way, and holding the cursor here would stop the play for good.
                counts.trigger_errors += 1
                counts.error = f"change {change.seq} ({change.model} {change.record_id}): {exc}"
                matched = False
            if matched:
                counts.matched += 1
                run_id = _enrol(cycle, play, change, stored, custom_names)
                if run_id is None:
                    counts.already_enrolled += 1
                else:
                    counts.enrolled += 1
                    batch.append((change, run_id))
            position = change.seq
            if len(batch) >= play.enrolment.batch_size:
                await _run_batch(cycle, play, counts, batch, position)
                batch = []
        cycle.tick()
    await _run_batch(cycle, play, counts, batch, position)


async def _run_batch(
    cycle: _Cycle, play: Play, counts: PlayCycle, batch: list[tuple[Change, str]], position: int
) -> None:
    # The runs exist in the ledger, so the cursor may move past their changes before they execute:
    # a crash from here on resumes them as unfinished runs.
    if position > cycle.ledger.cursor(play.name):
        cycle.ledger.set_cursor(play.name, position)
    await _gather(cycle.execute(run_id, counts) for _, run_id in batch)


async def _gather(runs: Iterable[Coroutine[Any, Any, RunRecord | None]]) -> list[RunRecord | None]:
    # One run's unexpected error must not cancel or hide the others: all finish, then it is raised.
    results = await asyncio.gather(*runs, return_exceptions=True)
    driven: list[RunRecord | None] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        driven.append(result)
    return driven


def _enrol(
    cycle: _Cycle, play: Play, change: Change, stored: dict[str, Any] | None, custom_names: dict[str, str]
) -> str | None:
    """Enrol the record and create its run in one transaction; None when the play's enrolment mode
    already ran it (once: this record; every_change: this change)."""
    context = run_context(play, change, stored, custom_names)
    return cycle.ledger.enrol_run(
        play=play.name,
        record_id=change.record_id,
        change_seq=change.seq,
        mode=play.enrolment.mode,
        trigger=context["change"],
        context=context,
    )


def _whole(change: Change) -> Change:
    """An added record has an empty ``before`` and a removed one an empty ``after`` (not null), so
    ``change.before.status_label`` is simply undefined for a new lead instead of an error."""
    if change.kind == "added" and change.before is None:
        return dataclasses.replace(change, before={})
    if change.kind == "removed" and change.after is None:
        return dataclasses.replace(change, after={})
    return change


def run_context(
    play: Play,
    change: Change,
    stored: dict[str, Any] | None = None,
    custom_names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The expression context a play run starts from: the record after the change (before it, for
    a removal) with custom fields also under ``custom.<Name>``, the change with whole before/after
    records, and the play's vars."""
    data = change_context(change, stored)
    record = data["before"] if change.kind == "removed" else data["after"]
    return {
        "record": named_custom_fields(record or {}, custom_names or {}),
        "change": data,
        "vars": dict(play.vars),
    }


def _custom_names(store: Store) -> dict[str, dict[str, str]]:
    """Per data model: custom-field name → the record key that holds it (``custom.cf_…``), from the
    custom-field definitions the store keeps, so `custom."Tier"` in a trigger's `where` resolves."""
    names: dict[str, dict[str, str]] = {}
    try:
        plans = planned_views(store)
    except StoreError:  # a store that was never synced has no definitions yet
        return names
    for model, columns in plans.values():
        for column in columns:
            if column.key.startswith("custom."):
                names.setdefault(model, {}).setdefault(column.name, column.key)
    return names
