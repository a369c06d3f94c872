"""Retries: idempotent requests are resent on 5xx/429/transport errors; a POST only when Close
provably never received it (connect error) or refused it (429). Every wait is on the FakeClock."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, RateLimited, ServerError, TransportError, is_retryable

Handler = Callable[[httpx2.Request], httpx2.Response]


def _scripted(*steps: httpx2.Response | type[httpx2.TransportError]) -> tuple[Handler, list[httpx2.Request]]:
    """A handler answering each call with the next step (the last one repeats)."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        step = steps[min(len(seen), len(steps) - 1)]
        seen.append(request)
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        return step

    return handler, seen


def _client(handler: Handler, clock: FakeClock, max_attempts: int = 5) -> CloseClient:
    return CloseClient(
        "api_test_key",
        base_url="https://close.test/api/v1",
        transport=httpx2.MockTransport(handler),
        clock=clock,
        max_attempts=max_attempts,
    )


OK = httpx2.Response(200, json={"id": "lead_1"})
UNAVAILABLE = httpx2.Response(503, json={"error": "Service unavailable"})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_idempotent_requests_are_retried_on_503(method: str) -> None:
    handler, seen = _scripted(UNAVAILABLE, UNAVAILABLE, OK)
    clock = FakeClock()
    async with _client(handler, clock) as client:
        assert await client._request(method, "/lead/lead_1/") == {"id": "lead_1"}
    assert len(seen) == 3
    assert len(clock.slept) == 2  # two backoffs, both on the fake clock
    assert all(0 < wait <= 15.0 for wait in clock.slept)


async def test_get_is_retried_after_a_read_error() -> None:
    handler, seen = _scripted(httpx2.ReadError, OK)
    async with _client(handler, FakeClock()) as client:
        assert await client.get("/lead/lead_1/") == {"id": "lead_1"}
    assert len(seen) == 2


async def test_get_is_retried_after_a_read_timeout() -> None:
    handler, seen = _scripted(httpx2.ReadTimeout, OK)
    async with _client(handler, FakeClock()) as client:
        await client.get("/lead/lead_1/")
    assert len(seen) == 2


async def test_post_is_not_retried_on_503_because_close_may_have_created_the_record() -> None:
    handler, seen = _scripted(UNAVAILABLE, OK)
    async with _client(handler, FakeClock()) as client:
        with pytest.raises(ServerError):
            await client.post("/lead/", json={"name": "Acme"})
    assert len(seen) == 1


async def test_post_is_not_retried_after_a_read_error() -> None:
    handler, seen = _scripted(httpx2.ReadError, OK)
    async with _client(handler, FakeClock()) as client:
        with pytest.raises(TransportError) as caught:
            await client.post("/lead/", json={"name": "Acme"})
    assert caught.value.reached_server is True
    assert len(seen) == 1


async def test_post_is_retried_after_a_connect_error_because_nothing_was_sent() -> None:
    handler, seen = _scripted(httpx2.ConnectError, OK)
    async with _client(handler, FakeClock()) as client:
        assert await client.post("/lead/", json={"name": "Acme"}) == {"id": "lead_1"}
    assert len(seen) == 2


async def test_post_is_retried_after_a_429() -> None:
    handler, seen = _scripted(httpx2.Response(429, headers={"Retry-After": "2"}), OK)
    async with _client(handler, FakeClock()) as client:
        await client.post("/lead/", json={"name": "Acme"})
    assert len(seen) == 2


async def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    handler, seen = _scripted(UNAVAILABLE)
    async with _client(handler, FakeClock(), max_attempts=3) as client:
        with pytest.raises(ServerError):
            await client.get("/lead/")
    assert len(seen) == 3


async def test_client_errors_are_never_retried() -> None:
    handler, seen = _scripted(httpx2.Response(404, json={"error": "Not found"}))
    async with _client(handler, FakeClock()) as client:
        with pytest.raises(Exception, match="404 GET /lead/lead_x/"):
            await client.get("/lead/lead_x/")
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("response", "expected_wait"),
    [
        (httpx2.Response(429, headers={"Retry-After": "7"}, json={"error": {"rate_reset": 1}}), 7.0),
        (httpx2.Response(429, json={"error": {"rate_reset": 3, "message": "slow down"}}), 3.0),
        (httpx2.Response(429, json={"rate_reset": 2}), 2.0),
    ],
    ids=["retry-after", "body-error-rate-reset", "body-rate-reset"],
)
async def test_429_waits_exactly_what_close_asked_for(
    response: httpx2.Response, expected_wait: float
) -> None:
    handler, seen = _scripted(response, OK)
    clock = FakeClock()
    start = clock.now()
    async with _client(handler, clock) as client:
        await client.get("/lead/")
    assert len(seen) == 2
    assert clock.now() - start == pytest.approx(expected_wait)


async def test_429_waits_for_the_rate_limit_header_reset_when_there_is_no_retry_after() -> None:
    refused = httpx2.Response(429, headers={"RateLimit": "limit=10, remaining=0, reset=3"})
    handler, seen = _scripted(refused, OK)
    clock = FakeClock()
    start = clock.now()
    async with _client(handler, clock) as client:
        await client.get("/lead/")
        (stats,) = client.budgets.stats().values()
    assert len(seen) == 2
    assert clock.now() - start == pytest.approx(3.0, abs=0.01)
    assert stats.rate_limited == 1


async def test_429s_until_attempts_run_out_raise_rate_limited() -> None:
    handler, seen = _scripted(httpx2.Response(429, headers={"Retry-After": "1"}))
    async with _client(handler, FakeClock(), max_attempts=4) as client:
        with pytest.raises(RateLimited) as caught:
            await client.get("/lead/")
    assert caught.value.retry_after == 1.0
    assert len(seen) == 4


def test_retry_rules_by_method_and_failure() -> None:
    request = httpx2.Request("POST", "https://close.test/")
    connect = TransportError.from_exception("POST", "/", httpx2.ConnectTimeout("x", request=request))
    write = TransportError.from_exception("POST", "/", httpx2.WriteError("x", request=request))
    server = ServerError("boom", status=500)
    assert is_retryable("POST", connect)
    assert not is_retryable("POST", write)
    assert is_retryable("PUT", write)
    assert not is_retryable("POST", server)
    assert is_retryable("DELETE", server)
    assert is_retryable("POST", RateLimited("slow", status=429))
    assert not is_retryable("GET", ValueError("not a Close failure"))
