"""Parsing the scalar values users type (numbers, dates, datetimes) the same way everywhere.

Custom-field coercion, filter compilation and keyset positions all read user input; each wraps
the ``ValueError`` raised here in its own error type, which names the field or condition.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_INTEGER = re.compile(r"[+-]?\d+")


def parse_number(value: Any) -> int | float:
    """An int or a finite float from a number or numeric text; ``ValueError`` says why not."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise ValueError("not a number") from None
    else:
        raise ValueError("expected a number")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return int(number) if isinstance(value, Decimal) and number.is_integer() else number


def parse_moment(value: Any) -> date | datetime:
    """A date (``2026-01-31``) or datetime (any ISO 8601 form, ``Z`` included) from text or as is."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError("expected an ISO 8601 date or datetime such as 2026-01-31 or 2026-01-31T09:00:00Z")


def utc_text(moment: datetime) -> str:
    """Close's timestamp form: UTC, microseconds, ``+00:00`` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
