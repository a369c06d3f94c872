"""Helpers shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Ticks:
    """Commit times: a fixed start, one second further on every call (never the wall clock)."""

    def __init__(self) -> None:
        self._now = datetime(2026, 12, 4, 20, 11, 35, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now
