"""Compiling filters to Close's Advanced Filtering JSON (close-api.md §3.5).

``compile_query`` resolves a filter's words against the organization (custom-field registry,
lead statuses, users) and builds the ``query`` node for ``POST /data/search/``; every word it
cannot place raises a ``FilterError`` saying what is allowed. ``search_body`` wraps a query with
fields, sort and page size.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from ._custom_fields import (
    CustomField,
    CustomFieldRegistry,
    CustomFieldValueError,
    coerce_scalar,
    single_valued,
)
from ._filters import And, Condition, Filter, FilterError, Not, Or, Scalar
from ._pagination import SEARCHABLE
from ._values import parse_moment, parse_number

__all__ = ["compile_query", "field_names", "lead_statuses", "search_body"]

Kind = Literal["text", "number", "moment", "user", "status", "id", "lead_id"]
_COMMON: dict[str, Kind] = {
    "id": "id",
    "name": "text",
    "display_name": "text",
    "date_created": "moment",
    "date_updated": "moment",
    "created_by": "user",
    "updated_by": "user",
}
_STANDARD: dict[str, dict[str, Kind]] = {
    "lead": {
        **_COMMON,
        "description": "text",
        "url": "text",
        "status": "status",
        "status_id": "status",
        "addresses_count": "number",
        "all_urls_count": "number",
        "num_upcoming_meetings": "number",
    },
    "contact": {
        **_COMMON,
        "title": "text",
        "lead_id": "lead_id",
        "emails_count": "number",
        "phones_count": "number",
        "urls_count": "number",
    },
}
# Fields of a related object (Close derives these sub-objects from contacts' arrays and leads'
# addresses) reached with `has_related`: alias -> (related object type, field name).
_RELATED: dict[str, dict[str, tuple[str, str]]] = {
    "lead": {
        "email": ("contact_email", "email"),
        "phone": ("contact_phone", "phone"),
        "contact_url": ("contact_url", "url"),
        **{
            f"address.{f}": ("address", f)
            for f in ("address_1", "address_2", "city", "state", "zipcode", "country")
        },
    },
    "contact": {
        "email": ("contact_email", "email"),
        "phone": ("contact_phone", "phone"),
        "url": ("contact_url", "url"),
        "contact_url": ("contact_url", "url"),
    },
}
_ALLOWED: dict[Kind, tuple[str, ...]] = {
    "text": ("=", "!=", "contains", "starts_with", "in", "exists", "missing"),
    "number": ("=", "!=", "<", "<=", ">", ">=", "in", "exists", "missing"),
    "moment": ("=", "!=", "<", "<=", ">", ">=", "exists", "missing"),
    "user": ("=", "!=", "in", "exists", "missing"),
    "status": ("=", "!=", "in"),
    "id": ("=", "!=", "in"),
    "lead_id": ("=", "!=", "in"),
}
_CUSTOM_KIND: dict[str, Kind] = {
    "text": "text",
    "textarea": "text",
    "hidden": "text",
    "number": "number",
    "date": "moment",
    "datetime": "moment",
    "user": "user",
}
_TERM_OPS = ("=", "!=", "in", "exists", "missing")
_TEXT_MODE = {"=": "exact_value", "contains": "full_words", "starts_with": "beginning_of_words"}


def field_names(object_type: str) -> list[str]:
    """The standard (non-custom) field names a filter on ``object_type`` may use."""
    return sorted({*_STANDARD.get(object_type, {}), *_RELATED.get(object_type, {})})


async def lead_statuses(client: Any) -> dict[str, str]:
    """Lead status label -> id, from ``GET /status/lead/`` (``client`` needs only ``get``)."""
    page = await client.get("/status/lead/")
    return {str(s["label"]): str(s["id"]) for s in page.get("data") or []}


# -- compiling ----------------------------------------------------------------------------------


async def compile_query(
    filter: Filter | None,
    object_type: str,
    registry: CustomFieldRegistry,
    statuses: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``query`` node for ``/data/search/``: ``filter`` ANDed with the object-type selector.

    ``statuses`` (label -> id, see ``lead_statuses``) is needed only when the filter names a
    lead status by label.
    """
    if object_type not in SEARCHABLE:
        raise FilterError(
            f'cannot search "{object_type}"; Advanced Filtering returns {" or ".join(SEARCHABLE)}'
        )
    queries: list[dict[str, Any]] = [{"type": "object_type", "object_type": object_type}]
    if filter is not None:
        queries.append(await _Compiler(object_type, registry, statuses or {}).node(filter))
    return {"type": "and", "queries": queries}


