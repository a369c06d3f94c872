"""Rate budget: header parsing in every form Close has used, pacing, probes after reset, 429s."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeflow._clock import FakeClock
from closeflow.close import RateBudget, RateBudgets, RateLimitState, endpoint_group, parse_rate_limit
from closeflow.close._ratelimit import WINDOW_MARGIN, seconds_until_retry


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit": "limit=100, remaining=50, reset=5"},
        {"ratelimit": "limit=100; remaining=50; reset=5"},
        {"RateLimit-Limit": "100", "RateLimit-Remaining": "50", "RateLimit-Reset": "5"},
        {"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Remaining": "50", "X-Rate-Limit-Reset": "5"},
    ],
    ids=["comma", "semicolon", "ratelimit-star", "x-rate-limit"],
)
def test_every_header_form_gives_the_same_state(headers: dict[str, str]) -> None:
    assert parse_rate_limit(httpx2.Headers(headers)) == RateLimitState(100, 50, 5)


def test_decimal_reset_and_reordered_keys_are_read() -> None:
    assert parse_rate_limit({"RateLimit": "reset=0.25, limit=40, remaining=3"}) == RateLimitState(40, 3, 0.25)


def test_combined_header_wins_over_separate_ones() -> None:
    headers = {"RateLimit": "limit=10, remaining=1, reset=2", "X-Rate-Limit-Remaining": "9"}
    assert parse_rate_limit(headers) == RateLimitState(10, 1, 2)


@pytest.mark.parametrize(
    "headers",
    [{}, {"RateLimit": "limit=10, remaining=3"}, {"RateLimit-Limit": "ten", "RateLimit-Remaining": "1"}],
    ids=["none", "incomplete", "garbage"],
)
def test_no_usable_header_means_no_state(headers: dict[str, str]) -> None:
    assert parse_rate_limit(headers) is None


@given(st.text(max_size=60))
def test_parsing_never_raises_on_arbitrary_header_text(text: str) -> None:
    parse_rate_limit({"RateLimit": text, "RateLimit-Reset": text})


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("GET", "/lead/", "lead:read"),
        ("GET", "/lead/lead_abc/", "lead:read"),
        ("PUT", "/lead/lead_abc/", "lead:write"),
        ("POST", "/activity/note/", "activity:write"),
        ("POST", "/data/search/", "data_search"),
        ("GET", "/api/v1/contact/?lead_id=x", "contact:read"),
    ],
)
def test_endpoint_groups(method: str, path: str, group: str) -> None:
    assert endpoint_group(method, path) == group


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "4"}, {"error": {"rate_reset": 9}}, 4.0),
        ({"RateLimit": "limit=5, remaining=0, reset=2.5"}, {"rate_reset": 9}, 2.5),
        ({}, {"error": {"rate_reset": 1.5, "message": "x"}}, 1.5),
        ({}, {"rate_reset": 6}, 6.0),
        ({}, {"error": "Too many"}, None),
    ],
    ids=["retry-after", "header-reset", "body-error-rate-reset", "body-top-level", "nothing"],
)
def test_429_wait_comes_from_retry_after_then_header_then_body(
    headers: dict[str, str], body: object, expected: float | None
) -> None:
    assert seconds_until_retry(httpx2.Response(429, headers=headers, json=body)) == expected


def _headers(limit: int, remaining: int, reset: float) -> httpx2.Response:
    return httpx2.Response(200, headers={"RateLimit": f"limit={limit}, remaining={remaining}, reset={reset}"})


async def test_nothing_learned_lets_requests_through_without_waiting() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    for _ in range(20):
        await budget.acquire()
    assert clock.slept == []
    assert budget.in_flight == 20
    assert budget.stats.requests == 20
    assert budget.stats.waits == 0


async def test_budget_spends_remaining_minus_in_flight_then_waits_for_the_window() -> None:
    clock = FakeClock()
    start = clock.now()
    budget = RateBudget(clock=clock)
    budget.observe(_headers(10, 2, 1.0), await budget.acquire())
    first = await budget.acquire()
    second = await budget.acquire()
    assert clock.now() == start  # two left, two sent, no wait
    third = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0)
    assert clock.now() == pytest.approx(start + 1.0 + WINDOW_MARGIN)  # waited out the window
    assert (await third).probe
    assert budget.stats.waits == 1
    assert budget.stats.seconds_waited == pytest.approx(1.0 + WINDOW_MARGIN)
    assert not first.probe and not second.probe


async def test_exactly_one_probe_goes_first_after_the_window_resets() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.observe(_headers(10, 0, 0.5), await budget.acquire())
    clock.advance(1.0)
    tasks = [asyncio.create_task(budget.acquire()) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    done = [task for task in tasks if task.done()]
    assert len(done) == 1
    probe = done[0].result()
    assert probe.probe
    budget.observe(_headers(10, 9, 1.0), probe)
    permits = await asyncio.gather(*tasks)
    assert sum(permit.probe for permit in permits) == 1
    assert budget.in_flight == 4
    assert budget.stats.waits == 4


async def test_a_probe_without_headers_stops_pacing_instead_of_serialising() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.observe(_headers(10, 0, 0.5), await budget.acquire())
    clock.advance(1.0)
    probe = await budget.acquire()
    waiter = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    budget.observe(httpx2.Response(200), probe)
    await waiter
    assert budget.limit is None


async def test_a_late_response_from_an_old_window_does_not_refill_the_new_one() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.observe(_headers(10, 5, 1.0), await budget.acquire())
    old = await budget.acquire()
    clock.advance(2.0)
    probe = await budget.acquire()
    budget.observe(_headers(10, 1, 1.0), probe)
    budget.observe(_headers(10, 8, 0.1), old)  # sent in the previous window
    assert budget.remaining == 1


async def test_responses_overtaking_each_other_keep_the_lowest_remaining() -> None:
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    first, second = await budget.acquire(), await budget.acquire()
    budget.observe(_headers(10, 3, 1.0), second)
    budget.observe(_headers(10, 4, 1.0), first)
    assert budget.remaining == 3


async def test_429_blocks_every_request_until_the_named_reset() -> None:
    clock = FakeClock()
    start = clock.now()
    budget = RateBudget(clock=clock)
    budget.observe(httpx2.Response(429), await budget.acquire())
    budget.on_429(4.0)
    await budget.acquire()
    assert clock.now() == pytest.approx(start + 4.0)
    assert budget.stats.rate_limited == 1


async def test_429_without_any_hint_waits_a_default_second() -> None:
    clock = FakeClock()
    start = clock.now()
    budget = RateBudget(clock=clock)
    budget.on_429(None)
    await budget.acquire()
    assert clock.now() == pytest.approx(start + 1.0)


async def test_a_failed_request_releases_its_place_in_flight() -> None:
    budget = RateBudget(clock=FakeClock())
    permit = await budget.acquire()
    budget.observe(None, permit)
    assert budget.in_flight == 0


def test_registry_hands_out_one_budget_per_organization_and_group() -> None:
    budgets = RateBudgets(clock=FakeClock())
    assert budgets.budget("orga_1", "lead:read") is budgets.budget("orga_1", "lead:read")
    assert budgets.budget("orga_1", "lead:read") is not budgets.budget("orga_1", "lead:write")
    assert budgets.budget("orga_1", "lead:read") is not budgets.budget("orga_2", "lead:read")
    assert set(budgets.stats()) == {
        ("orga_1", "lead:read"),
        ("orga_1", "lead:write"),
        ("orga_2", "lead:read"),
    }
    assert RateBudgets.shared() is RateBudgets.shared()


async def test_snapshots_report_what_each_group_has_left() -> None:
    budgets = RateBudgets(clock=FakeClock())
    budget = budgets.budget("orga_1", "lead:read")
    budget.observe(_headers(40, 12, 0.5), await budget.acquire())
    (snapshot,) = budgets.snapshots("orga_1")
    assert snapshot.as_dict() == {
        "group": "lead:read",
        "limit": 40,
        "remaining": 12,
        "reset_in": pytest.approx(0.5 + WINDOW_MARGIN),
        "requests": 1,
        "waits": 0,
        "seconds_waited": 0.0,
        "throttled": 0,
    }
