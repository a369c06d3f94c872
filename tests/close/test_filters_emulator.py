"""Filters and the registry against the in-process emulator: Close's answer equals a Python evaluation.

Each filter is compiled with ``compile_query``, run through ``POST /data/search/`` (all cursor pages)
and compared, as an exact id set, with the same filter evaluated here over the records read back
from ``GET /lead/`` and ``GET /contact/``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from closeflow.close._custom_fields import CustomFieldRegistry
from closeflow.close._errors import NotFound
from closeflow.close._filter_compile import compile_query, lead_statuses, search_body
from closeflow.close._filters import And, Condition, Filter, Not, Or
from closeflow.close._where import parse_where

try:
    from closeflow.emulator import Emulator
except ImportError:  # the emulator is built alongside; these tests wait for it
    pytest.skip("closeflow.emulator.Emulator is not importable yet", allow_module_level=True)


class HttpFetcher:
    """The registry's one need (``get``) over a plain httpx2 client."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.get(path.lstrip("/"), params=params)
        if response.status_code == 404:
            raise NotFound("Not found", status=404, method="GET", path=path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Org:
    http: httpx2.AsyncClient
    registry: CustomFieldRegistry
    statuses: dict[str, str]
    leads: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    fields: dict[str, str]  # name -> id

    def contacts_of(self, lead: dict[str, Any]) -> list[dict[str, Any]]:
        return [c for c in self.contacts if c["lead_id"] == lead["id"]]


async def _all(http: httpx2.AsyncClient, path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = (await http.get(path, params={"_skip": len(rows), "_limit": 100})).json()
        rows += page["data"]
        if not page.get("has_more") or not page["data"]:
            return rows


async def _create_field(http: httpx2.AsyncClient, kind: str, body: dict[str, Any]) -> str:
    response = await http.post(f"custom_field/{kind}/", json=body)
    assert response.status_code in (200, 201), response.text
    field_id: str = response.json()["id"]
    return field_id


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    emu = Emulator(seed=7, leads=50)
    base = str(emu.base_url).rstrip("/") + "/"
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=base, auth=httpx2.BasicAuth(emu.api_key, "")
    ) as http:
        fields = {
            "Tier": await _create_field(
                http, "lead", {"name": "Tier", "type": "choices", "choices": ["A", "B", "C"]}
            ),
            "Score": await _create_field(http, "lead", {"name": "Score", "type": "number"}),
            "Renewal": await _create_field(http, "lead", {"name": "Renewal", "type": "date"}),
            "Territory": await _create_field(
                http,
                "shared",
                {"name": "Territory", "type": "text", "associations": [{"object_type": "lead"}]},
            ),
        }
        leads = await _all(http, "lead/")
        for index, lead in enumerate(leads):
            values: dict[str, Any] = {f"custom.{fields['Score']}": index * 7 % 100}
            if index % 4:
                values[f"custom.{fields['Tier']}"] = "ABC"[index % 3]
            if index % 3:
                values[f"custom.{fields['Renewal']}"] = f"2026-0{1 + index % 6}-15"
            if index % 5 == 0:
                values[f"custom.{fields['Territory']}"] = "North America" if index % 2 else "Western Europe"
            response = await http.put(f"lead/{lead['id']}/", json=values)
            assert response.status_code == 200, response.text
        fetcher = HttpFetcher(http)
        yield Org(
            http=http,
            registry=CustomFieldRegistry(fetcher, object_types=("lead", "contact")),
            statuses=await lead_statuses(fetcher),
            leads=await _all(http, "lead/"),
            contacts=await _all(http, "contact/"),
            fields=fields,
        )


async def search_ids(org: Org, filter: Filter | None, object_type: str = "lead") -> set[str]:
    query = await compile_query(filter, object_type, org.registry, org.statuses)
    body = search_body(query, object_type, fields=["id"], limit=20)
    ids: list[str] = []
    while True:
        response = await org.http.post("data/search/", json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [row["id"] for row in page["data"]]
        if not page.get("cursor"):
            break
        body = {**body, "cursor": page["cursor"]}
    assert len(ids) == len(set(ids)), "a record came back twice across cursor pages"
    return set(ids)


# -- the same filter, evaluated in Python ---------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _text(op: str, have: Any, want: Any) -> bool:
    if have is None or have == "":
        return False
    if op == "=":
        return str(have).casefold() == str(want).casefold()
    if op == "contains":
        return set(_words(str(want))) <= set(_words(str(have)))
    return all(any(w.startswith(p) for w in _words(str(have))) for p in _words(str(want)))


def _moment(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(op: str, have: Any, want: Any) -> bool:
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}[op]
    return bool(compare(have, want))


def evaluate(org: Org, filter: Filter, record: dict[str, Any], object_type: str) -> bool:
    if isinstance(filter, And):
        return all(evaluate(org, f, record, object_type) for f in filter.items)
    if isinstance(filter, Or):
        return any(evaluate(org, f, record, object_type) for f in filter.items)
    if isinstance(filter, Not):
        return not evaluate(org, filter.item, record, object_type)
    c = filter
    if c.op == "!=":
        return not evaluate(org, Condition(c.field, "=", c.value), record, object_type)
    if c.field in ("email", "phone"):
        contacts = org.contacts_of(record) if object_type == "lead" else [record]
        key = {"email": "emails", "phone": "phones"}[c.field]
        values = [item[c.field] for contact in contacts for item in contact.get(key) or []]
        if c.op == "exists":
            return bool(values)
        return any(_text(c.op, v, c.value) for v in values)
    if c.field == "status":
        return bool(record["status_id"] == org.statuses[str(c.value)])
    if c.field.startswith("custom."):
        value = record.get("custom." + org.fields[c.field.removeprefix("custom.")])
    else:
        value = record.get(c.field)
    if c.op == "exists":
        return value not in (None, "", [])
    if c.op == "missing":
        return value in (None, "", [])
    if value is None:
        return False
    if c.op == "in":
        assert isinstance(c.value, tuple)
        return any(evaluate(org, Condition(c.field, "=", v), record, object_type) for v in c.value)
    if isinstance(value, int | float):
        return _compare(c.op, value, c.value)
    if c.field.startswith("date_") or c.field == "custom.Renewal":
        return _compare(c.op, _moment(str(value)), _moment(str(c.value)))
    return _text(c.op, value, c.value)


def expected(org: Org, filter: Filter, object_type: str = "lead") -> set[str]:
    records = org.leads if object_type == "lead" else org.contacts
    return {r["id"] for r in records if evaluate(org, filter, r, object_type)}


# -- the tests ------------------------------------------------------------------------------


async def test_registry_loads_the_emulators_schema_including_shared_fields(org: Org) -> None:
    region = await org.registry.resolve("lead", "territory")
    assert (region.id, region.type, region.is_shared) == (org.fields["Territory"], "text", True)
    tier = await org.registry.resolve("lead", org.fields["Tier"])
    assert (tier.name, tier.choices) == ("Tier", ("A", "B", "C"))
    lead = org.leads[5]
    assert org.registry.by_name("lead", lead)["Score"] == lead[f"custom.{org.fields['Score']}"]


async def test_no_filter_returns_every_lead(org: Org) -> None:
    assert await search_ids(org, None) == {lead["id"] for lead in org.leads}
    assert len(org.leads) == 50


async def test_standard_field_filters_match_a_python_evaluation(org: Org) -> None:
    label = org.leads[0]["status_label"]
    first_word = _words(org.leads[1]["name"])[0][:3]
    cutoff = sorted(lead["date_created"] for lead in org.leads)[20]
    for where in [
        f'status = "{label}"',
        f'status != "{label}"',
        f'name starts_with "{first_word}"',
        f'name = "{org.leads[2]["name"]}"',
        f'date_created < "{cutoff}"',
        f'date_created >= "{cutoff}"',
        f'date_created > "{cutoff}"',
        f'date_created <= "{cutoff}"',
        f'date_created = "{cutoff}"',
        "description exists",
    ]:
        filter = parse_where(where)
        want = expected(org, filter)
        assert await search_ids(org, filter) == want, where
    assert 0 < len(expected(org, parse_where(f'status = "{label}"'))) < 50


async def test_email_and_phone_filters_reach_through_contacts(org: Org) -> None:
    with_email = next(c for c in org.contacts if c.get("emails"))
    with_phone = next(c for c in org.contacts if c.get("phones"))
    email = with_email["emails"][0]["email"]
    domain = email.split("@")[1]
    phone = with_phone["phones"][0]["phone"]
    for where in [
        f'email = "{email.upper()}"',
        f'email contains "{domain}"',
        f'phone = "{phone}"',
        f'email != "{email}"',
        "email exists",
        f'(email contains "{domain}" or phone = "{phone}") and not name starts_with "zzz"',
    ]:
        filter = parse_where(where)
        assert await search_ids(org, filter) == expected(org, filter), where
    assert with_email["lead_id"] in await search_ids(org, parse_where(f'email = "{email}"'))
    assert await search_ids(org, parse_where(f'email = "{email}"'), "contact") == expected(
        org, parse_where(f'email = "{email}"'), "contact"
    )


async def test_custom_field_filters_match_a_python_evaluation(org: Org) -> None:
    for where in [
        'custom.Tier = "a"',
        'custom.Tier in ("A", "C")',
        "custom.Tier missing",
        "custom.Score >= 50",
        "custom.Score = 14",
        "custom.Score <= 49",
        "custom.Score > 49",
        "custom.Score != 49",
        'custom.Tier = "B" and not custom.Score < 30',
        'custom.Renewal < "2026-03-15"',
        'custom.Renewal = "2026-02-15"',
        'custom.Territory contains "america"',
        "custom.Territory exists",
    ]:
        filter = parse_where(where)
        want = expected(org, filter)
        assert await search_ids(org, filter) == want, where
        assert want, f"{where} should match something in the seeded org"
        assert len(want) < len(org.leads), f"{where} should not match every lead"


async def test_email_in_a_list_finds_every_lead_with_one_of_the_emails() -> None:
    emu = Emulator(seed=7, leads=30)
    contacts = list(emu.org.objects("contact"))[:3]
    wanted = [c["emails"][0]["email"] for c in contacts if c.get("emails")]
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=httpx2.BasicAuth(emu.api_key, "")
    ) as http:
        registry = CustomFieldRegistry(HttpFetcher(http))
        query = await compile_query(Condition("email", "in", tuple(wanted)), "contact", registry)
        body = search_body(query, "contact", fields=["id"], limit=200)
        found = (await http.post("/data/search/", json=body)).json()["data"]
    truth = {
        c["id"] for c in emu.org.objects("contact") if {e["email"] for e in c.get("emails", [])} & set(wanted)
    }
    assert wanted and {row["id"] for row in found} == truth
