"""Every Advanced Filtering node and condition type, with negate (§3.5)."""

from __future__ import annotations

from typing import Any

import pytest
from test_search_fakes import bluth_source

from closeflow._clock import FakeClock
from closeflow.emulator._search import SearchEngine, SearchError


def _find(query: dict[str, Any], object_type: str = "lead", *, clock: FakeClock | None = None) -> list[str]:
    body = {
        "query": {"type": "and", "queries": [{"type": "object_type", "object_type": object_type}, query]},
        "sort": [],
    }
    engine = SearchEngine(clock or FakeClock(), current_user_id="user_me")
    return [row["id"] for row in engine.search(body, bluth_source())["data"]]


def _regular(object_type: str, name: str, condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "field_condition",
        "condition": condition,
        **extra,
        "field": {"type": "regular_field", "object_type": object_type, "field_name": name},
    }


def _custom(field_id: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "field_condition",
        "field": {"type": "custom_field", "custom_field_id": field_id},
        "condition": condition,
    }


def _related(this: str, related: str, query: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "has_related",
        "this_object_type": this,
        "related_object_type": related,
        "related_query": query,
        **extra,
    }


def _text(value: str, mode: str = "phrase") -> dict[str, Any]:
    return {"type": "text", "mode": mode, "value": value}


def test_lead_by_contact_email_phrase() -> None:
    query = _related("lead", "contact_email", _regular("contact_email", "email", _text("gob@example.com")))
    assert _find(query) == ["lead_a"]


def test_contact_by_email_is_case_insensitive() -> None:
    query = _related("contact", "contact_email", _regular("contact_email", "email", _text("MB@Home.Example")))
    assert _find(query, "contact") == ["cont_michael"]


@pytest.mark.parametrize("phone", ["+18004445555", "8004445555", "+1 800-444-5555", "18004445555"])
def test_contact_phone_matches_e164_and_digits_only_input(phone: str) -> None:
    query = _related("contact", "contact_phone", _regular("contact_phone", "phone", _text(phone)))
    assert _find(query, "contact") == ["cont_gob"]


def test_contact_url_and_address_sub_objects() -> None:
    url = _related(
        "lead", "contact_url", _regular("contact_url", "url", _text("michael.example", "full_words"))
    )
    city = _related("lead", "address", _regular("address", "city", _text("newport", "beginning_of_words")))
    assert _find(url) == ["lead_a"]
    assert _find(city) == ["lead_a"]


def test_lead_with_an_opportunity_above_a_value() -> None:
    query = _related(
        "lead", "opportunity", _regular("opportunity", "value", {"type": "number_range", "gte": 1000})
    )
    assert _find(query) == ["lead_a"]


def test_contact_of_a_lead_in_a_status_through_related_lead() -> None:
    lead_status = _regular(
        "lead",
        "status_id",
        {"type": "reference", "reference_type": "status.lead", "object_ids": ["stat_won"]},
    )
    assert _find(_related("contact", "lead", lead_status), "contact") == ["cont_lucille"]


def test_has_related_contact_with_title_and_negated_has_related() -> None:
    title = _related("lead", "contact", _regular("contact", "title", _text("attorney", "full_words")))
    assert _find(title) == ["lead_c"]
    no_contacts_with_email = _related("lead", "contact_email", {"type": "match_all"}, negate=True)
    assert _find(no_contacts_with_email) == ["lead_b", "lead_c"]


def test_text_modes() -> None:
    def names(value: str, mode: str) -> list[str]:
        return _find(_regular("lead", "name", _text(value, mode)))

    assert names("company bluth", "full_words") == ["lead_a"]
    assert names("company bluth", "phrase") == []
    assert names("blu comp", "beginning_of_words") == ["lead_a"]
    assert names("bluth", "exact_value") == []
    assert names("BLUTH COMPANY", "exact_value") == ["lead_a"]


def test_text_node_searches_lead_and_its_contacts() -> None:
    assert _find({"type": "text", "value": "loblaw", "mode": "full_words"}) == ["lead_c"]
    assert _find({"type": "text", "value": "banana"}) == ["lead_a"]
    assert _find({"type": "text", "value": "8004445555"}) == ["lead_a"]


def test_id_node_and_its_negation() -> None:
    assert _find({"type": "id", "value": "lead_b"}) == ["lead_b"]
    assert _find({"type": "id", "value": "lead_b", "negate": True}) == ["lead_a", "lead_c"]


def test_or_node_and_negated_and_node() -> None:
    either = {"type": "or", "queries": [{"type": "id", "value": "lead_a"}, {"type": "id", "value": "lead_c"}]}
    assert _find(either) == ["lead_a", "lead_c"]
    assert _find({**either, "type": "and", "negate": True}) == ["lead_a", "lead_b", "lead_c"]
    assert _find({**either, "negate": True}) == ["lead_b"]


def test_custom_multi_value_field_matches_any_element() -> None:
    assert _find(_custom("cf_segment", {"type": "term", "values": ["Enterprise"]})) == ["lead_a"]
    assert _find(_custom("cf_segment", {"type": "term", "values": ["SMB"]})) == ["lead_a", "lead_b"]


