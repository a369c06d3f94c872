"""Time as a dependency.

Everything that waits or compares times (the rate budget, OAuth token expiry, the emulator's
rate-limit windows and cursor expiry) takes a ``Clock`` so tests can drive time by hand.
Both the client and the emulator use this module; it holds no Close knowledge.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall time, used for expiries and dates)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to, or when someone sleeps on it.

    ``sleep(s)`` moves time forward to the sleeper's wake-up time (never backwards) and yields
    to the event loop, so concurrent sleepers observe a consistent, monotonic timeline without
    any real waiting. ``slept`` records every requested sleep, for assertions.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    def set(self, timestamp: float) -> None:
        self._now = max(self._now, timestamp)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        wake = self._now + seconds
        await asyncio.sleep(0)
        self._now = max(self._now, wake)
        await asyncio.sleep(0)
