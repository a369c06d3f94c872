"""POST /data/search/ as Close's Advanced Filtering API answers it (§3.5, §3.2)."""

from __future__ import annotations

from typing import Any

import pytest
from test_search_fakes import DictSource, bluth_source, date

from closeflow._clock import FakeClock
from closeflow.emulator._search import SearchEngine, SearchError


def _engine(clock: FakeClock | None = None, **kwargs: Any) -> SearchEngine:
    return SearchEngine(clock or FakeClock(), current_user_id="user_me", **kwargs)


def _ids(response: dict[str, Any]) -> list[str]:
    return [row["id"] for row in response["data"]]


def _of(object_type: str, *queries: dict[str, Any]) -> dict[str, Any]:
    return {"type": "and", "queries": [{"type": "object_type", "object_type": object_type}, *queries]}


def _many_leads(n: int) -> DictSource:
    source = DictSource()
    for i in range(n):
        source.add("lead", {"id": f"lead_{i:05d}", "name": f"Lead {i}", "date_created": date(1 + i % 20)})
    return source


def test_rows_carry_only_object_type_and_id_without_fields() -> None:
    response = _engine().search({"query": _of("contact")}, bluth_source())
    assert response["data"][0] == {"__object_type": "contact", "id": "cont_bob"}
    assert response["cursor"] is None
    assert "count" not in response


def test_default_order_is_date_created_descending_then_id() -> None:
    response = _engine().search({"query": _of("lead")}, bluth_source())
    assert _ids(response) == ["lead_b", "lead_c", "lead_a"]


def test_query_without_object_type_returns_leads() -> None:
    response = _engine().search({"query": {"type": "match_all"}}, bluth_source())
    assert sorted(_ids(response)) == ["lead_a", "lead_b", "lead_c"]


def test_or_of_object_types_returns_both_kinds() -> None:
    query = {
        "type": "or",
        "queries": [
            {"type": "object_type", "object_type": "lead"},
            {"type": "object_type", "object_type": "opportunity"},
        ],
    }
    response = _engine().search({"query": query, "sort": []}, bluth_source())
    assert _ids(response) == ["lead_a", "lead_b", "lead_c", "oppo_1", "oppo_2"]


def test_fields_select_regular_computed_and_custom_keys() -> None:
    body = {
        "query": _of("lead", {"type": "id", "value": "lead_a"}),
        "_fields": {"lead": ["id", "display_name", "addresses_count", "custom"]},
    }
    row = _engine().search(body, bluth_source())["data"][0]
    assert row == {
        "__object_type": "lead",
        "id": "lead_a",
        "display_name": "Bluth Company",
        "addresses_count": 1,
        "custom.cf_segment": ["SMB", "Enterprise"],
        "custom.cf_seats": 12,
    }


def test_fields_can_name_one_custom_field() -> None:
    body = {"query": _of("lead", {"type": "id", "value": "lead_b"}), "_fields": {"lead": ["custom.cf_seats"]}}
    assert _engine().search(body, bluth_source())["data"] == [
        {"__object_type": "lead", "id": "lead_b", "custom.cf_seats": 250}
    ]


def test_sort_ascending_breaks_ties_by_id() -> None:
    sort = [
        {
            "direction": "asc",
            "field": {"type": "regular_field", "object_type": "lead", "field_name": "date_created"},
        }
    ]
    response = _engine().search({"query": _of("lead"), "sort": sort}, bluth_source())
    assert _ids(response) == ["lead_a", "lead_b", "lead_c"]


def test_sort_descending_by_number_still_breaks_ties_by_id_ascending() -> None:
    source = _many_leads(0)
    for lead_id, value in [("lead_z", 5), ("lead_y", 9), ("lead_x", 5), ("lead_w", None)]:
        source.add("lead", {"id": lead_id, "value": value})
    sort = [
        {
            "direction": "desc",
            "field": {"type": "regular_field", "object_type": "lead", "field_name": "value"},
        }
    ]
    response = _engine().search({"query": _of("lead"), "sort": sort}, source)
    assert _ids(response) == ["lead_y", "lead_x", "lead_z", "lead_w"]


def test_sort_on_another_object_type_is_refused() -> None:
    sort = [
        {
            "direction": "asc",
            "field": {"type": "regular_field", "object_type": "contact", "field_name": "name"},
        }
    ]
    with pytest.raises(SearchError) as caught:
        _engine().search({"query": _of("lead"), "sort": sort}, bluth_source())
    assert "sort[0]" in str(caught.value)
    assert caught.value.field_errors == {"sort": "Invalid sort item at index 0"}


def test_cursor_walk_returns_every_match_once_in_order() -> None:
    source, engine = _many_leads(45), _engine()
    body: dict[str, Any] = {"query": _of("lead"), "_limit": 10}
    seen: list[str] = []
    pages = 0
    while True:
        response = engine.search(body, source)
        pages += 1
        seen += _ids(response)
        if response["cursor"] is None:
            break
        body = {"query": _of("lead"), "_limit": 10, "cursor": response["cursor"]}
    assert pages == 5
    assert len(seen) == 45 and len(set(seen)) == 45
    assert seen == _ids(engine.search({"query": _of("lead"), "_limit": 200}, source))[:45]


