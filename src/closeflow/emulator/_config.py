"""Emulator settings: what the fake Close org allows and how strict it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class RateLimitConfig:
    """Requests allowed per window, per API key (or OAuth token) and endpoint group.

    Close enforces a per-key limit and an organization limit of three times that. Groups missing
    from ``per_group`` use ``default``. ``header_style`` picks the separator of the ``RateLimit``
    header, since live Close orgs were seen with both.
    """

    default: int = 40
    per_group: dict[str, int] = field(default_factory=dict)
    window: float = 1.0
    org_multiplier: int = 3
    header_style: Literal["comma", "semicolon"] = "comma"

    def limit_for(self, group: str) -> int:
        return self.per_group.get(group, self.default)


@dataclass
class OAuthClientConfig:
    client_id: str = "oa2client_emulator"
    client_secret: str = "emulator-client-secret"
    redirect_uris: list[str] = field(default_factory=list)  # empty: any loopback URI is accepted


@dataclass
class EmulatorConfig:
    api_keys: list[str] = field(default_factory=lambda: ["api_emulator_key"])
    base_path: str = "/api/v1"
    rate_limit: RateLimitConfig | None = None  # None: no limits, no headers
    # Close caps `_skip` per resource and refuses `_limit` above a per-resource maximum (§3.1).
    skip_caps: dict[str, int] = field(
        default_factory=lambda: {"lead": 35_000, "contact": 35_000, "default": 250_000}
    )
    limit_max: dict[str, int] = field(
        default_factory=lambda: {"lead": 200, "contact": 200, "default": 1000, "event": 50}
    )
    search_cursor_ttl: float = 30.0
    search_max_results: int = 10_000
    oauth_clients: list[OAuthClientConfig] = field(default_factory=lambda: [OAuthClientConfig()])
    oauth_access_ttl: float = 3600.0
    event_retention: float = 30 * 86_400.0
    # Rapid `updated` events on one object from one source merge into one event (§7.1); 0 turns it off.
    event_consolidation_window: float = 60.0

    def skip_cap(self, resource: str) -> int:
        return self.skip_caps.get(resource, self.skip_caps.get("default", 250_000))

    def max_limit(self, resource: str) -> int:
        return self.limit_max.get(resource, self.limit_max.get("default", 1000))
