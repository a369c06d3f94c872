"""Advanced Filtering query trees (§3.5) compiled into predicates over Close-shaped records.

A compiled node is a function of ``(object_type, record)``. Sub-objects Close exposes to queries
(``contact_email``, ``contact_phone``, ``contact_url``, ``address``) are derived here from the
contact's ``emails``/``phones``/``urls`` arrays and the lead's ``addresses``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from closeflow._clock import Clock

from ._search_conditions import TEXT_MODES, SearchError, compile_condition, value_matches

Predicate = Callable[[str, dict[str, Any]], bool]

RETURNABLE_TYPES = ("lead", "contact", "opportunity")
SUB_OBJECT_TYPES = {"contact_email": "emails", "contact_phone": "phones", "contact_url": "urls"}
FIELD_OBJECT_TYPES = (*RETURNABLE_TYPES, *SUB_OBJECT_TYPES, "address")


class SearchSource(Protocol):
    """What the engine reads; the emulator's Organization implements it."""

    def objects(self, object_type: str) -> Iterable[dict[str, Any]]: ...

    def get(self, object_type: str, object_id: str) -> dict[str, Any] | None: ...

    def children(self, lead_id: str, object_type: str) -> Iterable[dict[str, Any]]: ...

    def custom_field(self, field_id: str) -> dict[str, Any] | None: ...


def _lead_of(source: SearchSource, object_type: str, record: dict[str, Any]) -> dict[str, Any] | None:
    if object_type == "lead":
        return record
    lead_id = record.get("lead_id")
    return source.get("lead", lead_id) if isinstance(lead_id, str) else None


