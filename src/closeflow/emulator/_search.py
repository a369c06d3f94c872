"""``POST /data/search/`` — Close's Advanced Filtering API (§3.5, §3.2).

A walk (first page plus its cursor pages) works on a snapshot taken when the walk starts: the
matches in result order, each as its values were then (a shallow copy), so a 100k-lead walk scans
the org once, not once per page, and a record edited mid-walk comes back with the values it was
sorted by — as an Elasticsearch scroll does. Records deleted since the walk started are left out. Each page
issues a fresh cursor that expires ``cursor_ttl`` seconds later, and a walk stops after
``max_results`` objects, as Close does (30 s, 10,000).

Choices where Close's docs are silent: ``_limit`` defaults to 100 (the OAS default for lists) and
refuses more than 200; a query without an ``object_type`` node returns leads; records missing a
sort field sort first ascending (last descending); ties always break on ``id`` ascending.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from closeflow._clock import Clock

from ._search_conditions import SearchError, as_moment
from ._search_query import QueryCompiler, SearchSource, field_value, returned_types

__all__ = ["SearchEngine", "SearchError", "SearchSource"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 200


@dataclass
class _Walk:
    """The snapshot a cursor walks: (object_type, record as it was) pairs in result order."""

    hits: list[tuple[str, dict[str, Any]]]
    end: int  # never page past this (results_limit / max_results)
    total: int  # every match, for include_counts
    fields: dict[str, list[str]] | None
    limit: int


@dataclass
class _Cursor:
    walk: _Walk
    offset: int
    issued_at: float


def _sort_key(value: Any) -> tuple[int, float, str]:
    # One field holds one kind of value; the rank keeps None apart and mixed kinds comparable.
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, bool | int | float):
        return (1, float(value), "")
    moment = as_moment(value)
    if moment is not None:
        return (1, moment.timestamp(), "")
    return (2, 0.0, str(value).casefold())


def _row(
    source: SearchSource, object_type: str, record: dict[str, Any], fields: list[str] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"__object_type": object_type, "id": record.get("id")}
    for name in fields or []:
        if name == "custom":
            row.update({k: v for k, v in record.items() if k.startswith("custom.")})
        elif name.startswith("custom."):
            row[name] = record.get(name)
        elif name != "id":
            row[name] = field_value(source, object_type, record, name)
    return row


class SearchEngine:
    def __init__(
        self,
        clock: Clock,
        *,
        cursor_ttl: float = 30.0,
        max_results: int = 10_000,
        current_user_id: str | None = None,
    ) -> None:
        self._clock = clock
        self._cursor_ttl = cursor_ttl
        self._max_results = max_results
        self._current_user_id = current_user_id
        self._cursors: dict[str, _Cursor] = {}

    def expire_cursors(self) -> None:
        """Fault switch: every outstanding cursor is now expired."""
        self._cursors.clear()

    def search(self, body: dict[str, Any], source: SearchSource) -> dict[str, Any]:
        """Answer one request; raises ``SearchError`` for anything Close would refuse with a 400."""
        if not isinstance(body, dict):
            raise SearchError("the request body must be a JSON object")
        self._forget_expired()
        limit = self._limit(body)
        token = body.get("cursor") or body.get("_cursor")
        if token:
            cursor = self._cursors.get(str(token))
            if cursor is None:
                raise SearchError("Expired cursor", field_errors={"cursor": "Expired cursor"})
            walk, offset = cursor.walk, cursor.offset
            if "_limit" in body:
                walk.limit = limit
            if isinstance(body.get("_fields"), dict):
                walk.fields = self._fields(body)
        else:
            walk, offset = self._start_walk(body, source, limit), 0
        response = self._page(walk, offset, source)
        if body.get("include_counts"):
            response["count"] = {"total": walk.total, "limited": walk.end}
        return response

    def _limit(self, body: dict[str, Any]) -> int:
        limit = body.get("_limit", DEFAULT_LIMIT)
        if limit is None:
            return DEFAULT_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise SearchError("bad _limit", field_errors={"_limit": "Input should be a valid integer"})
        if limit > MAX_LIMIT:
            message = f"Input should be less than or equal to {MAX_LIMIT}"
            raise SearchError(message, field_errors={"_limit": message})
        if limit < 0:
            message = "Input should be greater than or equal to 0"
            raise SearchError(message, field_errors={"_limit": message})
        return limit

    @staticmethod
    def _fields(body: dict[str, Any]) -> dict[str, list[str]] | None:
        fields = body.get("_fields")
        if fields is None:
            return None
        if not isinstance(fields, dict) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in fields.values()
        ):
            raise SearchError(
                "bad _fields", field_errors={"_fields": "Expected {object_type: [field names]}"}
            )
        return {str(k): list(v) for k, v in fields.items()}

    def _start_walk(self, body: dict[str, Any], source: SearchSource, limit: int) -> _Walk:
        query = body.get("query")
        if query is None:
            raise SearchError("query is required", field_errors={"query": "This field is required."})
        fields = self._fields(body)
        predicate = QueryCompiler(source, self._clock, self._current_user_id).compile(query)
        types = returned_types(query)
        sort = self._sort_spec(body.get("sort"), types)
        matches = [(t, r) for t in types for r in source.objects(t) if predicate(t, r)]
        # Stable sorts from the last key to the first, after the id tiebreak, give exact keyset order.
        matches.sort(key=lambda m: str(m[1].get("id")))
        for name, descending in reversed(sort):

            def key(match: tuple[str, dict[str, Any]], name: str = name) -> tuple[int, float, str]:
                return _sort_key(field_value(source, match[0], match[1], name))

            matches.sort(key=key, reverse=descending)
        results_limit = body.get("results_limit")
        end = min(len(matches), self._max_results)
        if results_limit is not None:
            if isinstance(results_limit, bool) or not isinstance(results_limit, int) or results_limit < 0:
                raise SearchError(
                    "bad results_limit", field_errors={"results_limit": "Must be a non-negative integer"}
                )
            end = min(end, results_limit)
        hits = [(t, dict(r)) for t, r in matches[:end]]
        return _Walk(hits=hits, end=end, total=len(matches), fields=fields, limit=limit)

    @staticmethod
    def _sort_spec(sort: Any, types: list[str]) -> list[tuple[str, bool]]:
        if sort is None:
            return [("date_created", True)]
        if not isinstance(sort, list):
            raise SearchError("sort must be a list", field_errors={"sort": "Expected a list"})
        spec: list[tuple[str, bool]] = []
        for i, item in enumerate(sort):
            field = item.get("field") if isinstance(item, dict) else None
            direction = item.get("direction", "asc") if isinstance(item, dict) else None
            if (
                not isinstance(field, dict)
                or field.get("type") != "regular_field"
                or field.get("object_type") not in types
                or not isinstance(field.get("field_name"), str)
                or direction not in ("asc", "desc")
            ):
                raise SearchError(
                    f"sort[{i}]: sort on a regular_field of the returned object type, direction asc or desc",
                    field_errors={"sort": f"Invalid sort item at index {i}"},
                )
            spec.append((field["field_name"], direction == "desc"))
        return spec

    def _page(self, walk: _Walk, offset: int, source: SearchSource) -> dict[str, Any]:
        stop = min(offset + walk.limit, walk.end)
        data = []
        for object_type, record in walk.hits[offset:stop]:
            if source.get(object_type, str(record.get("id"))) is not None:  # not deleted since
                fields = walk.fields.get(object_type) if walk.fields else None
                data.append(_row(source, object_type, record, fields))
        next_cursor = None
        if stop < walk.end and walk.limit > 0:
            next_cursor = secrets.token_urlsafe(24)
            self._cursors[next_cursor] = _Cursor(walk, stop, self._clock.now())
        return {"data": data, "cursor": next_cursor}

    def _forget_expired(self) -> None:
        deadline = self._clock.now() - self._cursor_ttl
        for token in [t for t, c in self._cursors.items() if c.issued_at <= deadline]:
            del self._cursors[token]
