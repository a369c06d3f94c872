"""Injectable faults: server errors, latency and dropped connections, switched on per test.

A dropped connection comes in two kinds because they mean different things to a client: dropped
*before processing* the request provably never reached Close (safe to resend a POST); dropped
*after processing* the write happened but the reply was lost (a resent POST would create a
duplicate). In process the middleware raises ``DroppedConnection`` and ``in_process_transport``
turns it into ``httpx2.ConnectError`` or ``httpx2.ReadError``. On a real port the middleware
starts a response whose ``Content-Length`` promises more than it sends and stops, so a real
client sees the connection break mid-reply. (An ASGI app cannot refuse a connection uvicorn has
already accepted, so on a port a drop before processing also looks like a broken reply; the
handler still never runs.)
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass

import httpx2
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from closeflow._clock import Clock

IN_PROCESS_KEY = "closeflow.in_process"


class DroppedConnection(Exception):
    def __init__(self, *, after_processing: bool) -> None:
        when = "after" if after_processing else "before"
        super().__init__(f"emulator dropped the connection {when} processing the request")
        self.after_processing = after_processing


@dataclass
class _Planned:
    """Faults queued by ``fail_next``/``drop_next``: they fire on the next matching requests."""

    remaining: int
    status: int | None  # an error response, or None for a drop
    after_processing: bool
    method: str | None
    path_pattern: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_pattern is None or re.search(self.path_pattern, path) is not None
        )


@dataclass
class FaultDecision:
    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    after_processing: bool = False


class Faults:
    """Mutable switches a test flips; all off by default; deterministic for a given seed."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self.injected: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        self.error_rate = 0.0
        self.error_status = 503
        self.latency = 0.0
        self.drop_rate = 0.0
        self.drop_after_processing = False
        self.methods: set[str] | None = None
        self.path_pattern: str | None = None
        self._planned: list[_Planned] = []
        self._random = random.Random(self._seed)
        self.injected.clear()

    def fail_next(
        self, n: int, *, status: int = 503, method: str | None = None, path_pattern: str | None = None
    ) -> None:
        self._planned.append(_Planned(n, status, False, method, path_pattern))

    def drop_next(
        self, n: int, *, after_processing: bool, method: str | None = None, path_pattern: str | None = None
    ) -> None:
        self._planned.append(_Planned(n, None, after_processing, method, path_pattern))

    def decide(self, method: str, path: str) -> FaultDecision:
        """What happens to this request; counts every fault that fires in ``injected``."""
        method = method.upper()
        decision = FaultDecision()
        for planned in self._planned:
            if planned.remaining > 0 and planned.matches(method, path):
                planned.remaining -= 1
                decision.status = planned.status
                decision.drop = planned.status is None
                decision.after_processing = planned.after_processing
                break
        self._planned = [p for p in self._planned if p.remaining > 0]
        in_scope = (self.methods is None or method in {m.upper() for m in self.methods}) and (
            self.path_pattern is None or re.search(self.path_pattern, path) is not None
        )
        if in_scope:
            decision.latency = self.latency
            if decision.status is None and not decision.drop:
                if self.error_rate > 0 and self._random.random() < self.error_rate:
                    decision.status = self.error_status
                elif self.drop_rate > 0 and self._random.random() < self.drop_rate:
                    decision.drop = True
                    decision.after_processing = self.drop_after_processing
        if decision.latency > 0:
            self.injected["latency"] += 1
        if decision.status is not None:
            self.injected["error"] += 1
            self.injected[f"error_{decision.status}"] += 1
        if decision.drop:
            self.injected[
                "drop_after_processing" if decision.after_processing else "drop_before_processing"
            ] += 1
        return decision


def _error_body(status: int) -> bytes:
    # Clients read `error` in 5xx bodies as an object (§12.6); a bare string crashes some of them.
    return json.dumps(
        {"error": {"message": f"Injected fault: HTTP {status} from the Close emulator"}}
    ).encode()


async def _send_broken(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Start a reply that promises more bytes than it sends, then stop: a broken connection."""
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    promised = str(len(body) + 1024).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [*kept, (b"content-length", promised)]}
    )
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})


class FaultMiddleware:
    """Pure ASGI middleware applying ``Faults`` to every HTTP request."""

    def __init__(self, app: ASGIApp, faults: Faults, clock: Clock) -> None:
        self.app = app
        self.faults = faults
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = self.faults.decide(scope["method"], scope["path"])
        if decision.latency > 0:
            await self.clock.sleep(decision.latency)
        in_process = bool(scope.get(IN_PROCESS_KEY))
        if decision.status is not None:
            body = _error_body(decision.status)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": decision.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if not decision.drop:
            await self.app(scope, receive, send)
            return
        if not decision.after_processing:
            if in_process:
                raise DroppedConnection(after_processing=False)
            await _send_broken(send, 200, [(b"content-type", b"application/json")], b"{}")
            return
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)  # the write happens; only the reply is lost
        if in_process:
            raise DroppedConnection(after_processing=True)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        status = start["status"] if start else 200
        await _send_broken(send, status, list(start.get("headers", [])) if start else [], body)


def _find_drop(error: BaseException) -> DroppedConnection | None:
    if isinstance(error, DroppedConnection):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _find_drop(inner)
            if found is not None:
                return found
    return None


class _InProcessTransport(httpx2.AsyncBaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._asgi = httpx2.ASGITransport(app=self._marked)

    async def _marked(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app({**scope, IN_PROCESS_KEY: True}, receive, send)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except BaseException as error:
            drop = _find_drop(error)
            if drop is None:
                raise
            if drop.after_processing:
                raise httpx2.ReadError(str(drop), request=request) from None
            raise httpx2.ConnectError(str(drop), request=request) from None


def in_process_transport(app: ASGIApp) -> httpx2.AsyncBaseTransport:
    """An httpx2 transport running ``app`` in process, turning dropped connections into transport errors."""
    return _InProcessTransport(app)
