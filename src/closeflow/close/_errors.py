"""Typed errors that say which side failed, with Close's own message.

Close answers errors with JSON in a few shapes (``{"error": "..."}``, ``{"error": {"message": ...}}``,
``{"errors": [...], "field-errors": {...}}``). Each error carries the status, method and path (never
the query string, which may hold filters with personal data) and Close's message; never headers,
so never a credential.
"""

from __future__ import annotations

from typing import Any

import httpx2

from closeflow.close._ratelimit import seconds_until_retry

# Close's messages are short; a proxy's HTML error page is not, and is useless in a log line.
_MAX_MESSAGE = 500


class CloseError(Exception):
    """A request to Close failed, or the client was asked to do something it cannot."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = _path_only(path) if path is not None else None
        self.request_id = request_id

    def __str__(self) -> str:
        where = " ".join(str(part) for part in (self.status, self.method, self.path) if part is not None)
        return f"{where}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @classmethod
    def from_response(cls, method: str, path: str, response: httpx2.Response) -> CloseError:
        """The typed error for a non-2xx response, carrying Close's own message."""
        status = response.status_code
        body = _json_body(response)
        field_errors = _field_errors(body)
        errors = _errors(body)
        message = _message(body, field_errors, errors) or response.reason_phrase or "error"
        context: dict[str, Any] = {
            "status": status,
            "method": method.upper(),
            "path": path,
            "request_id": response.headers.get("x-request-id") or response.headers.get("close-request-id"),
        }
        if status == 400:
            return ValidationError(message, field_errors=field_errors, errors=errors, **context)
        if status == 401:
            return Unauthorized(message, **context)
        if status == 403:
            return Forbidden(message, **context)
        if status == 404:
            return NotFound(message, **context)
        if status == 429:
            return RateLimited(message, retry_after=seconds_until_retry(response), **context)
        if status >= 500:
            return ServerError(message, **context)
        return CloseError(message, **context)


class ValidationError(CloseError):
    """400: Close refused the request's content; ``field_errors`` maps field → Close's message."""

    def __init__(
        self,
        message: str,
        *,
        field_errors: dict[str, str] | None = None,
        errors: list[str] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.field_errors: dict[str, str] = field_errors or {}
        self.errors: list[str] = errors or []


class Unauthorized(CloseError):
    """401: the API key or OAuth token is missing, wrong, revoked or expired."""


class Forbidden(CloseError):
    """403: the credentials' user may not do this (role, plan or OAuth-only endpoint)."""


class NotFound(CloseError):
    """404: no such path or object (or not visible to these credentials)."""


class RateLimited(CloseError):
    """429: the endpoint group's window is spent; ``retry_after`` is seconds until it resets."""

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class ServerError(CloseError):
    """5xx: Close (or something in front of it) failed."""


class TransportError(CloseError):
    """No response: the connection failed, timed out, or was dropped.

    ``reached_server`` is False when the request provably never left (connect failures, pool
    timeouts: safe to resend anything), True when it was sent in full but the answer was lost
    (it may have been applied), None when it is unknown (a write failed halfway).
    """

    def __init__(self, message: str, *, reached_server: bool | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.reached_server = reached_server

    @classmethod
    def from_exception(cls, method: str, path: str, exc: httpx2.TransportError) -> TransportError:
        if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
            reached: bool | None = False
        elif isinstance(exc, httpx2.ReadError | httpx2.ReadTimeout | httpx2.RemoteProtocolError):
            reached = True
        else:
            reached = None
        # The exception's own text can quote the URL (with its query string); name the kind only.
        return cls(
            f"{type(exc).__name__} (no response)",
            reached_server=reached,
            method=method.upper(),
            path=path,
        )


class ConfigError(CloseError):
    """Local misconfiguration (missing credentials, bad base URL, bad argument): fix, don't retry."""


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def _json_body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _field_errors(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {}
    raw = body.get("field-errors")
    flat: dict[str, str] = {}
    if isinstance(raw, dict):
        _flatten("", raw, flat)
    return flat


def _flatten(prefix: str, value: Any, into: dict[str, str]) -> None:
    # Nested objects (addresses, contacts on a lead) come back as nested field-errors.
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    elif isinstance(value, list):
        into[prefix] = "; ".join(str(item) for item in value)
    else:
        into[prefix] = str(value)


def _errors(body: Any) -> list[str]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(item) for item in body["errors"]]
    return []


def _message(body: Any, field_errors: dict[str, str], errors: list[str]) -> str:
    parts = [f"{name}: {text}" for name, text in field_errors.items()] + errors
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            parts.append(error["message"])
        elif isinstance(error, str):
            parts.append(error)
    message = "; ".join(parts)
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
