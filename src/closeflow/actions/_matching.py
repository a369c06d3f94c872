"""Finding the Close records that input records stand for, many at a time.

One ``/data/search/`` per match property per chunk of records (many values in one query), never
one search per record. Close's text conditions are looser than "the same value" (case, word
boundaries, phone formats), so results are grouped back to records client-side by exact
comparison of normalised values, and a looser query (a url's host) is fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from closeflow.actions._normalise import email_key, host_key, phone_key, text_key, url_key
from closeflow.actions._specs import custom_field_name
from closeflow.actions._values import scalar_key
from closeflow.close import (
    CloseClient,
    Condition,
    CustomField,
    CustomFieldRegistry,
    CustomFieldValueError,
    Filter,
    NotFound,
    Or,
    compile_query,
    search_body,
    value_key,
)

SEARCH_PAGE = 200  # Close's largest /data/search/ page (§3.5)
_ARRAY_OF = {"email": "emails", "phone": "phones"}
_ID_PREFIX = {"lead": "lead_", "contact": "cont_"}
# Free text people type with stray spaces: Close's exact_value compares the stored text as a
# whole, so "Acme Corp" would miss "Acme  Corp". Search by words and compare normalised text here.
_FREE_TEXT = ("name", "title", "description")


@dataclass(frozen=True)
class Matcher:
    """One match rule, resolved: how to normalise its values, query them, and recognise them."""

    object_type: str
    prop: str  # email, phone, url, domain, id, a standard field, or custom."Name"
    input_key: str
    field: CustomField | None
    registry: CustomFieldRegistry

    @property
    def fields(self) -> list[str]:
        """The record fields grouping needs from a search."""
        if self.field is not None:
            return [value_key(self.field)]
        if self.prop in _ARRAY_OF:
            return [_ARRAY_OF[self.prop]]
        if self.prop in ("url", "domain"):
            return ["url" if self.object_type == "lead" else "urls"]
        return [self.prop]

    async def normalise(self, raw: Any) -> tuple[str, Any]:
        """``(comparable value, value to search for)``; ValueError says why the value is unusable."""
        if self.field is not None:
            try:
                coerced = await self.registry.coerce(_one(self.field), raw)
            except CustomFieldValueError as exc:
                raise ValueError(str(exc)) from None
            key = _custom_key(self.field, coerced)
            if key is None:
                raise ValueError(f"empty value for {self.prop}")
            return key, coerced
        normaliser = _NORMALISERS.get(self.prop, text_key)
        key = normaliser(raw)
        if key is None:
            raise ValueError(f'"{raw}" is not a usable {self.prop}')
        if self.prop == "phone":
            return key, "+" + key
        if self.prop in ("url", "domain"):
            return key, host_key(raw)
        if self.prop == "id":
            prefix = _ID_PREFIX[self.object_type]
            if not key.startswith(prefix):
                raise ValueError(f'"{key}" is not a Close {self.object_type} id ({prefix}…)')
            return key, key
        return key, " ".join(str(raw).split())

    def keys_of(self, record: Mapping[str, Any]) -> set[str]:
        """The normalised values a Close record holds for this property."""
        if self.field is not None:
            stored = record.get(value_key(self.field))
            items = stored if isinstance(stored, list) else [stored]
            return {k for k in (_custom_key(self.field, item) for item in items) if k is not None}
        normaliser = _NORMALISERS.get(self.prop, text_key)
        if self.prop in _ARRAY_OF:
            singular = self.prop
            values = [
                item.get(singular) for item in record.get(_ARRAY_OF[singular]) or [] if isinstance(item, dict)
            ]
        elif self.prop in ("url", "domain") and self.object_type == "contact":
            values = [item.get("url") for item in record.get("urls") or [] if isinstance(item, dict)]
        else:
            values = [record.get(self.fields[0])]
        return {k for k in (normaliser(v) for v in values) if k is not None}

    def filter_for(self, queries: list[Any]) -> Filter:
        """One filter finding every record holding any of ``queries``."""
        if self.prop == "id":
            return Condition("id", "in", tuple(dict.fromkeys(str(q) for q in queries)))
        if self.prop in ("url", "domain"):
            conditions: list[Filter] = [Condition("url", "contains", h) for h in dict.fromkeys(queries)]
        elif self.field is None and self.prop in _FREE_TEXT:
            conditions = [Condition(self.prop, "contains", q) for q in _unique(queries)]
        else:
            name = f"custom.{self.field.id}" if self.field is not None else self.prop
            conditions = [Condition(name, "=", _scalar(q)) for q in _unique(queries)]
        return conditions[0] if len(conditions) == 1 else Or(conditions)


def _id_key(value: Any) -> str | None:
    return str(value).strip() or None


_NORMALISERS: dict[str, Callable[[Any], str | None]] = {
    "email": email_key,
    "phone": phone_key,
    "url": url_key,
    "domain": host_key,
    "id": _id_key,
}


def _one(field: CustomField) -> CustomField:
    # A match value is one element, also for multi-value fields (a record holding it matches).
    # (closeflow.close.single_valued does this but is not exported from closeflow.close.)
    return replace(field, accepts_multiple_values=False)


def _custom_key(field: CustomField, value: Any) -> str | None:
    return scalar_key(field, value)


def _scalar(value: Any) -> str | int | float | bool | None:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _unique(values: list[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for value in values:
        marker = repr(value)
        if marker not in seen:
            seen.add(marker)
            out.append(value)
    return out


async def matcher_for(object_type: str, prop: str, input_key: str, registry: CustomFieldRegistry) -> Matcher:
    name = custom_field_name(prop)
    field = await registry.resolve(object_type, name) if name is not None else None
    return Matcher(object_type, prop, input_key, field, registry)


async def lookup(
    client: CloseClient,
    matcher: Matcher,
    wanted: Mapping[str, Any],
    fields: list[str],
) -> dict[str, list[dict[str, Any]]]:
    """Normalised value -> the Close records holding it, for every value in ``wanted``
    (normalised value -> search value), with one search (paged only past 200 results)."""
    found: dict[str, list[dict[str, Any]]] = {key: [] for key in wanted}
    if not wanted:
        return found
    query = await compile_query(
        matcher.filter_for(list(wanted.values())), matcher.object_type, matcher.registry
    )
    body = search_body(query, matcher.object_type, fields=fields, limit=SEARCH_PAGE)
    async for record in client.search(body):
        for key in matcher.keys_of(record) & found.keys():
            found[key].append(record)
    for records in found.values():
        # "first" means the oldest record: a stable, explainable choice among equals.
        records.sort(key=lambda r: (str(r.get("date_created") or ""), str(r.get("id"))))
    return found


async def lead_exists(client: CloseClient, lead_id: str) -> bool:
    """Whether Close has this lead, asked by id (a GET sees a lead the moment it is created)."""
    try:
        await client.get(f"/lead/{lead_id}/", params={"_fields": "id"})
    except NotFound:
        return False
    return True


async def missing_leads(
    client: CloseClient, registry: CustomFieldRegistry, lead_ids: Collection[str]
) -> set[str]:
    """The ids among ``lead_ids`` that name no lead in Close: one search for them all. Close's
    search shows a new lead 30-60 s after its create (§2.4), so each id it does not show is asked
    for by id before it counts as missing (one GET per such id; none when all are found)."""
    if not lead_ids:
        return set()
    matcher = Matcher("lead", "id", "lead_id", None, registry)
    found = await lookup(client, matcher, {i: i for i in lead_ids}, ["id"])
    unseen = [lead_id for lead_id, records in found.items() if not records]
    exists = await asyncio.gather(*(lead_exists(client, lead_id) for lead_id in unseen))
    return {lead_id for lead_id, there in zip(unseen, exists, strict=True) if not there}
