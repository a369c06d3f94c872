"""What a sync reports while it runs (one ``StreamProgress`` per stream) and when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Phase = Literal["waiting", "extracting", "events", "reconciling", "done", "failed"]


@dataclass
class StreamProgress:
    """Live counters of one stream; the same object is passed to every callback call."""

    stream: str
    model: str
    phase: Phase = "waiting"
    records: int = 0  # records received from Close
    requests: int = 0
    rate_limit_waits: int = 0  # requests that waited for the rate budget
    added: int = 0
    updated: int = 0
    removed: int = 0
    error: str | None = None


ProgressCallback = Callable[[StreamProgress], None]


@dataclass
class ModelSummary:
    model: str
    added: int = 0
    updated: int = 0
    removed: int = 0


@dataclass
class SyncResult:
    streams: list[StreamProgress] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)  # models whose ids were reconciled
    views_rebuilt: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.streams)

    def by_model(self) -> list[ModelSummary]:
        summaries: dict[str, ModelSummary] = {}
        for progress in self.streams:
            summary = summaries.setdefault(progress.model, ModelSummary(progress.model))
            summary.added += progress.added
            summary.updated += progress.updated
            summary.removed += progress.removed
        return list(summaries.values())

    @property
    def failed(self) -> list[StreamProgress]:
        return [s for s in self.streams if s.phase == "failed"]
