"""Offset pagination and ``_fields`` as every Close list endpoint applies them (§2.3, §3.1).

``_limit`` above the resource's maximum is a 400 field error (never a silently short page:
offset clients would skip records); ``_skip`` above the cap is the ``max_skip = N`` error that
connectors parse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from closeflow.emulator._config import EmulatorConfig
from closeflow.emulator._errors import bad_request, field_error

T = TypeVar("T")
DEFAULT_LIMIT = 100


def page_bounds(params: Mapping[str, str], config: EmulatorConfig, resource: str) -> tuple[int, int]:
    """``(skip, limit)`` from the query, validated against the resource's caps."""
    limit = _non_negative_int(params, "_limit", DEFAULT_LIMIT)
    skip = _non_negative_int(params, "_skip", 0)
    maximum = config.max_limit(resource)
    if limit > maximum:
        raise field_error("_limit", f"Input should be less than or equal to {maximum}")
    cap = config.skip_cap(resource)
    if skip > cap:
        raise bad_request(
            f"The skip you set is larger than the maximum skip for this resource (max_skip = {cap}).\n"
            "Please refine your search query."
        )
    return skip, limit


def _non_negative_int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_error(
            name, "Input should be a valid integer, unable to parse string as an integer"
        ) from None
    if value < 0:
        raise field_error(name, "Input should be greater than or equal to 0")
    return value


def requested_fields(params: Mapping[str, str]) -> list[str] | None:
    raw = params.get("_fields")
    if not raw:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def project(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the requested keys; ``custom`` selects every ``custom.*`` key too (§1.3)."""
    if fields is None or "_all" in fields:
        return record
    out = {key: record[key] for key in fields if key in record}
    if "custom" in fields:
        out.update({key: value for key, value in record.items() if key.startswith("custom.")})
    return out


def page(
    items: Sequence[T],
    skip: int,
    limit: int,
    render: Callable[[T], dict[str, Any]],
    fields: list[str] | None,
    *,
    total: bool = False,
) -> dict[str, Any]:
    window = items[skip : skip + limit]
    body: dict[str, Any] = {
        "data": [project(render(item), fields) for item in window],
        "has_more": skip + limit < len(items),
    }
    if total:
        body["total_results"] = len(items)
    return body
