"""CustomFieldRegistry: loading Close's field schema and resolving fields by name or id (close-api.md §5)."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.close._custom_fields import (
    AmbiguousCustomField,
    CustomField,
    CustomFieldRegistry,
    UnknownCustomField,
    value_key,
)
from closeflow.close._errors import ConfigError, NotFound

SOURCE = {"id": "cf_source", "name": "Lead Source", "type": "choices", "choices": ["Web", "Referral"]}
SCORE = {"id": "cf_score", "name": "Lead Score", "type": "number"}
LEGACY = {"id": "lcf_legacy", "name": "Old Field", "type": "text"}
SHARED = {"id": "cf_region", "name": "Region", "type": "text", "is_shared": True}


class FakeFetcher:
    """Answers GETs from a path table; a missing path is a 404, like Close's."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append((path, params))
        answer = self.routes.get(path)
        if answer is None:
            raise NotFound("Not found", status=404, method="GET", path=path)
        if callable(answer):
            result: dict[str, Any] = answer(params or {})
            return result
        return dict(answer)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


def schemas(lead: list[dict[str, Any]], contact: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "/custom_field_schema/lead/": {"fields": lead},
        "/custom_field_schema/contact/": {"fields": contact or []},
        "/custom_field_schema/opportunity/": {"fields": []},
    }


async def test_load_reads_the_schema_of_each_object_type_once() -> None:
    fetcher = FakeFetcher(
        schemas([SOURCE, SCORE, SHARED], [{"id": "cf_role", "name": "Role", "type": "text"}])
    )
    registry = CustomFieldRegistry(fetcher)
    await registry.load()

    assert fetcher.paths() == [
        "/custom_field_schema/lead/",
        "/custom_field_schema/contact/",
        "/custom_field_schema/opportunity/",
    ]
    assert [f.name for f in registry.fields("lead")] == ["Lead Source", "Lead Score", "Region"]
    assert registry.fields("lead")[0] == CustomField(
        id="cf_source",
        name="Lead Source",
        type="choices",
        object_type="lead",
        accepts_multiple_values=False,
        choices=("Web", "Referral"),
        is_shared=False,
    )
    assert registry.fields("lead")[2].is_shared is True
    assert [f.id for f in registry.fields("contact")] == ["cf_role"]


async def test_load_falls_back_to_the_per_type_list_plus_associated_shared_fields_when_schema_is_404() -> (
    None
):
    def lead_list(params: dict[str, Any]) -> dict[str, Any]:
        rows = [SOURCE, SCORE, LEGACY]
        skip, limit = params["_skip"], params["_limit"]
        return {"data": rows[skip : skip + limit], "has_more": skip + limit < len(rows)}

    shared = {**SHARED, "associations": [{"object_type": "lead"}]}
    other_shared = {
        "id": "cf_x",
        "name": "Contact Only",
        "type": "text",
        "associations": [{"object_type": "contact"}],
    }
    fetcher = FakeFetcher(
        {
            "/custom_field/lead/": lead_list,
            "/custom_field/shared/": {"data": [shared, other_shared], "has_more": False},
        }
    )
    registry = CustomFieldRegistry(fetcher, object_types=("lead",))
    await registry.load()

    assert [f.id for f in registry.fields("lead")] == ["cf_source", "cf_score", "lcf_legacy", "cf_region"]
    assert registry.fields("lead")[3].is_shared is True
    assert fetcher.paths() == ["/custom_field_schema/lead/", "/custom_field/lead/", "/custom_field/shared/"]


async def test_resolve_by_id_including_legacy_prefixes() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([SOURCE, LEGACY])))
    assert (await registry.resolve("lead", "cf_source")).name == "Lead Source"
    assert (await registry.resolve("lead", "lcf_legacy")).name == "Old Field"


async def test_resolve_by_exact_name_then_case_insensitive_name() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([SOURCE, SCORE])))
    assert (await registry.resolve("lead", "Lead Score")).id == "cf_score"
    assert (await registry.resolve("lead", "lead score")).id == "cf_score"


async def test_exact_name_wins_over_a_case_insensitive_twin() -> None:
    twin = {"id": "cf_twin", "name": "lead score", "type": "text"}
    registry = CustomFieldRegistry(FakeFetcher(schemas([SCORE, twin])))
    assert (await registry.resolve("lead", "lead score")).id == "cf_twin"
    assert (await registry.resolve("lead", "Lead Score")).id == "cf_score"


