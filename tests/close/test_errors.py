"""Typed errors carry Close's own message, status, method and path, and never a secret."""

from __future__ import annotations

import httpx2
import pytest

from closeflow.close import (
    CloseError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationError,
)


def _response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx2.Response:
    if body is None:
        return httpx2.Response(status, headers=headers)
    return httpx2.Response(status, json=body, headers=headers)


def test_validation_error_names_the_field_and_closes_message() -> None:
    error = CloseError.from_response(
        "post", "/lead/", _response(400, {"errors": [], "field-errors": {"custom.cf_x": "Invalid choice"}})
    )
    assert isinstance(error, ValidationError)
    assert error.field_errors == {"custom.cf_x": "Invalid choice"}
    assert error.errors == []
    assert str(error) == "400 POST /lead/: custom.cf_x: Invalid choice"


def test_validation_error_keeps_non_field_errors_and_flattens_nested_field_errors() -> None:
    body = {"errors": ["Template not shared"], "field-errors": {"addresses": {"0": {"city": "Too long"}}}}
    error = CloseError.from_response("POST", "/activity/email/", _response(400, body))
    assert isinstance(error, ValidationError)
    assert error.field_errors == {"addresses.0.city": "Too long"}
    assert error.errors == ["Template not shared"]
    assert error.message == "addresses.0.city: Too long; Template not shared"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, Unauthorized), (403, Forbidden), (404, NotFound), (500, ServerError), (503, ServerError)],
)
def test_each_status_has_its_own_error_type(status: int, kind: type[CloseError]) -> None:
    error = CloseError.from_response("GET", "/lead/lead_1/", _response(status, {"error": "Nope"}))
    assert type(error) is kind
    assert error.status == status
    assert error.message == "Nope"


def test_error_message_read_from_an_error_object() -> None:
    body = {"error": {"rate_reset": 3, "message": "API call count exceeded", "rate_limit": 10}}
    error = CloseError.from_response("GET", "/lead/", _response(429, body))
    assert isinstance(error, RateLimited)
    assert error.message == "API call count exceeded"
    assert error.retry_after == 3.0


def test_rate_limited_prefers_retry_after_header() -> None:
    error = CloseError.from_response(
        "GET", "/lead/", _response(429, {"error": {"rate_reset": 3}}, {"Retry-After": "5"})
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == 5.0


def test_path_never_carries_the_query_string() -> None:
    error = CloseError.from_response("GET", "/lead/?query=email:ceo@acme.com", _response(404, {"error": "x"}))
    assert error.path == "/lead/"
    assert "acme" not in str(error)


def test_non_json_error_body_falls_back_to_the_reason_phrase() -> None:
    error = CloseError.from_response("GET", "/lead/", httpx2.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(error, ServerError)
    assert str(error) == "502 GET /lead/: Bad Gateway"


def test_request_id_is_kept_when_close_sends_one() -> None:
    error = CloseError.from_response(
        "GET", "/lead/", _response(500, {"error": "x"}, {"X-Request-Id": "req_1"})
    )
    assert error.request_id == "req_1"


def test_transport_error_says_whether_the_request_reached_close() -> None:
    request = httpx2.Request("POST", "https://api.close.com/api/v1/lead/?api_key=secret")
    connect = TransportError.from_exception("POST", "/lead/", httpx2.ConnectError("refused", request=request))
    read = TransportError.from_exception("POST", "/lead/", httpx2.ReadError("reset", request=request))
    write = TransportError.from_exception("POST", "/lead/", httpx2.WriteError("broken", request=request))
    assert (connect.reached_server, read.reached_server, write.reached_server) == (False, True, None)
    assert str(connect) == "POST /lead/: ConnectError (no response)"
    assert "secret" not in repr(connect) + repr(read) + repr(write)


def test_errors_never_show_the_authorization_header() -> None:
    request = httpx2.Request("GET", "https://x/lead/", headers={"Authorization": "Basic c2VjcmV0Og=="})
    response = httpx2.Response(401, json={"error": "Unauthorized"}, request=request)
    error = CloseError.from_response("GET", "/lead/", response)
    assert isinstance(error, Unauthorized)
    assert "c2VjcmV0" not in str(error) + repr(error) + str(vars(error))
