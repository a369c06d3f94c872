"""ApiKey: HTTP Basic with the key as username and an empty password (close-api.md §1.4)."""

from __future__ import annotations

import logging

import httpx2
import pytest

from closeflow.close._auth import ApiKey, Credentials, redact

KEY = "api_5ecretKeyThatMustNeverLeak"


async def test_api_key_is_sent_as_basic_auth_username_with_empty_password() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["Authorization"])
        return httpx2.Response(200, json={"id": "user_1"})

    auth = ApiKey("yourapikey").httpx_auth()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=auth) as http:
        await http.get("https://api.close.com/api/v1/me/")

    # The example from Close's docs: `curl -u yourapikey:`.
    assert seen == ["Basic eW91cmFwaWtleTo="]


def test_api_key_repr_and_str_show_at_most_the_first_four_characters() -> None:
    key = ApiKey(KEY)
    assert repr(key) == "ApiKey(api_…****)"
    assert str(key) == "ApiKey(api_…****)"
    assert KEY[4:] not in f"{key!r} {key!s} {[key]} { ({'k': key}) }"


def test_api_key_does_not_leak_through_logging(caplog: pytest.LogCaptureFixture) -> None:
    key = ApiKey(KEY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("closeflow.test").info("connecting with %s (%r)", key, key)
    assert KEY not in caplog.text
    assert "api_…****" in caplog.text


def test_api_key_fingerprint_is_stable_non_secret_and_distinguishes_keys() -> None:
    fingerprint = ApiKey(KEY).fingerprint
    assert fingerprint == ApiKey(KEY).fingerprint
    assert fingerprint.startswith("key:")
    assert len(fingerprint) == len("key:") + 16
    assert KEY not in fingerprint
    assert fingerprint != ApiKey(KEY + "x").fingerprint


def test_api_key_knows_no_organization_and_satisfies_the_credentials_protocol() -> None:
    key = ApiKey(KEY)
    assert key.organization_id is None
    assert isinstance(key, Credentials)


def test_api_key_strips_whitespace_and_refuses_an_empty_key() -> None:
    assert ApiKey(f"  {KEY}\n").key == KEY
    with pytest.raises(ValueError, match="empty"):
        ApiKey("   ")


def test_api_keys_compare_equal_by_value_without_exposing_it() -> None:
    assert ApiKey(KEY) == ApiKey(KEY)
    assert ApiKey(KEY) != ApiKey("api_other")
    assert len({ApiKey(KEY), ApiKey(KEY)}) == 1


def test_redaction_never_shows_more_than_a_third_of_a_short_secret() -> None:
    assert redact("abcdef") == "ab…****"
    assert redact("abc") == "a…****"
    assert redact("ab") == "…****"
    assert redact("") == "''"
    assert redact(None) == "None"