def search_body(
    query: Mapping[str, Any],
    object_type: str,
    *,
    fields: Sequence[str] | None = None,
    sort: Sequence[str] | str | None = None,
    limit: int | None = 200,
) -> dict[str, Any]:
    """A ``/data/search/`` body around a compiled ``query``.

    ``fields`` are the record fields to return (``custom.cf_…`` allowed; default ``id``);
    ``sort`` is one or more names, ``-`` first for descending (``-date_updated``).
    """
    body: dict[str, Any] = {"query": dict(query), "_fields": {object_type: list(fields or ["id"])}}
    if limit is not None:
        if limit < 1:
            raise FilterError(f"limit must be at least 1, not {limit}")
        body["_limit"] = limit
    if sort:
        body["sort"] = [_sort_item(s, object_type) for s in ([sort] if isinstance(sort, str) else sort)]
    return body


def _sort_item(spec: str, object_type: str) -> dict[str, Any]:
    name = spec.removeprefix("-")
    kinds = _STANDARD.get(object_type, {})
    # Close sorts only on numbers, dates and text owned directly by the object (§3.5).
    sortable = sorted(n for n, k in kinds.items() if k in ("text", "number", "moment"))
    if name not in sortable:
        raise FilterError(f'cannot sort {object_type}s by "{name}"; sortable fields: {", ".join(sortable)}')
    field = {"type": "regular_field", "object_type": object_type, "field_name": name}
    return {"direction": "desc" if spec.startswith("-") else "asc", "field": field}


def _negate(node: dict[str, Any]) -> dict[str, Any]:
    return {**node, "negate": not node.get("negate", False)}