def test_walk_scans_the_source_once_not_once_per_page() -> None:
    source, engine = _many_leads(30), _engine()
    response = engine.search({"query": _of("lead"), "_limit": 10}, source)
    while response["cursor"]:
        response = engine.search({"_cursor": response["cursor"]}, source)
    assert source.scans == 1


def test_cursor_still_works_just_before_ttl_and_expires_exactly_at_ttl() -> None:
    clock, source = FakeClock(), _many_leads(30)
    engine = _engine(clock, cursor_ttl=30.0)
    first = engine.search({"query": _of("lead"), "_limit": 10}, source)
    clock.advance(29.999)
    second = engine.search({"cursor": first["cursor"]}, source)
    assert len(second["data"]) == 10
    clock.advance(30.0)
    with pytest.raises(SearchError) as caught:
        engine.search({"cursor": second["cursor"]}, source)
    assert caught.value.to_json() == {"errors": [], "field-errors": {"cursor": "Expired cursor"}}


def test_cursor_expires_at_exactly_ttl() -> None:
    clock, source = FakeClock(), _many_leads(30)
    engine = _engine(clock, cursor_ttl=30.0)
    first = engine.search({"query": _of("lead"), "_limit": 10}, source)
    clock.advance(30.0)
    with pytest.raises(SearchError):
        engine.search({"cursor": first["cursor"]}, source)


def test_expire_cursors_switch_expires_every_outstanding_cursor() -> None:
    source, engine = _many_leads(30), _engine()
    first = engine.search({"query": _of("lead"), "_limit": 10}, source)
    engine.expire_cursors()
    with pytest.raises(SearchError) as caught:
        engine.search({"cursor": first["cursor"]}, source)
    assert caught.value.field_errors == {"cursor": "Expired cursor"}


def test_unknown_cursor_is_reported_as_expired() -> None:
    with pytest.raises(SearchError) as caught:
        _engine().search({"cursor": "made-up"}, bluth_source())
    assert caught.value.field_errors == {"cursor": "Expired cursor"}


def test_walk_stops_at_max_results_with_a_null_cursor() -> None:
    source, engine = _many_leads(50), _engine(max_results=25)
    body: dict[str, Any] = {"query": _of("lead"), "_limit": 10, "include_counts": True}
    response = engine.search(body, source)
    assert response["count"] == {"total": 50, "limited": 25}
    seen = _ids(response)
    while response["cursor"]:
        response = engine.search({"cursor": response["cursor"]}, source)
        seen += _ids(response)
    assert len(seen) == 25


def test_results_limit_caps_the_walk() -> None:
    response = _engine().search(
        {"query": _of("lead"), "results_limit": 2, "_limit": 5, "include_counts": True}, bluth_source()
    )
    assert _ids(response) == ["lead_b", "lead_c"]
    assert response["cursor"] is None
    assert response["count"] == {"total": 3, "limited": 2}


def test_default_limit_is_100() -> None:
    response = _engine().search({"query": _of("lead")}, _many_leads(150))
    assert len(response["data"]) == 100
    assert response["cursor"] is not None


def test_limit_above_200_is_a_field_error() -> None:
    with pytest.raises(SearchError) as caught:
        _engine().search({"query": _of("lead"), "_limit": 201}, bluth_source())
    assert caught.value.to_json() == {
        "errors": [],
        "field-errors": {"_limit": "Input should be less than or equal to 200"},
    }


def test_limit_zero_returns_only_counts() -> None:
    response = _engine().search({"query": _of("lead"), "_limit": 0, "include_counts": True}, bluth_source())
    assert response == {"data": [], "cursor": None, "count": {"total": 3, "limited": 3}}


def test_records_deleted_during_a_walk_are_skipped() -> None:
    source, engine = _many_leads(20), _engine()
    first = engine.search({"query": _of("lead"), "_limit": 10}, source)
    remaining = [lead_id for lead_id in source.records["lead"] if lead_id not in _ids(first)]
    del source.records["lead"][remaining[0]]
    second = engine.search({"cursor": first["cursor"]}, source)
    assert len(second["data"]) == 9


def test_missing_query_is_a_field_error() -> None:
    with pytest.raises(SearchError) as caught:
        _engine().search({"_limit": 10}, bluth_source())
    assert caught.value.field_errors == {"query": "This field is required."}


def test_counts_are_repeated_on_cursor_pages_when_asked() -> None:
    source, engine = _many_leads(15), _engine()
    first = engine.search({"query": _of("lead"), "_limit": 10}, source)
    assert "count" not in first
    second = engine.search({"cursor": first["cursor"], "include_counts": True}, source)
    assert second["count"] == {"total": 15, "limited": 15}
    assert len(second["data"]) == 5
