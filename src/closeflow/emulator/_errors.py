"""The error bodies Close answers with (§11), raised from anywhere in a handler.

Handlers raise ``ApiError``; the app turns it into JSON. Validation failures use Close's
``{"errors": [...], "field-errors": {...}}`` shape, other failures ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class FieldErrors(ApiError):
    """A 400 naming the fields at fault; more fields can be added before raising."""

    def __init__(self, field_errors: dict[str, str] | None = None, errors: list[str] | None = None) -> None:
        self.field_errors: dict[str, str] = dict(field_errors or {})
        self.errors: list[str] = list(errors or [])
        super().__init__(400, {"errors": self.errors, "field-errors": self.field_errors})


def field_error(field: str, message: str) -> FieldErrors:
    return FieldErrors({field: message})


def not_found(what: str = "Not found") -> ApiError:
    # Close's exact 404 text is unconfirmed (§13.3); clients only rely on the status and JSON.
    return ApiError(404, {"error": what})


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"error": message})


INVALID_JSON = "The request contains invalid JSON."
UNAUTHORIZED = {"error": "Unauthorized"}
