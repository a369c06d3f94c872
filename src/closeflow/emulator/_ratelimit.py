"""Close's rate limits (§10): fixed windows per API key and per organization, per endpoint group.

The groups are ``closeflow._endpoint_groups.endpoint_group`` (read/write per resource, and
``data_search`` for ``POST /data/search/``): Close does not publish its own.

Windows are aligned to multiples of ``window`` seconds on the clock, so every key and the org
share the same reset instant. A refused request does not use up quota.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from closeflow._clock import Clock
from closeflow._endpoint_groups import endpoint_group

from ._config import RateLimitConfig


@dataclass
class RateVerdict:
    allowed: bool
    headers: dict[str, str]
    body: dict[str, Any] | None
    group: str


def _hash(identity: str) -> str:
    # API keys and bearer tokens are secrets: the limiter keys on a digest, never the raw value.
    return hashlib.sha256(identity.encode()).hexdigest()


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class RateLimiter:
    def __init__(self, config: RateLimitConfig | None, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._window_index: int | None = None
        self._counts: dict[tuple[str, str, str], int] = {}

    def admit(self, identity: str, org_id: str, method: str, path: str) -> RateVerdict:
        """Count one request, or refuse it; the verdict carries the headers every response gets."""
        group = endpoint_group(method, path)
        config = self._config
        if config is None:
            return RateVerdict(allowed=True, headers={}, body=None, group=group)
        now = self._clock.now()
        index = math.floor(now / config.window)
        if index != self._window_index:
            # A new window: every older count is void, which also keeps this dict small.
            self._window_index = index
            self._counts.clear()
        reset = max(1, math.ceil((index + 1) * config.window - now))
        limit = config.limit_for(group)
        org_limit = limit * config.org_multiplier
        key = ("key", _hash(identity), group)
        org_key = ("org", org_id, group)
        used, org_used = self._counts.get(key, 0), self._counts.get(org_key, 0)
        allowed = used < limit and org_used < org_limit
        if allowed:
            used, org_used = used + 1, org_used + 1
            self._counts[key], self._counts[org_key] = used, org_used
        remaining = max(0, min(limit - used, org_limit - org_used)) if allowed else 0
        headers = self._headers(limit, remaining, reset, config)
        if allowed:
            return RateVerdict(allowed=True, headers=headers, body=None, group=group)
        headers["Retry-After"] = str(reset)
        window = _number(config.window)
        body = {
            # Clients of every generation read one of these (§10): the nested object, the top-level copy.
            "error": {
                "rate_reset": reset,
                "message": f"API call count exceeded for this {window} second window",
                "rate_limit": limit,
                "rate_window": window,
            },
            "rate_reset": reset,
        }
        return RateVerdict(allowed=False, headers=headers, body=body, group=group)

    @staticmethod
    def _headers(limit: int, remaining: int, reset: int, config: RateLimitConfig) -> dict[str, str]:
        separator = "; " if config.header_style == "semicolon" else ", "
        return {
            "RateLimit": separator.join((f"limit={limit}", f"remaining={remaining}", f"reset={reset}")),
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset),
        }
