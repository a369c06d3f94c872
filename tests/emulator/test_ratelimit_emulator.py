"""The emulator's rate limits: fixed windows per key and per organization, per endpoint group (§10, §12.7)."""

from __future__ import annotations

import pytest

from closeflow._clock import FakeClock
from closeflow.emulator._config import RateLimitConfig
from closeflow.emulator._ratelimit import RateLimiter, endpoint_group


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("GET", "/lead/", "lead:read"),
        ("GET", "/lead/lead_x/", "lead:read"),
        ("HEAD", "/lead", "lead:read"),
        ("POST", "/lead/", "lead:write"),
        ("PUT", "/lead/lead_x/", "lead:write"),
        ("delete", "/contact/cont_x/", "contact:write"),
        ("POST", "/activity/note/", "activity:write"),
        ("GET", "/custom_fields/lead/", "custom_field:read"),
        ("POST", "/data/search/", "data_search"),
        ("GET", "/", "root:read"),
    ],
)
def test_endpoint_groups_split_reads_and_writes_per_resource(method: str, path: str, group: str) -> None:
    assert endpoint_group(method, path) == group


def _limiter(clock: FakeClock, **config: object) -> RateLimiter:
    return RateLimiter(RateLimitConfig(**config), clock)  # type: ignore[arg-type]


def test_no_config_allows_everything_without_headers() -> None:
    limiter = RateLimiter(None, FakeClock())
    verdicts = [limiter.admit("key", "orga_1", "GET", "/lead/") for _ in range(1000)]
    assert all(v.allowed and v.headers == {} and v.body is None for v in verdicts)
    assert verdicts[0].group == "lead:read"


def test_key_is_refused_after_its_limit_until_the_window_resets() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, default=3, window=10.0)
    verdicts = [limiter.admit("key", "orga_1", "GET", "/lead/") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.headers["RateLimit-Remaining"] for v in verdicts] == ["2", "1", "0", "0"]
    clock.advance(9.5)
    assert not limiter.admit("key", "orga_1", "GET", "/lead/").allowed
    clock.advance(0.5)
    fresh = limiter.admit("key", "orga_1", "GET", "/lead/")
    assert fresh.allowed
    assert fresh.headers["RateLimit-Remaining"] == "2"


def test_groups_have_separate_budgets_and_per_group_limits() -> None:
    limiter = _limiter(FakeClock(), default=2, per_group={"data_search": 1})
    assert [limiter.admit("k", "o", "POST", "/data/search/").allowed for _ in range(2)] == [True, False]
    assert [limiter.admit("k", "o", "GET", "/lead/").allowed for _ in range(3)] == [True, True, False]
    assert limiter.admit("k", "o", "POST", "/lead/").allowed


def test_org_limit_is_a_multiple_of_the_key_limit_across_identities() -> None:
    limiter = _limiter(FakeClock(), default=2, org_multiplier=3)
    allowed = [
        limiter.admit(key, "orga_1", "GET", "/lead/").allowed for key in ["a", "a", "b", "b", "c", "c"]
    ]
    assert allowed == [True] * 6
    assert not limiter.admit("d", "orga_1", "GET", "/lead/").allowed
    assert limiter.admit("d", "orga_2", "GET", "/lead/").allowed


def test_headers_use_commas_by_default_with_integer_reset() -> None:
    clock = FakeClock(start=1000.0)
    limiter = _limiter(clock, default=5, window=2.0)
    clock.advance(0.4)
    verdict = limiter.admit("k", "o", "GET", "/lead/")
    assert verdict.headers == {
        "RateLimit": "limit=5, remaining=4, reset=2",
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "2",
        "X-Rate-Limit-Limit": "5",
        "X-Rate-Limit-Remaining": "4",
        "X-Rate-Limit-Reset": "2",
    }


def test_semicolon_header_style_and_reset_never_below_one() -> None:
    clock = FakeClock(start=1000.0)
    limiter = _limiter(clock, default=5, window=1.0, header_style="semicolon")
    clock.advance(0.999)
    verdict = limiter.admit("k", "o", "GET", "/lead/")
    assert verdict.headers["RateLimit"] == "limit=5; remaining=4; reset=1"


def test_refusal_has_retry_after_and_a_body_every_client_generation_reads() -> None:
    clock = FakeClock(start=1005.0)  # windows are aligned to multiples of 15 s on the clock
    limiter = _limiter(clock, default=1, window=15.0)
    limiter.admit("k", "o", "GET", "/lead/")
    clock.advance(2.5)
    verdict = limiter.admit("k", "o", "GET", "/lead/")
    assert not verdict.allowed
    assert verdict.headers["Retry-After"] == "13"
    assert verdict.headers["RateLimit"] == "limit=1, remaining=0, reset=13"
    assert verdict.headers["X-Rate-Limit-Remaining"] == "0"
    assert verdict.body == {
        "error": {
            "rate_reset": 13,
            "message": "API call count exceeded for this 15 second window",
            "rate_limit": 1,
            "rate_window": 15,
        },
        "rate_reset": 13,
    }


def test_identity_is_stored_hashed_never_raw() -> None:
    limiter = _limiter(FakeClock(), default=5)
    secret = "api_SuperSecretKey123"
    limiter.admit(secret, "orga_1", "GET", "/lead/")
    assert secret not in repr(vars(limiter))
