"""When to send: a rate budget per (organization, endpoint group), fed by Close's headers.

Close limits requests per *endpoint group* (unpublished groups of paths and methods), per API key
and per organization, in short windows. Most responses carry the window's state in a ``RateLimit``
header (``limit=100, remaining=50, reset=5``; live orgs were seen with ``;`` instead of ``,``), or in
``RateLimit-*`` / legacy ``X-Rate-Limit-*`` headers, and some orgs send none at all. A budget
spends what the last header said is left, counting the requests still in flight, and waits for
the window to end instead of provoking 429s. All waiting goes through the injected clock.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx2

from closeflow._clock import Clock, SystemClock

# Without any hint of when a 429's window ends, wait this long before trying again.
DEFAULT_429_WAIT = 1.0
# Headers round `reset` (to ms, or up to whole seconds); a request sent a hair before the window
# truly ends would be counted in the old, spent one.
WINDOW_MARGIN = 0.001


@dataclass(frozen=True)
class RateLimitState:
    """One response's view of its window: ``reset`` is seconds until the window ends."""

    limit: float
    remaining: float
    reset: float


_PAIR = re.compile(r"\s*([A-Za-z_-]+)\s*=\s*\"?([0-9]+(?:\.[0-9]+)?)\"?\s*")


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _lowercase(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitState | None:
    """Read the window state from any of the three header generations Close has used."""
    lower = _lowercase(headers)
    combined = lower.get("ratelimit")
    if combined is not None:
        values: dict[str, float] = {}
        for part in re.split(r"[,;]", combined):
            match = _PAIR.fullmatch(part)
            if match is not None:
                values[match.group(1).lower()] = float(match.group(2))
        if {"limit", "remaining", "reset"} <= values.keys():
            return RateLimitState(values["limit"], values["remaining"], values["reset"])
    for prefix in ("ratelimit-", "x-rate-limit-"):
        limit = _number(lower.get(prefix + "limit"))
        remaining = _number(lower.get(prefix + "remaining"))
        reset = _number(lower.get(prefix + "reset"))
        if limit is not None and remaining is not None and reset is not None:
            return RateLimitState(limit, remaining, reset)
    return None


def seconds_until_retry(response: httpx2.Response) -> float | None:
    """How long a 429 asks us to wait: ``Retry-After``, else the header reset, else the body's
    ``rate_reset`` (the field Close's 429 bodies used to carry, still read by older clients)."""
    retry_after = _number(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    state = parse_rate_limit(response.headers)
    if state is not None:
        return state.reset
    try:
        body: Any = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    candidates = [error.get("rate_reset") if isinstance(error, dict) else None, body.get("rate_reset")]
    for candidate in candidates:
        if isinstance(candidate, int | float) and not isinstance(candidate, bool) and candidate >= 0:
            return float(candidate)
    return None


@dataclass
class BudgetStats:
    """What one budget did, for ``closeflow check`` and the benchmarks."""

    requests: int = 0
    waits: int = 0
    seconds_waited: float = 0.0
    rate_limited: int = 0


@dataclass(frozen=True)
class BudgetSnapshot:
    """One budget's state and counters at a moment, for display (``closeflow check``)."""

    group: str
    limit: float | None
    remaining: float | None
    reset_in: float
    requests: int
    waits: int
    seconds_waited: float
    throttled: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_in": self.reset_in,
            "requests": self.requests,
            "waits": self.waits,
            "seconds_waited": self.seconds_waited,
            "throttled": self.throttled,
        }


@dataclass(frozen=True)
class Permit:
    """Handed out by ``acquire``; tells ``observe`` which window the request was sent in."""

    generation: int
    probe: bool


@dataclass
class RateBudget:
    """The requests one organization may still send to one endpoint group in the current window.

    Nothing learned yet: requests go through unpaced. Once a header arrives: at most
    ``remaining - in_flight`` more requests are sent before the window ends. When the window has
    ended, exactly one *probe* request goes first, and the others wait for its response, which
    tells everyone what the new window holds (so a burst cannot overrun a window we know nothing
    about yet).
    """

    clock: Clock = field(default_factory=SystemClock)
    stats: BudgetStats = field(default_factory=BudgetStats)
    limit: float | None = None
    remaining: float = 0.0
    window_end: float = 0.0
    blocked_until: float = 0.0
    in_flight: int = 0
    _generation: int = 0
    _probe_in_flight: bool = False
    _probe_waiters: list[asyncio.Future[None]] = field(default_factory=list)

    async def acquire(self) -> Permit:
        """Wait (on the clock) until this budget allows one more request, and count it in flight."""
        self.stats.requests += 1
        started = self.clock.now()
        waited = False
        while True:
            now = self.clock.now()
            if now < self.blocked_until:
                waited = True
                await self.clock.sleep(self.blocked_until - now)
                continue
            if self.limit is None:
                permit = Permit(self._generation, probe=False)
                break
            if now >= self.window_end:
                if self._probe_in_flight:
                    waited = True
                    await self._wait_for_probe()
                    continue
                self._generation += 1
                self._probe_in_flight = True
                permit = Permit(self._generation, probe=True)
                break
            if self.remaining - self.in_flight >= 1:
                permit = Permit(self._generation, probe=False)
                break
            waited = True
            await self.clock.sleep(self.window_end - now)
        self.in_flight += 1
        if waited:
            self.stats.waits += 1
            self.stats.seconds_waited += self.clock.now() - started
        return permit

    def observe(self, response: httpx2.Response | None, permit: Permit | None = None) -> None:
        """Learn from a response's headers (``None``: the request failed without a response)."""
        self.in_flight = max(0, self.in_flight - 1)
        state = parse_rate_limit(response.headers) if response is not None else None
        stale = permit is not None and permit.generation < self._generation
        if state is not None and not stale:
            self._learn(state)
        elif permit is not None and permit.probe and response is not None and state is None:
            # The probe came back without headers: this group is not (or no longer) advertising
            # its limits, so stop pacing it rather than serialising every request behind probes.
            self.limit = None
        if permit is not None and permit.probe:
            self._probe_in_flight = False
            self._wake_probe_waiters()

    def snapshot(self, group: str) -> BudgetSnapshot:
        known = self.limit is not None
        return BudgetSnapshot(
            group=group,
            limit=self.limit if known else None,
            remaining=max(0.0, self.remaining - self.in_flight) if known else None,
            reset_in=max(0.0, self.window_end - self.clock.now()),
            requests=self.stats.requests,
            waits=self.stats.waits,
            seconds_waited=self.stats.seconds_waited,
            throttled=self.stats.rate_limited,
        )

    def on_429(self, retry_after_seconds: float | None) -> None:
        """Close refused a request: nothing more goes out before the window it named ends."""
        self.stats.rate_limited += 1
        wait = DEFAULT_429_WAIT if retry_after_seconds is None else retry_after_seconds
        until = self.clock.now() + wait
        self.blocked_until = max(self.blocked_until, until)
        # After the wait, the window is new: one probe first, as after any reset.
        self.window_end = max(self.window_end, until)
        self.remaining = 0.0
        if self.limit is None:
            self.limit = 0.0

    def _learn(self, state: RateLimitState) -> None:
        now = self.clock.now()
        same_window = self.limit is not None and now < self.window_end
        self.limit = state.limit
        if same_window:
            # Responses overtake each other: the lowest count seen in a window is the truest.
            self.remaining = min(self.remaining, state.remaining)
        else:
            self.remaining = state.remaining
            self.window_end = now + state.reset + WINDOW_MARGIN

    async def _wait_for_probe(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probe_waiters.append(future)
        await future

    def _wake_probe_waiters(self) -> None:
        waiters, self._probe_waiters = self._probe_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


class RateBudgets:
    """The registry of budgets, keyed by (organization key, endpoint group).

    ``RateBudgets.shared()`` is the process-wide registry every client uses by default, so every
    sync, play and agent call against one organization spends the same budget. Tests and
    simulations with their own clock make their own registry.
    """

    _shared: ClassVar[RateBudgets | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._budgets: dict[tuple[str, str], RateBudget] = {}

    @classmethod
    def shared(cls) -> RateBudgets:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def budget(self, org_key: str, group: str) -> RateBudget:
        key = (org_key, group)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = RateBudget(clock=self.clock)
        return budget

    def stats(self) -> dict[tuple[str, str], BudgetStats]:
        return {key: budget.stats for key, budget in self._budgets.items()}

    def snapshots(self, *org_keys: str) -> list[BudgetSnapshot]:
        """The budgets of these organization keys, sorted by endpoint group."""
        return sorted(
            (budget.snapshot(group) for (org, group), budget in self._budgets.items() if org in org_keys),
            key=lambda snapshot: snapshot.group,
        )

    def __repr__(self) -> str:
        return f"RateBudgets(budgets={len(self._budgets)})"
