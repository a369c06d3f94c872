"""Injected faults: 5xx, latency, dropped connections before and after processing."""

from __future__ import annotations

import asyncio
import socket

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from closeflow._clock import FakeClock
from closeflow.emulator._faults import FaultMiddleware, Faults, in_process_transport


class Backend:
    """A one-route app that counts the writes it performed."""

    def __init__(self) -> None:
        self.writes = 0

    async def create(self, request: Request) -> JSONResponse:
        self.writes += 1
        return JSONResponse({"id": f"lead_{self.writes}", "padding": "x" * 200})

    async def read(self, request: Request) -> JSONResponse:
        return JSONResponse({"data": []})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/lead/", self.create, methods=["POST"]),
                Route("/api/v1/lead/", self.read, methods=["GET"]),
            ]
        )


def _stack(faults: Faults, clock: FakeClock | None = None) -> tuple[Backend, httpx2.AsyncClient]:
    backend = Backend()
    app = FaultMiddleware(backend.app(), faults, clock or FakeClock())
    return backend, httpx2.AsyncClient(transport=in_process_transport(app), base_url="http://emulator")


async def test_no_faults_by_default() -> None:
    faults = Faults()
    backend, http = _stack(faults)
    async with http:
        statuses = [(await http.post("/api/v1/lead/")).status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert backend.writes == 20
    assert sum(faults.injected.values()) == 0


async def test_fail_next_returns_json_5xx_with_an_error_object_and_skips_the_handler() -> None:
    faults = Faults()
    faults.fail_next(2, status=502)
    backend, http = _stack(faults)
    async with http:
        responses = [await http.post("/api/v1/lead/") for _ in range(3)]
    assert [r.status_code for r in responses] == [502, 502, 200]
    assert isinstance(responses[0].json()["error"], dict)
    assert "message" in responses[0].json()["error"]
    assert backend.writes == 1
    assert faults.injected["error"] == 2
    assert faults.injected["error_502"] == 2


async def test_fail_next_can_target_a_method_and_path() -> None:
    faults = Faults()
    faults.fail_next(1, method="GET", path_pattern=r"/lead/$")
    _, http = _stack(faults)
    async with http:
        post = await http.post("/api/v1/lead/")
        get = await http.get("/api/v1/lead/")
        get_again = await http.get("/api/v1/lead/")
    assert (post.status_code, get.status_code, get_again.status_code) == (200, 503, 200)


async def test_drop_before_processing_is_a_connect_error_and_nothing_was_written() -> None:
    faults = Faults()
    faults.drop_next(1, after_processing=False)
    backend, http = _stack(faults)
    async with http:
        with pytest.raises(httpx2.ConnectError):
            await http.post("/api/v1/lead/")
        assert (await http.post("/api/v1/lead/")).status_code == 200
    assert backend.writes == 1
    assert faults.injected["drop_before_processing"] == 1


async def test_drop_after_processing_is_a_read_error_but_the_write_happened() -> None:
    faults = Faults()
    faults.drop_next(1, after_processing=True, method="POST")
    backend, http = _stack(faults)
    async with http:
        with pytest.raises(httpx2.ReadError):
            await http.post("/api/v1/lead/")
    assert backend.writes == 1
    assert faults.injected["drop_after_processing"] == 1


async def test_latency_sleeps_on_the_clock() -> None:
    clock, faults = FakeClock(), Faults()
    faults.latency = 2.5
    _, http = _stack(faults, clock)
    start = clock.now()
    async with http:
        await http.get("/api/v1/lead/")
        await http.get("/api/v1/lead/")
    assert clock.slept == [2.5, 2.5]
    assert clock.now() - start == 5.0
    assert faults.injected["latency"] == 2


async def test_error_rate_is_deterministic_for_a_seed_and_respects_method_filter() -> None:
    async def run(seed: int) -> list[int]:
        faults = Faults(seed=seed)
        faults.error_rate = 0.5
        faults.methods = {"POST"}
        _, http = _stack(faults)
        async with http:
            posts = [(await http.post("/api/v1/lead/")).status_code for _ in range(40)]
            gets = [(await http.get("/api/v1/lead/")).status_code for _ in range(10)]
        assert gets == [200] * 10
        assert faults.injected["error"] == posts.count(503)
        return posts

    first, second = await run(7), await run(7)
    assert first == second
    assert 5 < first.count(503) < 35


async def test_drop_rate_with_path_pattern_and_reset_turns_everything_off() -> None:
    faults = Faults(seed=1)
    faults.drop_rate = 1.0
    faults.drop_after_processing = True
    faults.path_pattern = r"^/api/v1/lead/"
    backend, http = _stack(faults)
    async with http:
        with pytest.raises(httpx2.ReadError):
            await http.post("/api/v1/lead/")
        faults.reset()
        assert (await http.post("/api/v1/lead/")).status_code == 200
    assert backend.writes == 2
    assert sum(faults.injected.values()) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_drop_after_processing_breaks_a_real_connection_on_a_port() -> None:
    faults = Faults()
    backend = Backend()
    port = _free_port()
    config = uvicorn.Config(
        FaultMiddleware(backend.app(), faults, FakeClock()),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        faults.drop_next(1, after_processing=True)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            with pytest.raises(httpx2.TransportError):
                await http.post("/api/v1/lead/")
            assert (await http.post("/api/v1/lead/")).status_code == 200
        assert backend.writes == 2
    finally:
        server.should_exit = True
        await task
