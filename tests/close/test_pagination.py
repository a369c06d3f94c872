"""Pagination: offset lists, search cursor walks, event cursors, and keyset walks that survive
Close's 10k-per-walk cap and expired cursors, yielding every record exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, CloseError, ValidationError

Handler = Callable[[httpx2.Request], httpx2.Response]


def _client(handler: Handler) -> CloseClient:
    return CloseClient(
        "api_test_key",
        base_url="https://close.test/api/v1",
        transport=httpx2.MockTransport(handler),
        clock=FakeClock(),
    )


async def _collect(iterator: Any) -> list[dict[str, Any]]:
    return [record async for record in iterator]


class OffsetList:
    def __init__(self, total: int, *, has_more_key: bool = True) -> None:
        self.records = [{"id": f"lead_{n:04d}"} for n in range(total)]
        self.has_more_key = has_more_key
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        skip, limit = int(params.get("_skip", 0)), int(params.get("_limit", 100))
        page = self.records[skip : skip + limit]
        body: dict[str, Any] = {"data": page}
        if self.has_more_key:
            body["has_more"] = skip + limit < len(self.records)
        return httpx2.Response(200, json=body)


async def test_offset_pagination_yields_every_record_once_in_exact_page_requests() -> None:
    server = OffsetList(250)
    async with _client(server) as client:
        records = await _collect(client.paginate("/lead/", {"_fields": "id"}, page_size=100))
    assert [r["id"] for r in records] == [f"lead_{n:04d}" for n in range(250)]
    assert [(p["_skip"], p["_limit"], p["_fields"]) for p in server.requests] == [
        ("0", "100", "id"),
        ("100", "100", "id"),
        ("200", "100", "id"),
    ]


async def test_offset_pagination_stops_after_one_page_when_has_more_is_absent() -> None:
    server = OffsetList(30, has_more_key=False)
    async with _client(server) as client:
        records = await _collect(client.paginate("/custom_object_type/"))
    assert len(records) == 30
    assert len(server.requests) == 1


async def test_offset_pagination_advances_by_what_came_back_not_what_was_asked() -> None:
    records = [{"id": f"task_{n}"} for n in range(7)]
    skips: list[int] = []

    def short_pages(request: httpx2.Request) -> httpx2.Response:
        skip = int(request.url.params["_skip"])
        skips.append(skip)
        page = records[skip : skip + 2]  # asked for 5, answers 2
        return httpx2.Response(200, json={"data": page, "has_more": skip + 2 < len(records)})

    async with _client(short_pages) as client:
        got = await _collect(client.paginate("/task/", page_size=5))
    assert [r["id"] for r in got] == [r["id"] for r in records]
    assert skips == [0, 2, 4, 6]


async def test_search_follows_the_cursor_until_null_with_a_default_limit_of_200() -> None:
    bodies: list[dict[str, Any]] = []
    pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        bodies.append(body)
        ids, cursor = pages[body.get("cursor")]
        return httpx2.Response(200, json={"data": [{"id": i} for i in ids], "cursor": cursor})

    query = {"query": {"type": "object_type", "object_type": "lead"}}
    async with _client(handler) as client:
        got = await _collect(client.search(query))
    assert [r["id"] for r in got] == ["a", "b", "c", "d", "e"]
    assert [b.get("cursor") for b in bodies] == [None, "c1", "c2"]
    assert all(b["_limit"] == 200 and b["query"] == query["query"] for b in bodies)


async def test_events_follow_cursor_next_and_repeat_filters_except_date_updated() -> None:
    seen: list[dict[str, str]] = []
    pages = {None: (["ev_3", "ev_2"], "n1"), "n1": (["ev_1"], None)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        params = dict(request.url.params)
        seen.append(params)
        ids, cursor = pages[params.get("_cursor")]
        return httpx2.Response(
            200, json={"data": [{"id": i} for i in ids], "cursor_next": cursor, "cursor_previous": None}
        )

    params = {"object_type": "lead", "date_updated__gte": "2026-01-01T00:00:00"}
    async with _client(handler) as client:
        got = await _collect(client.events(params))
    assert [r["id"] for r in got] == ["ev_3", "ev_2", "ev_1"]
    assert seen == [params, {"object_type": "lead", "_cursor": "n1"}]


def _moment(n: int) -> str:
    return f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.123000+00:00"


class SearchServer:
    """A mock ``/data/search/`` over leads sorted by (date_updated, id), with Close's walk cap
    (``max_results`` per walk, then a null cursor) and optional cursor expiry."""

    def __init__(
        self, records: list[dict[str, Any]], *, max_results: int, expire_on: set[int] | None = None
    ) -> None:
        self.records = sorted(records, key=lambda r: (r["date_updated"], r["id"]))
        self.max_results = max_results
        self.expire_on = expire_on or set()
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if len(self.bodies) in self.expire_on and "cursor" in body:
            return httpx2.Response(400, json={"field-errors": {"cursor": "Expired cursor"}})
        since = None
        for node in body["query"]["queries"]:
            if node["type"] == "field_condition":
                since = node["condition"]["on_or_after"]["value"]
        matching = [r for r in self.records if since is None or r["date_updated"] >= since]
        offset, served = (int(part) for part in body.get("cursor", "0:0").split(":"))
        size = min(body["_limit"], self.max_results - served)
        page = matching[offset : offset + size]
        served += len(page)
        more = offset + len(page) < len(matching) and served < self.max_results
        fields = body["_fields"]["lead"]
        data = [{k: v for k, v in r.items() if k in fields} | {"__object_type": "lead"} for r in page]
        return httpx2.Response(
            200, json={"data": data, "cursor": f"{offset + len(page)}:{served}" if more else None}
        )


def _leads(count: int, per_moment: int) -> list[dict[str, Any]]:
    # Several leads share each date_updated, so walks end in the middle of a moment.
    return [
        {"id": f"lead_{n:04d}", "date_updated": _moment(n // per_moment), "display_name": f"Lead {n}"}
        for n in range(count)
    ]


async def test_keyset_walk_survives_the_per_walk_cap_with_no_record_lost_or_repeated() -> None:
    leads = _leads(230, per_moment=4)
    server = SearchServer(leads, max_results=25)
    async with _client(server) as client:
        got = await _collect(client.keyset("lead", fields=["display_name"], page_size=10))
    ids = [r["id"] for r in got]
    assert len(ids) == 230
    assert set(ids) == {lead["id"] for lead in leads}
    assert all(r["display_name"].startswith("Lead ") for r in got)
    assert len(server.bodies) > 230 // 25  # it had to re-query past the cap
    assert all(b["_fields"]["lead"][:2] == ["id", "date_updated"] for b in server.bodies)


async def test_keyset_walk_recovers_from_expired_cursors_mid_walk() -> None:
    leads = _leads(120, per_moment=3)
    server = SearchServer(leads, max_results=10_000, expire_on={3, 4, 9})
    async with _client(server) as client:
        got = await _collect(client.keyset("lead", page_size=10))
    ids = [r["id"] for r in got]
    assert len(ids) == 120
    assert set(ids) == {lead["id"] for lead in leads}


async def test_keyset_gets_past_a_moment_shared_by_more_records_than_a_walk_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crowded = _leads(12, per_moment=12)
    later = [{"id": f"lead_z{n}", "date_updated": _moment(5 + n), "display_name": "z"} for n in range(3)]
    server = SearchServer(crowded + later, max_results=10)
    async with _client(server) as client:
        got = await _collect(client.keyset("lead", page_size=5))
    # 12 leads at one moment exceed the 10-per-walk cap: 2 of them are unreachable without an
    # id cursor, which Close does not offer. The walk says so, then reads everything after.
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == 13
    assert {f"lead_z{n}" for n in range(3)} <= set(ids)
    assert "skipping past that moment" in caplog.text


async def test_keyset_sends_the_object_type_the_query_the_sort_and_since() -> None:
    server = SearchServer(_leads(3, per_moment=1), max_results=100)
    caller_query = {"type": "text", "value": "Acme", "mode": "full_words"}
    async with _client(server) as client:
        await _collect(client.keyset("lead", query=caller_query, since="2026-01-01T00:00:01.123000+00:00"))
    first = server.bodies[0]
    assert first["query"]["queries"][:2] == [{"type": "object_type", "object_type": "lead"}, caller_query]
    assert first["query"]["queries"][2]["condition"] == {
        "type": "moment_range",
        "on_or_after": {"type": "fixed_utc", "value": "2026-01-01T00:00:01.123000+00:00"},
    }
    assert first["sort"] == [
        {
            "direction": "asc",
            "field": {"type": "regular_field", "object_type": "lead", "field_name": "date_updated"},
        }
    ]


async def test_keyset_ends_with_exactly_one_extra_query_when_nothing_was_capped() -> None:
    server = SearchServer(_leads(25, per_moment=2), max_results=10_000)
    async with _client(server) as client:
        got = await _collect(client.keyset("lead", page_size=10))
    assert len(got) == 25
    assert len(server.bodies) == 3 + 1  # three pages, then one re-query that finds nothing new


async def test_keyset_raises_other_validation_errors() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json={"field-errors": {"query": "Invalid field"}})

    async with _client(refuse) as client:
        with pytest.raises(ValidationError, match="query: Invalid field"):
            await _collect(client.keyset("lead"))


async def test_keyset_refuses_object_types_it_cannot_sort_by_date_updated() -> None:
    async with _client(lambda request: httpx2.Response(200, json={})) as client:
        with pytest.raises(CloseError, match="keyset paging works on"):
            await _collect(client.keyset("opportunity"))
