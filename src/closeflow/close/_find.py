"""Find leads or contacts with a readable filter: the search behind `closeflow leads search`.

Joins the pieces a user should not have to: the ``--where`` parser, custom fields by name, lead
status labels, Close's 10k-per-walk cap (sorting by ``date_updated`` streams any number of
records through the keyset walk; other sorts stop at Close's cap and say so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from closeflow.close._client import CloseClient
from closeflow.close._custom_fields import CustomFieldRegistry, value_key
from closeflow.close._filter_compile import compile_query, lead_statuses, search_body
from closeflow.close._filters import Filter, FilterError
from closeflow.close._pagination import SEARCHABLE
from closeflow.close._where import parse_where

SEARCH_WALK_CAP = 10_000  # Close stops a /data/search/ walk here (§3.2)


async def find(
    client: CloseClient,
    object_type: str,
    *,
    where: Filter | str | None = None,
    fields: Sequence[str] | None = None,
    sort: str | None = None,
    limit: int | None = None,
    registry: CustomFieldRegistry | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Records of ``object_type`` matching ``where``, with ``fields`` (custom ones by name).

    Each record is a dict of the requested fields plus ``id``; custom values come back under
    ``custom.<Field Name>`` keys. Without ``sort`` (or with ``date_updated``) the walk is a
    keyset walk and has no size limit.
    """
    if object_type not in SEARCHABLE:
        raise FilterError(f"search works on {' and '.join(SEARCHABLE)}s, not {object_type!r}")
    if limit is not None and limit < 1:
        raise FilterError(f"limit must be at least 1, not {limit}")
    registry = registry or CustomFieldRegistry(client)
    condition = parse_where(where) if isinstance(where, str) else where
    statuses = await lead_statuses(client) if object_type == "lead" else None
    query = await compile_query(condition, object_type, registry, statuses)
    wanted = [await _api_field(registry, object_type, name) for name in fields or ("display_name",)]
    wanted = ["id", *(name for name in wanted if name != "id")]

    if sort in (None, "date_updated"):
        records = client.keyset(object_type, query=query, fields=wanted)
    else:
        if limit is None or limit > SEARCH_WALK_CAP:
            raise FilterError(
                f"Close returns at most {SEARCH_WALK_CAP:,} records per search when sorting by "
                f'"{sort}"; pass a limit up to {SEARCH_WALK_CAP:,}, '
                "or sort by date_updated to stream everything"
            )
        body = search_body(query, object_type, fields=wanted, sort=sort, limit=min(limit, 200))
        records = client.search(body)

    returned = 0
    async for record in records:
        yield _present(registry, object_type, record, wanted)
        returned += 1
        if limit is not None and returned >= limit:
            return


async def _api_field(registry: CustomFieldRegistry, object_type: str, name: str) -> str:
    """``custom.Tier`` / ``custom."Lead Source"`` / ``custom.cf_…`` → Close's ``custom.cf_…`` key."""
    if not name.startswith("custom."):
        return name
    label = name.removeprefix("custom.").strip('"')
    return value_key(await registry.resolve(object_type, label))


def _present(
    registry: CustomFieldRegistry, object_type: str, record: dict[str, Any], wanted: list[str]
) -> dict[str, Any]:
    plain = {key: record.get(key) for key in wanted if not key.startswith("custom.")}
    named = registry.by_name(
        object_type, {key: record.get(key) for key in wanted if key.startswith("custom.")}
    )
    plain.update({f"custom.{name}": value for name, value in named.items()})
    return plain
