"""``Emulator``: one in-memory Close organization served as an ASGI app, plus ``serve`` for a real port."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from closeflow._clock import Clock, SystemClock
from closeflow.emulator._app import build_app
from closeflow.emulator._config import EmulatorConfig, RateLimitConfig
from closeflow.emulator._faults import Faults, in_process_transport
from closeflow.emulator._ids import IdFactory
from closeflow.emulator._oauth import OAuthServer
from closeflow.emulator._org import Organization
from closeflow.emulator._ratelimit import RateLimiter
from closeflow.emulator._search import SearchEngine
from closeflow.emulator._seed import seed_org

HOST = "http://closeflow-emulator"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    # Normalised (collapsed slashes, trailing slash, singular custom_field) and relative to
    # /api/v1 ("/lead/"); paths outside the API (the OAuth endpoints) stay absolute ("/oauth2/token/").
    path: str
    status: int  # 0 when the connection was dropped before an answer
    query: str


class Emulator:
    """A Close API server over one organization; see docs/architecture.md for the pieces.

    ``seed`` makes the organization (ids included) reproducible; without it a fixed default seed
    is still used for the org's users, statuses and custom fields so tests have them to hand.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        leads: int = 0,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.org = Organization(self.clock, seed=seed if seed is not None else 0)
        seed_org(self.org, seed if seed is not None else 0, leads)
        self.request_ids = IdFactory()
        self.faults = Faults(seed=seed or 0)
        self.search = SearchEngine(
            self.clock,
            cursor_ttl=self.config.search_cursor_ttl,
            max_results=self.config.search_max_results,
            current_user_id=self.org.owner_id,
        )
        self.oauth = OAuthServer(
            self.config, self.clock, organization_id=self.org.id, user_id=self.org.owner_id
        )
        self.rate_limiter = RateLimiter(self.config.rate_limit, self.clock)
        self.request_log: list[LoggedRequest] = []
        self.app = build_app(self)

    def __repr__(self) -> str:
        return f"Emulator(org={self.org.id!r}, leads={len(self.org.leads)})"

    @property
    def base_url(self) -> str:
        return HOST + self.config.base_path

    @property
    def api_key(self) -> str:
        return self.config.api_keys[0]

    def transport(self) -> httpx2.AsyncBaseTransport:
        return in_process_transport(self.app)

    def log_request(self, method: str, path: str, status: int, query: str) -> None:
        base = self.config.base_path
        relative = path[len(base) :] if path.startswith(base + "/") else path
        self.request_log.append(LoggedRequest(method, relative, status, query))

    def requests(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """How many requests matched; ``path_prefix`` may be absolute or relative to ``/api/v1``."""
        base = self.config.base_path
        if path_prefix is not None and path_prefix.startswith(base + "/"):
            path_prefix = path_prefix[len(base) :]
        return sum(
            1
            for entry in self.request_log
            if (method is None or entry.method == method.upper())
            and (path_prefix is None or entry.path.startswith(path_prefix))
        )


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    seed: int = 7,
    leads: int = 5000,
    api_key: str | None = None,
    rate_limit: RateLimitConfig | None = None,
) -> None:
    """Run the emulator on a real port with uvicorn (keep-alive on; TCP_NODELAY is uvicorn's default).

    ``port=0`` picks a free port; the printed base URL always shows the real one.
    """
    import socket

    import uvicorn

    config = EmulatorConfig(rate_limit=rate_limit)
    if api_key:
        config.api_keys = [api_key]
    print(f"Seeding an organization with {leads} leads (seed {seed}) …", flush=True)
    emulator = Emulator(config, seed=seed, leads=leads)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # accept into the backlog at once, so the printed URL works immediately
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"Close emulator: http://{shown_host}:{bound_port}{config.base_path}")
    # Printing the key is the point: it is the emulator's own test key, which the user needs.
    print(f"API key: {emulator.api_key}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(emulator.app, log_level="warning", timeout_keep_alive=30, lifespan="off")
    )
    server.run(sockets=[sock])