def test_custom_number_range_bounds() -> None:
    assert _find(_custom("cf_seats", {"type": "number_range", "gt": 12})) == ["lead_b"]
    assert _find(_custom("cf_seats", {"type": "number_range", "gte": 12, "lte": 250})) == ["lead_a", "lead_b"]
    assert _find(_custom("cf_seats", {"type": "number_range", "lt": 12})) == []


def test_exists_and_negated_exists() -> None:
    assert _find(_custom("cf_seats", {"type": "exists"})) == ["lead_a", "lead_b"]
    assert _find({**_custom("cf_seats", {"type": "exists"}), "negate": True}) == ["lead_c"]
    assert _find(_regular("lead", "description", {"type": "exists"})) == ["lead_a"]


def test_boolean_condition() -> None:
    assert _find(_regular("lead", "is_vip", {"type": "boolean", "value": True})) == ["lead_a"]
    assert _find(_regular("lead", "is_vip", {"type": "boolean", "value": False})) == ["lead_b"]


def test_current_user_condition() -> None:
    assert _find(_regular("lead", "created_by", {"type": "current_user"})) == ["lead_a"]


def test_computed_counts() -> None:
    assert _find(_regular("lead", "addresses_count", {"type": "number_range", "gte": 1})) == ["lead_a"]
    two_emails = _regular("contact", "emails_count", {"type": "number_range", "gte": 2})
    assert _find(two_emails, "contact") == ["cont_michael"]
    assert _find(_regular("lead", "display_name", _text("untitled", "full_words"))) == ["lead_c"]


@pytest.mark.parametrize(
    "moment",
    [
        "2025-01-02",
        "2025-01-02T00:00:00",
        "2025-01-02T00:00:00Z",
        "2025-01-02T00:00:00.000000+0000",
        "2025-01-02T00:00:00.000000+00:00",
        "2025-01-02T00:00",
        "2025-01-02T01:00:00+01:00",
    ],
)
def test_moment_range_parses_every_iso_form(moment: str) -> None:
    query = _regular(
        "lead",
        "date_created",
        {"type": "moment_range", "on_or_after": {"type": "fixed_utc", "value": moment}},
    )
    assert _find(query) == ["lead_b", "lead_c"]


def test_moment_range_before_is_exclusive_and_local_date_end_is_inclusive() -> None:
    before = {"type": "moment_range", "before": {"type": "fixed_utc", "value": "2025-01-02T00:00:00"}}
    assert _find(_regular("lead", "date_created", before)) == ["lead_a"]
    day = {
        "type": "moment_range",
        "on_or_after": {"type": "fixed_local_date", "value": "2025-01-02"},
        "before": {"type": "fixed_local_date", "value": "2025-01-02", "which": "end"},
    }
    assert _find(_regular("lead", "date_created", day)) == ["lead_b", "lead_c"]


def test_moment_range_relative_to_now() -> None:
    clock = FakeClock(start=1_736_208_000.0)  # 2025-01-07T00:00:00Z
    last_three_days = {
        "type": "moment_range",
        "on_or_after": {
            "type": "offset",
            "direction": "past",
            "moment": {"type": "now"},
            "offset": {"days": 3},
        },
    }
    assert _find(_regular("lead", "date_updated", last_three_days), clock=clock) == ["lead_a", "lead_c"]
    until_now = {"type": "moment_range", "before": {"type": "now"}}
    assert _find(_regular("lead", "date_updated", until_now), clock=clock) == ["lead_a", "lead_b"]


def test_condition_on_another_objects_field_does_not_match_directly() -> None:
    assert _find(_regular("contact", "name", _text("gob", "full_words"))) == []


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"type": "nope"}, "'nope'"),
        ({"type": "and"}, "'queries'"),
        ({"type": "and", "queries": [{"type": "id"}]}, "query.queries[0]"),
        ({"type": "object_type", "object_type": "activity.email"}, "activity.email"),
        (
            {
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "name"},
                "condition": {"type": "fuzzy"},
            },
            "'fuzzy'",
        ),
        (
            {
                "type": "field_condition",
                "field": {"type": "custom_field", "custom_field_id": "cf_missing"},
                "condition": {"type": "exists"},
            },
            "cf_missing",
        ),
        (
            {
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "name"},
                "condition": {"type": "text", "value": "x", "mode": "sounds_like"},
            },
            "sounds_like",
        ),
        (
            {
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "d"},
                "condition": {"type": "moment_range", "before": {"type": "fixed_utc", "value": "yesterday"}},
            },
            "'yesterday'",
        ),
        (
            {
                "type": "field_condition",
                "field": {"type": "regular_field", "object_type": "lead", "field_name": "n"},
                "condition": {"type": "number_range"},
            },
            "number_range",
        ),
        ({"type": "saved_search", "saved_search_id": "save_x"}, "save_x"),
        ({"type": "id", "value": "lead_a", "negate": "yes"}, "negate"),
    ],
)
def test_malformed_queries_name_the_bad_part(query: dict[str, Any], named: str) -> None:
    with pytest.raises(SearchError) as caught:
        SearchEngine(FakeClock()).search({"query": query}, bluth_source())
    assert named in str(caught.value)
    assert caught.value.to_json()["errors"] or caught.value.to_json()["field-errors"]
