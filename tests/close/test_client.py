"""CloseClient: request shape, JSON handling, organization learning, secrets, pacing."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
from collections.abc import Callable

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import ApiKey, CloseClient, CloseError, ConfigError, RateBudgets, Unauthorized

SECRET = "api_5uP3rS3cr3tK3y"
BASE = "https://close.test/api/v1"
Handler = Callable[[httpx2.Request], httpx2.Response]


def _client(handler: Handler, **options: object) -> CloseClient:
    options.setdefault("clock", FakeClock())
    return CloseClient(SECRET, base_url=BASE, transport=httpx2.MockTransport(handler), **options)  # type: ignore[arg-type]


async def test_requests_go_to_the_base_url_with_basic_auth_json_and_user_agent() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"id": "lead_1"})

    async with _client(handler) as client:
        result = await client.post("/lead/", params={"_fields": "id"}, json={"name": "Acme"})
    assert result == {"id": "lead_1"}
    (request,) = seen
    assert str(request.url) == f"{BASE}/lead/?_fields=id"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
    assert json.loads(request.content) == {"name": "Acme"}
    assert request.headers["User-Agent"].startswith("closeflow/")


@pytest.mark.parametrize(
    "response", [httpx2.Response(200, json={}), httpx2.Response(204), httpx2.Response(200)]
)
async def test_empty_answers_become_an_empty_dict(response: httpx2.Response) -> None:
    async with _client(lambda request: response) as client:
        assert await client.delete("/lead/lead_1/") == {}


async def test_a_non_object_json_answer_is_an_error() -> None:
    async with _client(lambda request: httpx2.Response(200, json=[1, 2])) as client:
        with pytest.raises(CloseError, match="expected a JSON object, got list"):
            await client.get("/lead/")


async def test_me_teaches_the_client_its_organization_and_rekeys_the_budget() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "user_1", "organization_id": "orga_42"})

    async with _client(handler) as client:
        assert client.organization_id is None
        assert client.budget_key == ApiKey(SECRET).fingerprint
        await client.me()
        assert client.organization_id == "orga_42"
        assert client.budget_key == "orga_42"
        await client.get("/lead/")
        assert ("orga_42", "lead:read") in client.budgets.stats()


async def test_me_falls_back_to_the_only_organization_listed() -> None:
    body = {"id": "user_1", "organizations": [{"id": "orga_7", "name": "Acme"}]}
    async with _client(lambda request: httpx2.Response(200, json=body)) as client:
        await client.me()
        assert client.organization_id == "orga_7"


def test_bad_configuration_is_refused_up_front() -> None:
    with pytest.raises(ConfigError):
        CloseClient("   ")
    with pytest.raises(ConfigError):
        CloseClient(SECRET, base_url="api.close.com")
    with pytest.raises(ConfigError):
        CloseClient(SECRET, concurrency=0)


def test_a_client_with_its_own_clock_gets_its_own_budgets() -> None:
    assert CloseClient(SECRET).budgets is RateBudgets.shared()
    assert CloseClient(SECRET, clock=FakeClock()).budgets is not RateBudgets.shared()


async def test_secrets_appear_in_no_repr_error_or_log_record(caplog: pytest.LogCaptureFixture) -> None:
    encoded = base64.b64encode(f"{SECRET}:".encode()).decode()
    caplog.set_level(logging.DEBUG)
    async with _client(lambda request: httpx2.Response(401, json={"error": "Unauthorized"})) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.get("/me/")
        shown = [repr(client), str(client), str(caught.value), repr(caught.value), str(vars(caught.value))]
    assert repr(client) == f"CloseClient(base_url='{BASE}', credentials=ApiKey)"
    logged = [record.getMessage() + str(record.args) for record in caplog.records]
    assert any("GET /me/ -> 401 (attempt 1)" in line for line in logged)
    for text in shown + logged:
        assert SECRET not in text
        assert encoded not in text


async def test_concurrency_bounds_requests_in_flight() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1
        return httpx2.Response(200, json={})

    async with _client(handler, concurrency=3) as client:  # type: ignore[arg-type]
        await asyncio.gather(*(client.get(f"/lead/lead_{n}/") for n in range(12)))
    assert peak == 3


class WindowedServer:
    """A mock Close enforcing ``limit`` requests per fixed window and resource, with a RateLimit header."""

    def __init__(self, clock: FakeClock, limit: int, window: float = 1.0, separator: str = ",") -> None:
        self.clock, self.limit, self.window, self.separator = clock, limit, window, separator
        self.counts: dict[tuple[str, int], int] = {}
        self.statuses: list[int] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        now = self.clock.now()
        index = math.floor(now / self.window)
        reset = round((index + 1) * self.window - now, 3)
        key = (request.url.path.split("/")[3], index)
        used = self.counts[key] = self.counts.get(key, 0) + 1
        remaining = max(0, self.limit - used)
        header = self.separator.join([f"limit={self.limit}", f" remaining={remaining}", f" reset={reset}"])
        status = 429 if used > self.limit else 200
        self.statuses.append(status)
        body: dict[str, object] = {"data": []}
        if status == 429:
            body = {"error": {"rate_reset": reset, "message": "slow down"}}
        return httpx2.Response(status, headers={"RateLimit": header}, json=body)


@pytest.mark.parametrize("separator", [",", ";"])
async def test_pacing_makes_zero_429s_against_a_server_enforcing_its_limit(separator: str) -> None:
    clock = FakeClock()
    server = WindowedServer(clock, limit=10, separator=separator)
    async with _client(server, clock=clock, concurrency=8) as client:
        await asyncio.gather(*(client.get("/lead/") for _ in range(95)))
        (stats,) = client.budgets.stats().values()
    assert server.statuses.count(429) == 0
    assert len(server.statuses) == 95
    assert max(server.counts.values()) <= 10
    assert stats.requests == 95
    assert stats.rate_limited == 0
    assert stats.waits > 0


async def test_groups_are_paced_independently() -> None:
    clock = FakeClock()
    server = WindowedServer(clock, limit=5)
    async with _client(server, clock=clock) as client:
        await asyncio.gather(*(client.get("/lead/") for _ in range(5)))
        before = clock.now()
        await client.get("/contact/")  # its own budget: nothing learned yet, no wait
        assert clock.now() == before
    assert server.statuses == [200] * 6
