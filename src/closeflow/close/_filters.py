"""Filters over leads and contacts: the model (close-api.md §3.5).

A filter is a small tree of ``Condition``s joined by ``And`` / ``Or`` / ``Not``, written in the
user's words: standard field names, status labels, user emails, custom fields by name
(``custom.Lead Source``) or id (``custom.cf_…``). ``_filter_compile`` turns it into Close's
Advanced Filtering JSON; ``_where`` reads and writes it as text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ._errors import ConfigError

__all__ = [
    "OPERATORS",
    "And",
    "Condition",
    "Filter",
    "FilterError",
    "Not",
    "Op",
    "Or",
]

Op = Literal["=", "!=", "<", "<=", ">", ">=", "contains", "starts_with", "in", "exists", "missing"]
OPERATORS: tuple[Op, ...] = get_args(Op)
Scalar = str | int | float | bool | None
Value = Scalar | tuple[Scalar, ...]


class FilterError(ConfigError, ValueError):
    """A filter that cannot become a Close query: unknown field, operator or value."""


@dataclass(frozen=True)
class Condition:
    """``field op value``; ``field`` is a standard name, ``address.city`` or ``custom.<name or id>``."""

    field: str
    op: Op
    value: Value = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise FilterError(f'unknown operator "{self.op}" (use one of {", ".join(OPERATORS)})')
        value: Any = self.value
        if self.op == "in":
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                raise FilterError(f'"{self.field} in" needs a non-empty list of values')
            object.__setattr__(self, "value", tuple(value))
        elif self.op in ("exists", "missing"):
            if value is not None:
                raise FilterError(f'"{self.field} {self.op}" takes no value')
        elif isinstance(value, list | tuple):
            raise FilterError(f'"{self.field} {self.op}" takes one value; use "in" for a list')
        items = self.value if isinstance(self.value, tuple) else (self.value,)
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise FilterError(f'"{self.field} {self.op}" needs a finite number, not {item}')


@dataclass(frozen=True, init=False)
class And:
    items: tuple[Filter, ...]

    def __init__(self, items: Iterable[Filter]) -> None:
        object.__setattr__(self, "items", _items("and", items))


@dataclass(frozen=True, init=False)
class Or:
    items: tuple[Filter, ...]

    def __init__(self, items: Iterable[Filter]) -> None:
        object.__setattr__(self, "items", _items("or", items))


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Condition | And | Or | Not


def _items(kind: str, items: Iterable[Filter]) -> tuple[Filter, ...]:
    found = tuple(items)
    if not found:
        raise FilterError(f'"{kind}" needs at least one filter')
    return found


# -- the fields a filter may name ---------------------------------------------------------------