def _any_of(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return nodes[0] if len(nodes) == 1 else {"type": "or", "queries": nodes}


class _Compiler:
    def __init__(self, object_type: str, registry: CustomFieldRegistry, statuses: Mapping[str, str]) -> None:
        self.object_type = object_type
        self.registry = registry
        self.statuses = statuses

    async def node(self, filter: Filter) -> dict[str, Any]:
        if isinstance(filter, And | Or):
            kind = "and" if isinstance(filter, And) else "or"
            return {"type": kind, "queries": [await self.node(item) for item in filter.items]}
        if isinstance(filter, Not):
            return _negate(await self.node(filter.item))
        return await self.condition(filter)

    async def condition(self, c: Condition) -> dict[str, Any]:
        if c.op in ("=", "!=") and c.value is None:
            # `= null` reads naturally as "has no value"; Close spells that as a negated exists.
            c = Condition(c.field, "missing" if c.op == "=" else "exists")
        if c.field.startswith("custom."):
            return await self.custom(c, c.field.removeprefix("custom."))
        related = _RELATED[self.object_type].get(c.field)
        if related is not None:
            related_type, name = related
            ref = {"type": "regular_field", "object_type": related_type, "field_name": name}
            self.check(c, "text", f"{related_type}.{name}")
            # "no email equal to x" / "no email at all" ask the positive question inside the relation.
            if c.op == "!=":
                c_inner = Condition(c.field, "=", c.value)
            elif c.op == "missing":
                c_inner = Condition(c.field, "exists")
            else:
                c_inner = c
            inner = self.text(c_inner, ref)
            node = {
                "type": "has_related",
                "this_object_type": self.object_type,
                "related_object_type": related_type,
                "related_query": inner,
            }
            # "no email equal to x" / "no email at all": negate the whole relation, not the email.
            return _negate(node) if c.op in ("!=", "missing") else node
        kind = _STANDARD[self.object_type].get(c.field)
        if kind is None:
            names = field_names(self.object_type)
            near = difflib.get_close_matches(c.field, names, n=3)
            hint = "; did you mean " + " or ".join(f'"{n}"' for n in near) + "?" if near else ""
            raise FilterError(
                f'unknown {self.object_type} field "{c.field}"{hint} '
                f'(fields: {", ".join(names)}; custom fields: custom."Field Name")'
            )
        self.check(c, kind, f"{self.object_type} field {c.field}")
        ref = {"type": "regular_field", "object_type": self.object_type, "field_name": c.field}
        if kind == "status":
            ref["field_name"] = "status_id"
            ids = [self.status_id(c, v) for v in _values(c)]
            return self.field(
                c, ref, {"type": "reference", "reference_type": "status.lead", "object_ids": ids}
            )
        if kind == "user":
            return await self.user(c, ref)
        if kind == "id":
            return self.by_id(c)
        if kind == "lead_id":
            node = {
                "type": "has_related",
                "this_object_type": "contact",
                "related_object_type": "lead",
                "related_query": self.by_id(Condition("id", "in", _values(c))),
            }
            return _negate(node) if c.op == "!=" else node
        return self.by_kind(c, kind, ref)

    def check(self, c: Condition, kind: Kind | Literal["term"], what: str) -> None:
        allowed = _TERM_OPS if kind == "term" else _ALLOWED[kind]
        if c.op not in allowed:
            raise FilterError(
                f'operator "{c.op}" does not apply to {what} ({kind}); use one of {", ".join(allowed)}'
            )

    def by_kind(self, c: Condition, kind: Kind, ref: dict[str, Any]) -> dict[str, Any]:
        if kind == "text":
            return self.text(c, ref)
        if kind == "number":
            return self.number(c, ref)
        return self.moment(c, ref)

    def field(self, c: Condition, ref: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
        """A field condition with the operator's polarity (``!=`` and ``missing`` negate)."""
        node = {"type": "field_condition", "field": ref, "condition": condition}
        return _negate(node) if c.op in ("!=", "missing") else node

    def presence(self, c: Condition, ref: dict[str, Any]) -> dict[str, Any] | None:
        if c.op in ("exists", "missing"):
            return self.field(c, ref, {"type": "exists"})
        return None

    def text(self, c: Condition, ref: dict[str, Any]) -> dict[str, Any]:
        if (node := self.presence(c, ref)) is not None:
            return node
        for value in _values(c):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise FilterError(f'"{c.field} {c.op}" needs a text value, not {value!r}')
        if c.op == "in":
            return _any_of([self.text(Condition(c.field, "=", v), ref) for v in _values(c)])
        mode = _TEXT_MODE["=" if c.op == "!=" else c.op]
        return self.field(c, ref, {"type": "text", "mode": mode, "value": str(c.value)})

    def number(self, c: Condition, ref: dict[str, Any]) -> dict[str, Any]:
        if (node := self.presence(c, ref)) is not None:
            return node
        numbers = [_as_number(c, v) for v in _values(c)]
        if c.op == "in":
            return _any_of(
                [self.field(c, ref, {"type": "number_range", "gte": n, "lte": n}) for n in numbers]
            )
        bound = {"=": ("gte", "lte"), "!=": ("gte", "lte"), "<": ("lt",), "<=": ("lte",)}
        keys = bound.get(c.op) or {">": ("gt",), ">=": ("gte",)}[c.op]
        return self.field(c, ref, {"type": "number_range", **dict.fromkeys(keys, numbers[0])})

    def moment(self, c: Condition, ref: dict[str, Any]) -> dict[str, Any]:
        if (node := self.presence(c, ref)) is not None:
            return node
        start, end = _moment_span(c)
        # Close's moment_range has only `on_or_after` and `before`; a value names a span (a whole
        # day for a date, one microsecond for a datetime) and each operator picks its side.
        bounds = {
            "=": {"on_or_after": start, "before": end},
            "!=": {"on_or_after": start, "before": end},
            "<": {"before": start},
            "<=": {"before": end},
            ">": {"on_or_after": end},
            ">=": {"on_or_after": start},
        }[c.op]
        fixed = {k: {"type": "fixed_utc", "value": v.isoformat()} for k, v in bounds.items()}
        return self.field(c, ref, {"type": "moment_range", **fixed})

    async def user(self, c: Condition, ref: dict[str, Any]) -> dict[str, Any]:
        if (node := self.presence(c, ref)) is not None:
            return node
        ids = []
        for value in _values(c):
            if not isinstance(value, str):
                raise FilterError(f'"{c.field} {c.op}" needs a user id, email or full name, not {value!r}')
            try:
                ids.append(await self.registry.user_id(value))
            except LookupError as exc:
                raise FilterError(f'"{c.field} {c.op} {value}": {exc}') from None
        return self.field(c, ref, {"type": "reference", "reference_type": "user", "object_ids": ids})

    def by_id(self, c: Condition) -> dict[str, Any]:
        nodes = [{"type": "id", "value": str(v)} for v in _values(c)]
        return _negate(nodes[0]) if c.op == "!=" else _any_of(nodes)

    def status_id(self, c: Condition, value: Any) -> str:
        text = str(value)
        if text.startswith("stat_"):
            return text
        for label, status_id in self.statuses.items():
            if label == text or label.casefold() == text.casefold():
                return status_id
        labels = list(self.statuses)
        if not labels:
            raise FilterError(f'"{c.field} {c.op} {text}": lead statuses are not loaded; pass statuses=')
        near = difflib.get_close_matches(text, labels, n=3)
        hint = "did you mean " + " or ".join(f'"{n}"' for n in near) + "? " if near else ""
        raise FilterError(
            f'unknown lead status "{text}"; {hint}(statuses: {", ".join(f"{s!r}" for s in labels)})'
        )

    async def custom(self, c: Condition, name: str) -> dict[str, Any]:
        field = single_valued(await self.registry.resolve(self.object_type, name))
        ref = {"type": "custom_field", "custom_field_id": field.id}
        what = f'{self.object_type} custom field "{field.name}"'
        kind = _CUSTOM_KIND.get(field.type)
        if kind is None:
            self.check(c, "term", what)
            if (node := self.presence(c, ref)) is not None:
                return node
            values = [self.custom_value(field, c, v) for v in _values(c)]
            if field.type in ("contact", "custom_object"):
                reference = {"type": "reference", "reference_type": field.type, "object_ids": values}
                return self.field(c, ref, reference)
            return self.field(c, ref, {"type": "term", "values": values})
        self.check(c, kind, what)
        if kind == "user":
            return await self.user(c, ref)
        if kind == "text":
            return self.text(c, ref)
        if kind == "number":
            for value in _values(c):
                self.custom_value(field, c, value)
        return self.by_kind(c, kind, ref)

    def custom_value(self, field: CustomField, c: Condition, value: Any) -> Any:
        try:
            return coerce_scalar(field, value)
        except CustomFieldValueError as exc:
            raise FilterError(f'"{c.field} {c.op}": {exc}') from None


def _values(c: Condition) -> tuple[Scalar, ...]:
    return c.value if isinstance(c.value, tuple) else (c.value,)


def _as_number(c: Condition, value: Any) -> int | float:
    try:
        return parse_number(value)
    except ValueError:
        raise FilterError(f'"{c.field} {c.op}" needs a number, not {value!r}') from None


def _moment_span(c: Condition) -> tuple[datetime, datetime]:
    """The UTC span ``[start, end)`` a date or datetime value stands for, as naive UTC datetimes."""
    value: Any = c.value
    if isinstance(value, str):
        try:
            value = parse_moment(value)
        except ValueError:
            raise FilterError(
                f'"{c.field} {c.op}" needs an ISO date or datetime (2026-01-31, 2026-01-31T09:00:00Z), '
                f"not {c.value!r}"
            ) from None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        moment = moment.replace(tzinfo=None)
        return moment, moment + timedelta(microseconds=1)
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day)
        return start, start + timedelta(days=1)
    raise FilterError(f'"{c.field} {c.op}" needs a date or datetime, not {c.value!r}')