async def test_names_differing_only_by_case_are_ambiguous_for_a_third_spelling() -> None:
    twin = {"id": "cf_twin", "name": "lead score", "type": "text"}
    registry = CustomFieldRegistry(FakeFetcher(schemas([SCORE, twin])))
    with pytest.raises(AmbiguousCustomField) as caught:
        await registry.resolve("lead", "LEAD SCORE")
    assert str(caught.value) == (
        'lead custom field "LEAD SCORE" is ambiguous: "Lead Score" (cf_score), "lead score" (cf_twin); '
        "use the field id instead"
    )


async def test_unknown_name_reloads_once_and_finds_a_field_added_since() -> None:
    routes = schemas([SOURCE])
    fetcher = FakeFetcher(routes)
    registry = CustomFieldRegistry(fetcher, object_types=("lead",))
    await registry.load()
    routes["/custom_field_schema/lead/"] = {"fields": [SOURCE, SCORE]}

    assert (await registry.resolve("lead", "Lead Score")).id == "cf_score"
    assert fetcher.paths().count("/custom_field_schema/lead/") == 2


async def test_unknown_name_after_one_reload_raises_with_near_misses() -> None:
    fetcher = FakeFetcher(schemas([SOURCE, SCORE]))
    registry = CustomFieldRegistry(fetcher, object_types=("lead",))
    await registry.load()

    with pytest.raises(UnknownCustomField) as caught:
        await registry.resolve("lead", "Lead Sorce")
    # Best match first; "Lead Score" is one edit further away but still a plausible intent.
    assert (
        str(caught.value)
        == 'unknown lead custom field "Lead Sorce"; did you mean "Lead Source" or "Lead Score"?'
    )
    assert caught.value.suggestions == ["Lead Source", "Lead Score"]
    assert fetcher.paths().count("/custom_field_schema/lead/") == 2  # the load, then exactly one reload


async def test_a_miss_right_after_the_first_lazy_load_does_not_reload_again() -> None:
    fetcher = FakeFetcher(schemas([SOURCE]))
    registry = CustomFieldRegistry(fetcher, object_types=("lead",))
    with pytest.raises(UnknownCustomField):
        await registry.resolve("lead", "Nope")
    assert fetcher.paths() == ["/custom_field_schema/lead/"]


async def test_unknown_name_without_near_misses_says_only_what_is_unknown() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([SOURCE])), object_types=("lead",))
    with pytest.raises(UnknownCustomField, match=r'^unknown lead custom field "Zebra"$'):
        await registry.resolve("lead", "Zebra")


async def test_unknown_custom_field_is_a_config_error_and_a_lookup_error() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([])), object_types=("lead",))
    with pytest.raises(ConfigError):
        await registry.resolve("lead", "cf_missing")
    with pytest.raises(LookupError):
        await registry.resolve("lead", "cf_missing")


async def test_resolve_on_an_object_type_not_loaded_is_refused() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([])), object_types=("lead",))
    with pytest.raises(ConfigError, match=r'custom fields of "task" are not loaded \(known: lead\)'):
        await registry.resolve("task", "Anything")


async def test_fields_of_one_object_type_do_not_resolve_on_another() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([SOURCE], [])))
    with pytest.raises(UnknownCustomField, match='unknown contact custom field "Lead Source"'):
        await registry.resolve("contact", "Lead Source")


def test_value_key_is_the_flat_custom_key_close_uses() -> None:
    field = CustomField(id="cf_score", name="Lead Score", type="number", object_type="lead")
    assert value_key(field) == "custom.cf_score"


async def test_by_name_turns_custom_keys_into_field_names() -> None:
    registry = CustomFieldRegistry(FakeFetcher(schemas([SOURCE, SCORE])))
    await registry.load()
    record = {
        "id": "lead_1",
        "name": "Acme",
        "custom.cf_score": 12,
        "custom.cf_gone": "x",
        "custom.cf_source": "Web",
    }
    assert registry.by_name("lead", record) == {"Lead Score": 12, "cf_gone": "x", "Lead Source": "Web"}