def _contacts_of(source: SearchSource, object_type: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    if object_type == "contact":
        return [record]
    lead = _lead_of(source, object_type, record)
    return list(source.children(lead["id"], "contact")) if lead else []


def related_objects(
    source: SearchSource, object_type: str, record: dict[str, Any], related_type: str
) -> list[dict[str, Any]]:
    """The objects of ``related_type`` that belong to ``record`` (its contacts, their emails, …)."""
    if related_type in SUB_OBJECT_TYPES:
        key = SUB_OBJECT_TYPES[related_type]
        return [
            {**item, "contact_id": contact.get("id"), "lead_id": contact.get("lead_id")}
            for contact in _contacts_of(source, object_type, record)
            for item in contact.get(key) or []
            if isinstance(item, dict)
        ]
    if related_type == "address":
        lead = _lead_of(source, object_type, record)
        if lead is None:
            return []
        return [dict(a, lead_id=lead["id"]) for a in lead.get("addresses") or [] if isinstance(a, dict)]
    if related_type == "lead":
        lead = _lead_of(source, object_type, record)
        return [lead] if lead else []
    if related_type in ("contact", "opportunity"):
        lead = _lead_of(source, object_type, record)
        return list(source.children(lead["id"], related_type)) if lead else []
    raise SearchError(f"has_related: related_object_type {related_type!r} is not supported by the emulator")


def field_value(source: SearchSource, object_type: str, record: dict[str, Any], name: str) -> Any:
    """A regular field's value, including the counts and names Close computes."""
    if name == "display_name":
        return record.get("display_name") or record.get("name")
    if name.endswith("_count") and name not in record:
        if object_type == "lead" and name in ("contacts_count", "opportunities_count"):
            return len(list(source.children(record["id"], name.removesuffix("s_count"))))
        if name == "addresses_count":
            return len(record.get("addresses") or [])
        key = name.removesuffix("_count").removeprefix("all_")
        if key in ("emails", "phones", "urls"):
            if object_type == "contact":
                return len(record.get(key) or [])
            if object_type == "lead":
                extra = 1 if key == "urls" and name.startswith("all_") and record.get("url") else 0
                return extra + sum(len(c.get(key) or []) for c in _contacts_of(source, "lead", record))
    return record.get(name)


def _text_fields(
    source: SearchSource, object_type: str, record: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Text the ``text`` node searches: (plain strings, phone numbers)."""
    keys = {
        "lead": ("name", "display_name", "description", "url"),
        "contact": ("name", "display_name", "title"),
        "opportunity": ("note", "lead_name", "contact_name", "user_name", "status_label"),
    }.get(object_type, ())
    texts = [str(record[k]) for k in keys if record.get(k)]
    texts += [str(v) for k, v in record.items() if k.startswith("custom.") and isinstance(v, str)]
    for address in record.get("addresses") or [] if object_type == "lead" else []:
        texts += [str(v) for v in address.values() if isinstance(v, str)]
    phones: list[str] = []
    contacts = _contacts_of(source, object_type, record) if object_type in ("lead", "contact") else []
    for contact in contacts:
        if contact is not record:
            texts += [str(contact[k]) for k in ("name", "title") if contact.get(k)]
        texts += [str(e.get("email")) for e in contact.get("emails") or [] if e.get("email")]
        texts += [str(u.get("url")) for u in contact.get("urls") or [] if u.get("url")]
        phones += [str(p.get("phone")) for p in contact.get("phones") or [] if p.get("phone")]
    return texts, phones


def _need(node: dict[str, Any], key: str, where: str) -> Any:
    if key not in node:
        raise SearchError(f"{where}: node {node.get('type')!r} needs {key!r}")
    return node[key]


class QueryCompiler:
    """Turns a query tree into a predicate; one instance per search (it binds the source)."""

    def __init__(self, source: SearchSource, clock: Clock, current_user_id: str | None) -> None:
        self._source = source
        self._clock = clock
        self._current_user_id = current_user_id

    def compile(self, node: Any, where: str = "query") -> Predicate:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise SearchError(f"{where}: a query node must be an object with a 'type'")
        negate = node.get("negate", False)
        if not isinstance(negate, bool):
            raise SearchError(f"{where}: 'negate' must be true or false")
        predicate = self._compile_node(node, where)
        if negate:
            return lambda t, r: not predicate(t, r)
        return predicate

    def _compile_node(self, node: dict[str, Any], where: str) -> Predicate:
        kind = node["type"]
        if kind in ("and", "or"):
            queries = _need(node, "queries", where)
            if not isinstance(queries, list):
                raise SearchError(f"{where}: 'queries' must be a list")
            parts = [self.compile(q, f"{where}.queries[{i}]") for i, q in enumerate(queries)]
            if kind == "and":
                return lambda t, r: all(p(t, r) for p in parts)
            return lambda t, r: any(p(t, r) for p in parts)
        if kind == "object_type":
            wanted = _need(node, "object_type", where)
            if wanted not in RETURNABLE_TYPES:
                raise SearchError(
                    f"{where}: object_type {wanted!r} is not supported (use lead, contact, opportunity)"
                )
            return lambda t, r: t == wanted
        if kind == "id":
            object_id = _need(node, "value", where)
            return lambda t, r: r.get("id") == object_id
        if kind == "match_all":
            return lambda t, r: True
        if kind == "text":
            return self._text_node(node, where)
        if kind == "field_condition":
            return self._field_condition(node, where)
        if kind == "has_related":
            return self._has_related(node, where)
        if kind == "saved_search":
            saved = node.get("saved_search_id")
            raise SearchError(
                f"{where}: saved search {saved!r} not found", field_errors={"saved_search_id": "Not found"}
            )
        raise SearchError(f"{where}: unknown query node type {kind!r}")

    def _text_node(self, node: dict[str, Any], where: str) -> Predicate:
        mode = node.get("mode", "full_words")
        if mode not in TEXT_MODES:
            raise SearchError(f"{where}: unknown text mode {mode!r}")
        condition = {"type": "text", "mode": mode, "value": _need(node, "value", where)}
        plain, _ = compile_condition(
            condition, clock=self._clock, current_user_id=None, phone=False, where=where
        )
        phone, _ = compile_condition(
            condition, clock=self._clock, current_user_id=None, phone=True, where=where
        )
        source = self._source

        def predicate(t: str, r: dict[str, Any]) -> bool:
            texts, phones = _text_fields(source, t, r)
            return any(plain(s) for s in texts) or any(phone(p) for p in phones)

        return predicate

    def _field_condition(self, node: dict[str, Any], where: str) -> Predicate:
        field = _need(node, "field", where)
        if not isinstance(field, dict):
            raise SearchError(f"{where}: 'field' must be an object")
        source = self._source
        if field.get("type") == "custom_field":
            field_id = field.get("custom_field_id")
            if not isinstance(field_id, str) or source.custom_field(field_id) is None:
                raise SearchError(f"{where}.field: unknown custom field {field_id!r}")
            test, whole = self._condition(node, where, phone=False)
            key = f"custom.{field_id}"
            return lambda t, r: value_matches(r.get(key), test, whole=whole)
        if field.get("type") != "regular_field":
            raise SearchError(f"{where}.field: unknown field type {field.get('type')!r}")
        object_type, name = field.get("object_type"), field.get("field_name")
        if object_type not in FIELD_OBJECT_TYPES:
            raise SearchError(f"{where}.field: unknown object_type {object_type!r}")
        if not isinstance(name, str) or not name:
            raise SearchError(f"{where}.field: 'field_name' must be a non-empty string")
        test, whole = self._condition(node, where, phone=(object_type, name) == ("contact_phone", "phone"))

        def predicate(t: str, r: dict[str, Any]) -> bool:
            # A condition on another object's field never matches here; has_related reaches it.
            return t == object_type and value_matches(field_value(source, t, r, name), test, whole=whole)

        return predicate

    def _condition(self, node: dict[str, Any], where: str, *, phone: bool) -> tuple[Any, bool]:
        return compile_condition(
            _need(node, "condition", where),
            clock=self._clock,
            current_user_id=self._current_user_id,
            phone=phone,
            where=f"{where}.condition",
        )

    def _has_related(self, node: dict[str, Any], where: str) -> Predicate:
        this_type = _need(node, "this_object_type", where)
        related_type = _need(node, "related_object_type", where)
        if this_type not in RETURNABLE_TYPES:
            raise SearchError(f"{where}: this_object_type {this_type!r} is not supported")
        if related_type not in FIELD_OBJECT_TYPES:
            raise SearchError(
                f"{where}: related_object_type {related_type!r} is not supported by the emulator"
            )
        inner = self.compile(node.get("related_query", {"type": "match_all"}), f"{where}.related_query")
        source = self._source

        def predicate(t: str, r: dict[str, Any]) -> bool:
            if t != this_type:
                return False
            return any(inner(related_type, other) for other in related_objects(source, t, r, related_type))

        return predicate


def returned_types(node: Any) -> list[str]:
    """Object types a query returns: its ``object_type`` nodes under and/or; leads when there are none."""
    found: list[str] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if not isinstance(current, dict) or current.get("negate"):
            continue
        if current.get("type") == "object_type" and current.get("object_type") in RETURNABLE_TYPES:
            if current["object_type"] not in found:
                found.append(current["object_type"])
        elif current.get("type") in ("and", "or") and isinstance(current.get("queries"), list):
            pending.extend(current["queries"])
    return sorted(found, key=RETURNABLE_TYPES.index) or ["lead"]
