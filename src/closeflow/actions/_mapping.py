"""From an input record (a CSV row, a JSONL object, a play's values) to Close field values.

Configuration errors (an unknown custom field in the spec) are raised once, before any record is
read. Value errors (a bad number, an unknown status label, a malformed email) belong to one
record: ``Prepared.error`` names the record, the field and the reason, and the record is
reported as failed without stopping the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from closeflow.actions._matching import Matcher, matcher_for
from closeflow.actions._normalise import email_key, host_key, phone_key
from closeflow.actions._specs import ADDRESS_PARTS, WriteSpec, custom_field_name
from closeflow.actions._values import dedupe
from closeflow.close import CloseClient, CustomField, CustomFieldRegistry, CustomFieldValueError, value_key

_DEFAULT_RECOVERY = {"lead": ("url", "name"), "contact": ("email", "phone", "name")}


@dataclass
class Prepared:
    """One input record, mapped: the Close values it asks for and how to find it."""

    row: int | None
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    lead_id: str | None = None
    match: tuple[int, str] | None = None  # (rule index, normalised value) of the first rule present
    match_query: Any = None  # the value to search for (already converted for the field's type)
    # Every (rule index, normalised value) the record carries: a record it creates holds them all,
    # so later records with any of them must see it.
    matches: list[tuple[int, str]] = field(default_factory=list)
    # The match values as Close fields, written on create so that the next run finds the record.
    match_fields: dict[str, Any] = field(default_factory=dict)
    # The key without its ordinal: the ledger row of the first record with this key.
    first_key: str | None = None
    error: str | None = None
    recover_since: float | None = None  # set when the ledger holds an intent without an outcome


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _split(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


class Mapper:
    """Maps records for one spec; built by ``Mapper.create`` (which resolves custom fields)."""

    def __init__(
        self,
        spec: Any,
        registry: CustomFieldRegistry,
        custom: dict[str, CustomField],
        statuses: dict[str, str],
        matchers: list[Matcher],
    ) -> None:
        self.spec = spec
        self.object_type: str = spec.object_type
        # Delete specs have match rules and a key but nothing to write.
        self.mappings: dict[str, str] = getattr(spec, "mappings", {})
        self.custom_inputs: dict[str, str] = getattr(spec, "custom", {})
        self.constants: dict[str, Any] = getattr(spec, "constants", {})
        self.registry = registry
        self.custom = custom  # spec key (name or id, or custom."Name") -> field
        self.statuses = statuses
        self.matchers = matchers
        # Records sharing a key (two rows for one email) each get their own ledger row: the n-th
        # gets "key#n", so a re-run of the same input gives every record the same key again.
        self._seen: Counter[str] = Counter()

    @classmethod
    async def create(cls, client: CloseClient, spec: Any, registry: CustomFieldRegistry) -> Mapper:
        object_type = spec.object_type
        mappings: dict[str, str] = getattr(spec, "mappings", {})
        constants: dict[str, Any] = getattr(spec, "constants", {})
        custom: dict[str, CustomField] = {}
        for name in getattr(spec, "custom", {}):
            custom[name] = await registry.resolve(object_type, name)
        for key in constants:
            if (name := custom_field_name(key)) is not None:
                custom[key] = await registry.resolve(object_type, name)
        statuses: dict[str, str] = {}
        if object_type == "lead" and {"status", "status_id"} & {*mappings, *constants}:
            page = await client.get("/status/lead/")
            statuses = {str(s["label"]): str(s["id"]) for s in page.get("data") or []}
        rules = [(rule.property, rule.value) for rule in spec.match]
        if not rules and spec.action.startswith("insert"):
            rules = _recovery_rules(spec)
        matchers = [await matcher_for(object_type, prop, value, registry) for prop, value in rules]
        return cls(spec, registry, custom, statuses, matchers)

    @property
    def custom_fields(self) -> list[CustomField]:
        return list({f.id: f for f in self.custom.values()}.values())

    async def prepare(self, record: dict[str, Any], row: int | None) -> Prepared:
        prepared = Prepared(row=row, key="")
        problems: list[str] = []
        await self._match(record, prepared, problems)
        key = self._key(record, row, prepared)
        self._seen[key] += 1
        ordinal = self._seen[key]
        prepared.key = key if ordinal == 1 else f"{key}#{ordinal}"
        prepared.first_key = key if ordinal > 1 else None
        values: dict[str, Any] = {}
        for close_field, input_key in self.mappings.items():
            if not _empty(record.get(input_key)):
                values[close_field] = record[input_key]
        values.update({k: v for k, v in self.constants.items() if custom_field_name(k) is None})
        self._standard(values, record, prepared, problems)
        await self._custom(record, prepared, problems)
        if problems:
            prepared.error = f"row {row} ({prepared.key}): " + "; ".join(problems)
        return prepared

    # -- record key and match value ---------------------------------------------------------

    def _key(self, record: dict[str, Any], row: int | None, prepared: Prepared) -> str:
        key_input = getattr(self.spec, "key", None)
        if key_input and not _empty(record.get(key_input)):
            return str(record[key_input]).strip()
        if prepared.match is not None:
            index, value = prepared.match
            return f"{self.matchers[index].prop}={value}"
        digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
        return f"row{row}:{digest[:16]}"

    async def _match(self, record: dict[str, Any], prepared: Prepared, problems: list[str]) -> None:
        for index, matcher in enumerate(self.matchers):
            raw = record.get(matcher.input_key)
            if _empty(raw):
                continue
            try:
                normalised, query = await matcher.normalise(raw)
            except ValueError as exc:
                if prepared.match is None:
                    problems.append(f"match {matcher.prop}: {exc}")
                    return
                continue  # a later rule's value is only a hint; the first present value decides
            if prepared.match is None:
                prepared.match, prepared.match_query = (index, normalised), query
            prepared.matches.append((index, normalised))
            self._match_field(matcher, raw, query, prepared.match_fields)

    def _match_field(self, matcher: Matcher, raw: Any, query: Any, out: dict[str, Any]) -> None:
        """The Close field a match value is stored in (ids and nothing else are Close's to set)."""
        prop, text = matcher.prop, str(raw).strip()
        if matcher.field is not None:
            out[value_key(matcher.field)] = [query] if matcher.field.accepts_multiple_values else query
        elif prop in ("email", "phone"):
            kind_type = getattr(self.spec, f"{prop}_type", "office")
            out.setdefault(f"{prop}s", []).append({prop: text, "type": kind_type})
        elif prop in ("url", "domain"):
            url = text if prop == "url" else f"https://{host_key(text)}"
            if self.object_type == "lead":
                out.setdefault("url", url)
            else:
                out.setdefault("urls", []).append({"url": url, "type": "url"})
        elif prop in ("name", "title", "description"):
            out.setdefault(prop, text)

    # -- standard fields ----------------------------------------------------------------------

    def _standard(
        self, values: dict[str, Any], record: dict[str, Any], prepared: Prepared, problems: list[str]
    ) -> None:
        out = prepared.fields
        address: dict[str, Any] = {}
        for name, value in values.items():
            try:
                if name in ("name", "description", "url", "title"):
                    out[name] = None if value is None else str(value).strip()
                elif name in ("status", "status_id"):
                    out["status_id"] = self._status(value)
                elif name.startswith("address."):
                    address[name.removeprefix("address.")] = value
                elif name == "addresses":
                    out["addresses"] = _addresses(value)
                elif name in ("emails", "phones", "urls"):
                    out[name] = _contact_items(name, value, "office" if name != "urls" else "url")
            except ValueError as exc:
                problems.append(str(exc))
        if address:
            out.setdefault("addresses", []).append(_address(address))
        if self.object_type == "contact":
            try:
                self._contact_inputs(record, prepared)
            except ValueError as exc:
                problems.append(str(exc))

    def _contact_inputs(self, record: dict[str, Any], prepared: Prepared) -> None:
        spec: Any = self.spec
        out = prepared.fields
        for kind, key in (("emails", "email"), ("phones", "phone")):
            input_key = getattr(spec, key, None)
            if input_key and not _empty(record.get(input_key)):
                extra = _contact_items(kind, record[input_key], getattr(spec, f"{key}_type"))
                out[kind] = dedupe(kind, [*out.get(kind, []), *extra])
        lead_key = getattr(spec, "associated_lead_id", None)
        if lead_key and not _empty(record.get(lead_key)):
            lead_id = str(record[lead_key]).strip()
            if not lead_id.startswith("lead_"):
                raise ValueError(f'associated_lead_id: "{lead_id}" is not a Close lead id (lead_…)')
            prepared.lead_id = lead_id

    def _status(self, value: Any) -> str:
        text = str(value).strip()
        if text.startswith("stat_"):
            return text
        for label, status_id in self.statuses.items():
            if label.casefold() == text.casefold():
                return status_id
        labels = ", ".join(f'"{label}"' for label in self.statuses)
        raise ValueError(f'status: unknown lead status "{text}" (statuses: {labels})')

    # -- custom fields ------------------------------------------------------------------------

    async def _custom(self, record: dict[str, Any], prepared: Prepared, problems: list[str]) -> None:
        wanted: list[tuple[CustomField, Any, bool]] = []
        for name, input_key in self.custom_inputs.items():
            if not _empty(record.get(input_key)):
                wanted.append((self.custom[name], record[input_key], False))
        for key, value in self.constants.items():
            if key in self.custom:
                wanted.append((self.custom[key], value, True))
        for custom_field, value, constant in wanted:
            try:
                coerced = await self.registry.coerce(custom_field, value)
            except CustomFieldValueError as exc:
                where = "constant" if constant else f'input "{self._input_of(custom_field)}"'
                problems.append(f"{where}: {exc}")
                continue
            prepared.fields[value_key(custom_field)] = coerced

    def _input_of(self, custom_field: CustomField) -> str:
        names = self.custom_inputs
        return next((names[n] for n, f in self.custom.items() if f is custom_field and n in names), "?")


def _recovery_rules(spec: WriteSpec) -> list[tuple[str, str]]:
    rules = []
    for prop in _DEFAULT_RECOVERY[spec.object_type]:
        input_key = getattr(spec, prop, None) if prop in ("email", "phone") else spec.mappings.get(prop)
        if input_key:
            rules.append((prop, input_key))
    return rules


def _contact_items(kind: str, value: Any, default_type: str) -> list[dict[str, Any]]:
    """emails / phones / urls from one value, a list, comma-separated text, or typed objects."""
    singular = kind[:-1]
    items = []
    for item in _split(value):
        if isinstance(item, dict):
            raw, kind_type = item.get(singular), item.get("type") or default_type
        else:
            raw, kind_type = item, default_type
        text = str(raw).strip() if raw is not None else ""
        if kind == "emails" and email_key(text) is None:
            raise ValueError(f'emails: "{text}" is not an email address')
        if kind == "phones" and phone_key(text) is None:
            raise ValueError(f'phones: "{text}" is not a phone number (use E.164, e.g. +14155550100)')
        if kind == "urls" and not text:
            raise ValueError("urls: empty url")
        items.append({singular: text, "type": str(kind_type)})
    return items


def _address(parts: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(parts) - set(ADDRESS_PARTS))
    if unknown:
        raise ValueError(
            f"addresses: unknown address keys {', '.join(unknown)} (use {', '.join(ADDRESS_PARTS)})"
        )
    address = {
        part: (None if _empty(parts.get(part)) else str(parts[part]).strip()) for part in ADDRESS_PARTS
    }
    address["label"] = address["label"] or "business"
    return address


def _addresses(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("addresses: expected a JSON object or list of objects") from None
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("addresses: expected an object or a list of objects")
    return [_address(item) for item in items]
