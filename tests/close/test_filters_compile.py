"""compile_query / search_body: filters become Advanced Filtering JSON (close-api.md §3.5)."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.close._custom_fields import CustomFieldRegistry, UnknownCustomField
from closeflow.close._errors import NotFound
from closeflow.close._filter_compile import compile_query, search_body
from closeflow.close._filters import And, Condition, Filter, FilterError, Not, Or
from closeflow.close._where import parse_where

FIELDS = [
    {"id": "cf_tier", "name": "Tier", "type": "choices", "choices": ["A", "B"]},
    {"id": "cf_score", "name": "Lead Score", "type": "number"},
    {"id": "cf_note", "name": "Note", "type": "text"},
    {"id": "cf_owner", "name": "Owner", "type": "user"},
    {"id": "cf_renewal", "name": "Renewal", "type": "date"},
]
STATUSES = {"Potential": "stat_pot", "Qualified": "stat_qual"}
LEAD = {"type": "object_type", "object_type": "lead"}


class Fetcher:
    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if path == "/custom_field_schema/lead/":
            return {"fields": FIELDS}
        if path == "/custom_field_schema/contact/":
            return {"fields": []}
        if path == "/user/":
            return {
                "data": [
                    {"id": "user_ann", "first_name": "Ann", "last_name": "Veal", "email": "ann@x.example"}
                ]
            }
        raise NotFound("Not found", status=404, method="GET", path=path)


async def compiled(where: str | Filter, object_type: str = "lead") -> dict[str, Any]:
    filter = parse_where(where) if isinstance(where, str) else where
    registry = CustomFieldRegistry(Fetcher(), object_types=("lead", "contact"))
    query = await compile_query(filter, object_type, registry, STATUSES)
    assert query["type"] == "and"
    assert query["queries"][0] == {"type": "object_type", "object_type": object_type}
    node: dict[str, Any] = query["queries"][1]
    return node


def regular(object_type: str, name: str) -> dict[str, str]:
    return {"type": "regular_field", "object_type": object_type, "field_name": name}


async def test_no_filter_selects_every_object_of_the_type() -> None:
    registry = CustomFieldRegistry(Fetcher())
    assert await compile_query(None, "lead", registry) == {"type": "and", "queries": [LEAD]}


async def test_status_labels_become_status_id_references() -> None:
    assert await compiled('status = "qualified"') == {
        "type": "field_condition",
        "field": regular("lead", "status_id"),
        "condition": {"type": "reference", "reference_type": "status.lead", "object_ids": ["stat_qual"]},
    }
    node = await compiled('status in ("Potential", "stat_other")')
    assert node["condition"]["object_ids"] == ["stat_pot", "stat_other"]


async def test_an_unknown_status_lists_the_statuses() -> None:
    with pytest.raises(FilterError) as caught:
        await compiled('status = "Qualifed"')
    assert str(caught.value) == (
        "unknown lead status \"Qualifed\"; did you mean \"Qualified\"? (statuses: 'Potential', 'Qualified')"
    )


async def test_text_equality_is_an_exact_value_and_inequality_negates_it() -> None:
    text = {"type": "text", "mode": "exact_value", "value": "Acme"}
    assert await compiled('name = "Acme"') == {
        "type": "field_condition",
        "field": regular("lead", "name"),
        "condition": text,
    }
    assert (await compiled('name != "Acme"'))["negate"] is True


async def test_contains_and_starts_with_pick_the_word_modes() -> None:
    assert (await compiled('description contains "big deal"'))["condition"]["mode"] == "full_words"
    assert (await compiled('name starts_with "Ac"'))["condition"]["mode"] == "beginning_of_words"


async def test_in_on_text_is_an_or_of_equalities() -> None:
    node = await compiled('name in ("Acme", "Bluth")')
    assert node["type"] == "or"
    assert [q["condition"]["value"] for q in node["queries"]] == ["Acme", "Bluth"]


async def test_exists_and_missing_use_the_exists_condition() -> None:
    exists = {"type": "field_condition", "field": regular("lead", "url"), "condition": {"type": "exists"}}
    assert await compiled("url exists") == exists
    assert await compiled("url missing") == {**exists, "negate": True}
    assert await compiled("url = null") == {**exists, "negate": True}


async def test_email_on_a_lead_is_a_has_related_contact_email_search() -> None:
    assert await compiled('email = "gob@example.com"') == {
        "type": "has_related",
        "this_object_type": "lead",
        "related_object_type": "contact_email",
        "related_query": {
            "type": "field_condition",
            "field": regular("contact_email", "email"),
            "condition": {"type": "text", "mode": "exact_value", "value": "gob@example.com"},
        },
    }


async def test_not_having_an_email_negates_the_relation_not_the_email() -> None:
    node = await compiled('email != "gob@example.com"')
    assert node["negate"] is True
    assert "negate" not in node["related_query"]
    missing = await compiled("phone missing")
    assert missing["negate"] is True
    assert missing["related_query"]["condition"] == {"type": "exists"}


async def test_phone_on_a_contact_and_address_city_on_a_lead() -> None:
    phone = await compiled('phone = "+14155550100"', "contact")
    assert (phone["this_object_type"], phone["related_object_type"]) == ("contact", "contact_phone")
    city = await compiled('address.city = "Austin"')
    assert city["related_object_type"] == "address"
    assert city["related_query"]["field"] == regular("address", "city")


async def test_contact_lead_id_matches_through_the_parent_lead() -> None:
    assert await compiled('lead_id = "lead_1"', "contact") == {
        "type": "has_related",
        "this_object_type": "contact",
        "related_object_type": "lead",
        "related_query": {"type": "id", "value": "lead_1"},
    }


async def test_date_operators_map_to_moment_ranges_over_the_day_or_instant() -> None:
    def bounds(node: dict[str, Any]) -> dict[str, str]:
        return {k: v["value"] for k, v in node["condition"].items() if k != "type"}

    assert bounds(await compiled('date_updated < "2026-01-01"')) == {"before": "2026-01-01T00:00:00"}
    assert bounds(await compiled('date_updated <= "2026-01-01"')) == {"before": "2026-01-02T00:00:00"}
    assert bounds(await compiled('date_updated > "2026-01-01"')) == {"on_or_after": "2026-01-02T00:00:00"}
    assert bounds(await compiled('date_updated = "2026-01-01"')) == {
        "on_or_after": "2026-01-01T00:00:00",
        "before": "2026-01-02T00:00:00",
    }
    # An instant with an offset is converted to UTC; ">" starts one microsecond later.
    assert bounds(await compiled('date_created > "2026-01-01T09:00:00+02:00"')) == {
        "on_or_after": "2026-01-01T07:00:00.000001"
    }


async def test_a_bad_date_says_which_forms_are_accepted() -> None:
    with pytest.raises(FilterError) as caught:
        await compiled('date_updated < "last week"')
    assert str(caught.value) == (
        "\"date_updated <\" needs an ISO date or datetime (2026-01-31, 2026-01-31T09:00:00Z), not 'last week'"
    )


async def test_created_by_takes_a_user_email() -> None:
    node = await compiled('created_by = "ann@x.example"')
    assert node["condition"] == {"type": "reference", "reference_type": "user", "object_ids": ["user_ann"]}


async def test_custom_fields_compile_by_type() -> None:
    tier = await compiled('custom."tier" in ("a", "B")')
    assert tier == {
        "type": "field_condition",
        "field": {"type": "custom_field", "custom_field_id": "cf_tier"},
        "condition": {"type": "term", "values": ["A", "B"]},
    }
    score = await compiled('custom."Lead Score" >= 50')
    assert score["condition"] == {"type": "number_range", "gte": 50}
    assert (await compiled('custom."Lead Score" = "7"'))["condition"] == {
        "type": "number_range",
        "gte": 7,
        "lte": 7,
    }
    assert (await compiled('custom.cf_note contains "urgent"'))["condition"]["mode"] == "full_words"
    owner = await compiled('custom.Owner = "Ann Veal"')
    assert owner["condition"] == {"type": "reference", "reference_type": "user", "object_ids": ["user_ann"]}
    renewal = await compiled('custom.Renewal < "2026-06-01"')
    assert renewal["condition"]["before"] == {"type": "fixed_utc", "value": "2026-06-01T00:00:00"}


async def test_and_or_not_nest_and_not_sets_negate() -> None:
    node = await compiled(
        And([Or([Condition("url", "exists"), Condition("name", "missing")]), Not(Condition("url", "exists"))])
    )
    assert node["type"] == "and"
    assert node["queries"][0]["type"] == "or"
    assert node["queries"][1]["negate"] is True


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ('nmae = "x"', 'unknown lead field "nmae"; did you mean "name"? (fields: '),
        (
            'name < "x"',
            'operator "<" does not apply to lead field name (text); use one of =, !=, contains, starts_with, '
            "in, exists, missing",
        ),
        (
            'status contains "Q"',
            'operator "contains" does not apply to lead field status (status); use one of =, !=, in',
        ),
        (
            'custom.Tier > "A"',
            'operator ">" does not apply to lead custom field "Tier" (term); '
            "use one of =, !=, in, exists, missing",
        ),
        (
            'custom.Tier = "C"',
            '"custom.Tier =": lead custom field "Tier" (choices) cannot take "C": '
            'not one of the choices "A", "B"',
        ),
        (
            'custom."Lead Score" > "lots"',
            '"custom.Lead Score >": lead custom field "Lead Score" (number) cannot take "lots": not a number',
        ),
        ('created_by = "Nobody"', '"created_by = Nobody": no user has that email or name'),
        ("addresses_count > true", '"addresses_count >" needs a number, not True'),
    ],
)
async def test_every_bad_filter_says_which_field_operator_or_value_is_wrong(where: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        await compiled(where)
    assert str(caught.value).startswith(message)


async def test_an_unknown_custom_field_surfaces_the_registrys_suggestion() -> None:
    with pytest.raises(UnknownCustomField, match='unknown lead custom field "Teir"; did you mean "Tier"'):
        await compiled('custom.Teir = "A"')


async def test_only_leads_and_contacts_can_be_searched() -> None:
    with pytest.raises(FilterError, match='cannot search "task"; Advanced Filtering returns lead or contact'):
        await compile_query(None, "task", CustomFieldRegistry(Fetcher()))


def test_condition_rejects_values_that_do_not_fit_the_operator() -> None:
    with pytest.raises(FilterError, match='"name in" needs a non-empty list of values'):
        Condition("name", "in", ())
    with pytest.raises(FilterError, match='"url exists" takes no value'):
        Condition("url", "exists", "x")
    with pytest.raises(FilterError, match='"name =" takes one value; use "in" for a list'):
        Condition("name", "=", ("a", "b"))
    with pytest.raises(FilterError, match='unknown operator "~"'):
        Condition("name", "~", "a")  # type: ignore[arg-type]


def test_search_body_wraps_the_query_with_fields_sort_and_limit() -> None:
    query = {"type": "and", "queries": [LEAD]}
    assert search_body(
        query, "lead", fields=["id", "display_name", "custom.cf_tier"], sort="-date_updated"
    ) == {
        "query": query,
        "_fields": {"lead": ["id", "display_name", "custom.cf_tier"]},
        "_limit": 200,
        "sort": [{"direction": "desc", "field": regular("lead", "date_updated")}],
    }
    body = search_body(query, "contact", sort=["name", "-date_created"], limit=50)
    assert body["_fields"] == {"contact": ["id"]}
    assert [s["direction"] for s in body["sort"]] == ["asc", "desc"]
    assert body["_limit"] == 50


def test_search_body_refuses_unsortable_fields() -> None:
    with pytest.raises(FilterError) as caught:
        search_body({}, "lead", sort="status")
    assert str(caught.value) == (
        'cannot sort leads by "status"; sortable fields: addresses_count, all_urls_count, date_created, '
        "date_updated, description, display_name, name, num_upcoming_meetings, url"
    )
