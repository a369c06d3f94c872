"""CustomFieldRegistry.coerce: user values become what Close accepts for each field type (close-api.md §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from closeflow.close._custom_fields import CustomField, CustomFieldRegistry, CustomFieldValueError
from closeflow.close._errors import NotFound

USERS = [
    {"id": "user_ann", "first_name": "Ann", "last_name": "Veal", "email": "ann@bluth.example"},
    {"id": "user_gob", "first_name": "George Oscar", "last_name": "Bluth", "email": "gob@bluth.example"},
]


class UserFetcher:
    def __init__(self) -> None:
        self.user_reads = 0

    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if path == "/user/":
            self.user_reads += 1
            return {"data": USERS, "has_more": False}
        raise NotFound("Not found", status=404, method="GET", path=path)


def field(type: str, *, multi: bool = False, choices: tuple[str, ...] = ()) -> CustomField:
    return CustomField(
        id=f"cf_{type}",
        name=f"My {type.title()}",
        type=type,
        object_type="lead",
        accepts_multiple_values=multi,
        choices=choices,
    )


@pytest.fixture
def registry() -> CustomFieldRegistry:
    return CustomFieldRegistry(UserFetcher())


async def test_none_unsets_any_field(registry: CustomFieldRegistry) -> None:
    for kind in ("text", "number", "date", "datetime", "choices", "user", "contact"):
        assert await registry.coerce(field(kind), None) is None


@pytest.mark.parametrize("kind", ["text", "textarea", "hidden"])
async def test_text_types_take_strings_and_stringify_numbers(
    registry: CustomFieldRegistry, kind: str
) -> None:
    assert await registry.coerce(field(kind), "Segway") == "Segway"
    assert await registry.coerce(field(kind), 42) == "42"


async def test_text_refuses_booleans_and_structures(registry: CustomFieldRegistry) -> None:
    with pytest.raises(CustomFieldValueError) as caught:
        await registry.coerce(field("text"), {"a": 1})
    assert str(caught.value) == "lead custom field \"My Text\" (text) cannot take {'a': 1}: expected text"
    with pytest.raises(CustomFieldValueError, match="expected text"):
        await registry.coerce(field("text"), True)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("12", 12), ("12.5", 12.5), (12, 12), (12.5, 12.5), (" -3 ", -3), ("1e3", 1000.0)],
)
async def test_numbers_come_from_numbers_and_numeric_strings(
    registry: CustomFieldRegistry, given: Any, expected: float
) -> None:
    result = await registry.coerce(field("number"), given)
    assert result == expected
    assert type(result) is type(expected)


async def test_number_refuses_words_with_a_message_naming_field_value_and_reason(
    registry: CustomFieldRegistry,
) -> None:
    with pytest.raises(CustomFieldValueError) as caught:
        await registry.coerce(field("number"), "twelve")
    assert str(caught.value) == 'lead custom field "My Number" (number) cannot take "twelve": not a number'
    assert caught.value.reason == "not a number"
    assert caught.value.value == "twelve"


@pytest.mark.parametrize(
    ("given", "reason"), [(True, "expected a number, not a boolean"), ("nan", "not a finite number")]
)
async def test_number_refuses_booleans_and_non_finite_values(
    registry: CustomFieldRegistry, given: Any, reason: str
) -> None:
    with pytest.raises(CustomFieldValueError, match=reason):
        await registry.coerce(field("number"), given)


@pytest.mark.parametrize(
    "given",
    [
        date(2026, 3, 4),
        datetime(2026, 3, 4, 22, 30),
        "2026-03-04",
        "2026-03-04T22:30:00+00:00",
        "2026-03-04T09:00Z",
    ],
)
async def test_date_becomes_year_month_day(registry: CustomFieldRegistry, given: Any) -> None:
    assert await registry.coerce(field("date"), given) == "2026-03-04"


@pytest.mark.parametrize("given", ["tomorrow", "2026-13-01", "04/03/2026", 20260304])
async def test_date_refuses_nonsense(registry: CustomFieldRegistry, given: Any) -> None:
    with pytest.raises(CustomFieldValueError) as caught:
        await registry.coerce(field("date"), given)
    assert str(caught.value).endswith(": expected an ISO 8601 date such as 2026-01-31")


async def test_datetime_keeps_an_offset_and_treats_naive_values_as_utc(registry: CustomFieldRegistry) -> None:
    pacific = timezone(timedelta(hours=-8))
    assert (
        await registry.coerce(field("datetime"), "2014-06-27T22:00:00-08:00") == "2014-06-27T22:00:00-08:00"
    )
    assert await registry.coerce(field("datetime"), datetime(2014, 6, 27, 22, tzinfo=pacific)) == (
        "2014-06-27T22:00:00-08:00"
    )
    assert await registry.coerce(field("datetime"), "2014-06-27T22:00:00") == "2014-06-27T22:00:00+00:00"
    assert (
        await registry.coerce(field("datetime"), datetime(2014, 6, 27, tzinfo=UTC))
        == "2014-06-27T00:00:00+00:00"
    )
    assert await registry.coerce(field("datetime"), "2014-06-27") == "2014-06-27T00:00:00+00:00"


async def test_choices_match_case_insensitively_and_return_the_canonical_spelling(
    registry: CustomFieldRegistry,
) -> None:
    tier = field("choices", choices=("Gold", "Silver"))
    assert await registry.coerce(tier, "Gold") == "Gold"
    assert await registry.coerce(tier, "  silver ") == "Silver"


async def test_an_unknown_choice_lists_the_valid_ones(registry: CustomFieldRegistry) -> None:
    tier = field("choices", choices=("Gold", "Silver"))
    with pytest.raises(CustomFieldValueError) as caught:
        await registry.coerce(tier, "Bronze")
    assert str(caught.value) == (
        'lead custom field "My Choices" (choices) cannot take "Bronze": '
        'not one of the choices "Gold", "Silver"'
    )


async def test_user_fields_take_an_id_an_email_or_a_full_name() -> None:
    fetcher = UserFetcher()
    registry = CustomFieldRegistry(fetcher)
    owner = field("user")
    assert await registry.coerce(owner, "user_zzz") == "user_zzz"
    assert fetcher.user_reads == 0  # ids need no lookup
    assert await registry.coerce(owner, "GOB@bluth.example") == "user_gob"
    assert await registry.coerce(owner, "ann veal") == "user_ann"
    assert fetcher.user_reads == 1  # the user list is read once, lazily


async def test_an_unknown_user_lists_near_misses(registry: CustomFieldRegistry) -> None:
    with pytest.raises(CustomFieldValueError) as caught:
        await registry.coerce(field("user"), "Ann Veel")
    assert str(caught.value) == (
        'lead custom field "My User" (user) cannot take "Ann Veel": no user has that email or name; '
        'did you mean "Ann Veal"?'
    )


async def test_contact_fields_take_contact_ids_only(registry: CustomFieldRegistry) -> None:
    assert await registry.coerce(field("contact"), "cont_abc") == "cont_abc"
    with pytest.raises(CustomFieldValueError, match=r'cannot take "Gob": expected a contact id \(cont_…\)'):
        await registry.coerce(field("contact"), "Gob")


async def test_multi_value_fields_take_a_list_or_a_comma_separated_string_and_coerce_each(
    registry: CustomFieldRegistry,
) -> None:
    roles = field("choices", multi=True, choices=("Decision Maker", "Champion"))
    assert await registry.coerce(roles, "decision maker, CHAMPION") == ["Decision Maker", "Champion"]
    assert await registry.coerce(roles, ["Champion"]) == ["Champion"]
    owners = field("user", multi=True)
    assert await registry.coerce(owners, ["ann@bluth.example", "user_gob"]) == ["user_ann", "user_gob"]
    with pytest.raises(CustomFieldValueError, match='cannot take "Boss"'):
        await registry.coerce(roles, "Champion, Boss")


async def test_a_single_value_field_refuses_a_list(registry: CustomFieldRegistry) -> None:
    with pytest.raises(CustomFieldValueError, match="the field holds one value, not a list"):
        await registry.coerce(field("number"), [1, 2])
