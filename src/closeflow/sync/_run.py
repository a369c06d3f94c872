"""One stream's run: its store, requester, clock and settings, and the one way it commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from closeflow._clock import Clock
from closeflow.close import utc_text as close_utc_text
from closeflow.sync._progress import StreamProgress
from closeflow.sync._requester import StreamRequester
from closeflow.sync.store import Change, Store

# Close advises re-reading the last five minutes of the event log (events are consolidated and
# become visible out of order, §7.1); lists lag 30-60 s behind writes (§2.4). Every incremental
# position is moved back by this much before it is used; re-read records cost no change rows.
DEFAULT_LOOKBACK = 300.0
EVENT_RETENTION = 30 * 86_400.0


def utc_text(timestamp: float) -> str:
    """An object-style date (``2026-01-01T00:00:00.000000+00:00``)."""
    return close_utc_text(datetime.fromtimestamp(timestamp, UTC))


def naive_text(timestamp: float) -> str:
    """An event-style date: naive UTC, as the event log writes and filters them (§2.2)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def timestamp_of(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def moved_back(text: str, seconds: float) -> str:
    """``text`` (an ISO date) minus ``seconds``, in the same style (naive stays naive)."""
    moment = datetime.fromisoformat(text) - timedelta(seconds=seconds)
    if moment.tzinfo is None:
        return moment.isoformat(timespec="microseconds")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class StreamRun:
    stream_name: str
    model: str
    store: Store
    requester: StreamRequester
    clock: Clock
    lookback: float = DEFAULT_LOOKBACK
    full: bool = False

    @property
    def progress(self) -> StreamProgress:
        return self.requester.progress

    def state(self) -> dict[str, Any] | None:
        return None if self.full else self.store.state(self.stream_name)

    def commit(
        self,
        upserts: Sequence[Mapping[str, Any]] = (),
        removals: Sequence[str] = (),
        state: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
    ) -> list[Change]:
        """One transaction: the page's records, their change rows and the stream's new state."""
        changes = self.store.commit_page(
            self.stream_name,
            model or self.model,
            upserts=upserts,
            removals=removals,
            state=state,
            now=datetime.fromtimestamp(self.clock.now(), UTC),
        )
        progress = self.progress
        for change in changes:
            if change.kind == "added":
                progress.added += 1
            elif change.kind == "updated":
                progress.updated += 1
            else:
                progress.removed += 1
        self.requester.report()
        return changes

    def save_state(self, stream: str, state: Mapping[str, Any]) -> None:
        """Bookkeeping of no model (the event log's position, the gap's pending reconciliations)."""
        self.store.save_state(stream, state, now=datetime.fromtimestamp(self.clock.now(), UTC))
