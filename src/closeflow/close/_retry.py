"""Which failed requests are sent again, and after how long.

Close has no idempotency keys, so a POST that may have reached Close is never resent: a second
create would make a duplicate lead. POST is retried only when the request provably never left
(connect failures) or when Close refused it outright (429). GET, PUT (a partial update: sending
the same fields twice gives the same record) and DELETE are retried on 5xx, 429 and transport
errors.

stamina decides *whether* to retry and counts attempts; the waits go through the injected clock,
so tests with a ``FakeClock`` never sleep. A 429's wait is not a backoff at all: the rate budget
holds the next attempt until the window Close named has ended.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina

from closeflow._clock import Clock
from closeflow.close._errors import RateLimited, ServerError, TransportError

T = TypeVar("T")

# PUT is a partial update in Close (same fields twice = same record); DELETE of a gone object
# is at worst a 404.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def is_retryable(method: str, error: BaseException, *, read_only: bool = False) -> bool:
    """Whether resending ``method`` after ``error`` is safe and useful.

    ``read_only`` marks a POST that changes nothing (``POST /data/search/``), which is as safe to
    resend as a GET.
    """
    if isinstance(error, RateLimited):
        return True  # refused before anything was applied
    idempotent = read_only or method.upper() in IDEMPOTENT_METHODS
    if isinstance(error, TransportError):
        return idempotent or error.reached_server is False
    if isinstance(error, ServerError):
        return idempotent
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and exponential backoff with full jitter (seconds)."""

    max_attempts: int = 5
    wait_initial: float = 0.5
    wait_max: float = 15.0
    wait_jitter: float = 1.0
    wait_exp_base: float = 2.0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        base = self.wait_initial * self.wait_exp_base ** max(0, failures - 1)
        return min(self.wait_max, base + random.uniform(0.0, self.wait_jitter))


async def call_with_retries(
    method: str,
    send: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    read_only: bool = False,
) -> T:
    """Await ``send(attempt_number)`` until it succeeds, a failure is not retryable, or attempts
    run out (the last error is raised as is)."""
    pending_wait = 0.0
    failures = 0

    def decide(error: Exception) -> bool | float:
        nonlocal pending_wait, failures
        if not is_retryable(method, error, read_only=read_only):
            return False
        failures += 1
        pending_wait = 0.0 if isinstance(error, RateLimited) else policy.backoff(failures)
        return 0.0  # stamina itself must not sleep: the wait happens on our clock below

    async for attempt in stamina.retry_context(on=decide, attempts=max(1, policy.max_attempts), timeout=None):
        with attempt:
            if pending_wait > 0:
                wait, pending_wait = pending_wait, 0.0
                await clock.sleep(wait)
            return await send(attempt.num)
    raise AssertionError("unreachable: stamina re-raises the last error")
