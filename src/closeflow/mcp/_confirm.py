"""Single-use confirmation tokens: a write an agent asks for is first planned, and only a second
call presenting the token of that plan, with the same arguments, carries it out.

A token is bound to the tool and a digest of the arguments (so it cannot confirm a different
write), expires after ``ttl`` seconds on the server's clock, and is spent the moment it is
presented, whatever happens next: a retried or replayed call can never run a write twice. Only a
hash of each token is kept, in memory; a restarted server has no tokens, and the agent plans again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from closeflow._clock import Clock

DEFAULT_TTL = 600.0
MAX_OUTSTANDING = 1000


class ConfirmationError(ValueError):
    """The presented token is unknown, spent, expired, or was issued for another call."""


def arguments_digest(tool: str, arguments: Mapping[str, Any]) -> str:
    text = json.dumps([tool, dict(arguments)], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Confirmations:
    def __init__(self, clock: Clock, *, ttl: float = DEFAULT_TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        # token hash -> (tool, arguments digest, expires at, what the plan pinned); oldest first, bounded
        self._pending: OrderedDict[str, tuple[str, str, float, Any]] = OrderedDict()

    def issue(self, tool: str, arguments: Mapping[str, Any], pinned: Any = None) -> str:
        """A token for this plan; ``pinned`` (e.g. the ids a delete plan showed) comes back on redeem."""
        token = "cft_" + secrets.token_urlsafe(24)
        expires = self.clock.now() + self.ttl
        self._pending[_hash(token)] = (tool, arguments_digest(tool, arguments), expires, pinned)
        while len(self._pending) > MAX_OUTSTANDING:
            self._pending.popitem(last=False)
        return token

    def redeem(self, token: str, tool: str, arguments: Mapping[str, Any]) -> Any:
        """Spend ``token`` for this call and return what its plan pinned, or raise
        ``ConfirmationError`` saying why it does not fit."""
        found = self._pending.pop(_hash(token), None)
        if found is None:
            raise ConfirmationError(
                "this confirmation token is unknown or was already used (each token works once); call "
                f"{tool} without confirmation_token to get a new plan and token"
            )
        issued_for, digest, expires, pinned = found
        if issued_for != tool:
            raise ConfirmationError(
                f"this confirmation token was issued for {issued_for}, not {tool}; it is now spent"
            )
        if self.clock.now() > expires:
            raise ConfirmationError(
                f"this confirmation token expired ({self.ttl:.0f} s after its plan); call {tool} without "
                "confirmation_token to plan again"
            )
        if digest != arguments_digest(tool, arguments):
            raise ConfirmationError(
                "the arguments differ from the ones this token's plan was made for, so it does not "
                "confirm them; the token is now spent. Call without confirmation_token to plan these "
                "arguments"
            )
        return pinned
