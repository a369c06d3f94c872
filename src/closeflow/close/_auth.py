"""Credentials: what the client needs to authenticate to Close, without ever showing a secret.

``CloseClient`` only sees the ``Credentials`` protocol: an ``httpx2.Auth`` to attach to requests,
a non-secret ``fingerprint`` that keys the rate budget until the organization is known, and the
organization id when the credentials carry it (OAuth tokens do, API keys don't).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import httpx2


@runtime_checkable
class Credentials(Protocol):
    def httpx_auth(self) -> httpx2.Auth: ...

    @property
    def fingerprint(self) -> str:
        """A stable, non-secret identifier: safe to log, to key caches and rate budgets."""
        ...

    @property
    def organization_id(self) -> str | None: ...


def redact(secret: str | None) -> str:
    """Show at most the first 4 characters: enough to tell two keys apart, useless to an attacker."""
    if not secret:
        return "None" if secret is None else "''"
    # Short secrets show less, so that no secret is ever more than a third visible.
    return f"{secret[: min(4, len(secret) // 3)]}…****"


def short_hash(*parts: str) -> str:
    """First 16 hex digits of SHA-256 over the parts (a fingerprint, never reversible to the secret)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:16]


class ApiKey:
    """A Close API key, sent as HTTP Basic with the key as username and an empty password (§1.4).

    The key is deliberately not a dataclass field: ``repr``, ``str``, logs and tracebacks show
    ``ApiKey(api_…****)`` only.
    """

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        key = key.strip()
        if not key:
            raise ValueError("an API key cannot be empty")
        self._key = key

    @property
    def key(self) -> str:
        """The secret itself, for the one place that must store it (the credentials file)."""
        return self._key

    def httpx_auth(self) -> httpx2.Auth:
        return httpx2.BasicAuth(self._key, "")

    @property
    def fingerprint(self) -> str:
        return "key:" + short_hash(self._key)

    @property
    def organization_id(self) -> str | None:
        # A key belongs to one organization, but the key alone does not say which; the client
        # learns it from `/me/` if it needs it.
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"ApiKey({redact(self._key)})"

    __str__ = __repr__
