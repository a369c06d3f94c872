"""The --where language: text to Filter, Filter back to text, and errors that point at the column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeflow.close._filters import OPERATORS, And, Condition, Filter, FilterError, Not, Or
from closeflow.close._where import WhereSyntaxError, parse_where, to_text


def test_the_documented_examples_parse_to_the_expected_trees() -> None:
    assert parse_where('status = "Qualified" and custom."Tier" = "A"') == And(
        [Condition("status", "=", "Qualified"), Condition("custom.Tier", "=", "A")]
    )
    assert parse_where(
        '(email contains "acme.com" or phone = "+14155550100") and not date_updated < "2026-01-01"'
    ) == And(
        [
            Or([Condition("email", "contains", "acme.com"), Condition("phone", "=", "+14155550100")]),
            Not(Condition("date_updated", "<", "2026-01-01")),
        ]
    )
    assert parse_where('custom."Lead Score" >= 50') == Condition("custom.Lead Score", ">=", 50)
    assert parse_where('name in ("Acme", "Bluth")') == Condition("name", "in", ("Acme", "Bluth"))
    assert parse_where("url exists") == Condition("url", "exists")


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    a, b, c = (Condition(n, "exists") for n in ("name", "url", "title"))
    assert parse_where("not name exists and url exists or title exists") == Or([And([Not(a), b]), c])
    assert parse_where("name exists or url exists and title exists") == Or([a, And([b, c])])
    assert parse_where("(name exists or url exists) and title exists") == And([Or([a, b]), c])


def test_chains_of_the_same_connective_are_flat() -> None:
    parsed = parse_where("name exists and url exists and title exists")
    assert isinstance(parsed, And)
    assert len(parsed.items) == 3


def test_values_numbers_booleans_null_and_escaped_strings() -> None:
    assert parse_where("addresses_count > -2.5").value == -2.5  # type: ignore[union-attr]
    assert parse_where("x = 7").value == 7  # type: ignore[union-attr]
    assert parse_where("x = TRUE").value is True  # type: ignore[union-attr]
    assert parse_where("x != false").value is False  # type: ignore[union-attr]
    assert parse_where("x = null").value is None  # type: ignore[union-attr]
    assert parse_where(r'name = "Say \"hi\" \\ bye"').value == 'Say "hi" \\ bye'  # type: ignore[union-attr]


def test_keywords_are_case_insensitive_and_custom_ids_need_no_quotes() -> None:
    assert parse_where("custom.cf_abc EXISTS AND NOT name Missing") == And(
        [Condition("custom.cf_abc", "exists"), Not(Condition("name", "missing"))]
    )


def test_a_quoted_custom_field_name_may_hold_dots_and_quotes() -> None:
    assert parse_where(r'custom."v2.0 \"beta\"" = 1') == Condition('custom.v2.0 "beta"', "=", 1)


def error_of(text: str) -> WhereSyntaxError:
    with pytest.raises(WhereSyntaxError) as caught:
        parse_where(text)
    return caught.value


def test_a_missing_value_names_the_operator_and_column_and_draws_a_caret() -> None:
    error = error_of('status = "A" and name =')
    assert error.column == 24
    assert str(error) == (
        'expected a value after "=" at column 24\n  status = "A" and name =\n                         ^'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a condition at column 1"),
        (
            "name",
            'expected an operator after "name" (=, !=, <, <=, >, >=, contains, starts_with, in, exists, '
            "missing), found the end of the text at column 5",
        ),
        ("name = Acme", 'expected a value after "=" (quote text: "…") at column 8'),
        ('name = "Acme', "unterminated string at column 8"),
        (r'name = "a\nb"', 'unknown escape in string (use \\" or \\\\) at column 10'),
        ('(name = "A"', 'missing ")" to close the "(" at column 1'),
        ('name = "A")', 'expected "and", "or" or the end, found ")" at column 11'),
        ('name = "A" url exists', 'expected "and", "or" or the end, found "url" at column 12'),
        ("name in ()", 'expected a value in the list after "in" at column 10'),
        ('name in "A"', 'expected "(" after "in" at column 9'),
        (
            'name in ("A" "B")',
            'expected "," or ")" in the list after "in", found the string "B" at column 14',
        ),
        ("and = 1", 'expected a field name, found "and" at column 1'),
        (
            "custom.= 1",
            'expected a name after "." (quote custom field names: custom."Lead Source") at column 8',
        ),
        ("name = 1 & url exists", 'unexpected character "&" at column 10'),
        ("name exists and", "expected a field name, found the end of the text at column 16"),
    ],
)
def test_every_syntax_error_says_what_was_expected_and_where(text: str, message: str) -> None:
    assert str(error_of(text)).splitlines()[0] == message


def test_syntax_errors_are_filter_errors() -> None:
    assert isinstance(error_of("name ="), FilterError)


# -- round trip -----------------------------------------------------------------------------

_FIELDS = st.sampled_from(
    ["name", "status", "email", "date_updated", "address.city", "custom.cf_abc"]
) | st.builds(lambda name: f"custom.{name}", st.text(min_size=1, max_size=12))
_SCALARS = (
    st.text(max_size=12)
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
_SINGLE_OPS = [op for op in OPERATORS if op not in ("in", "exists", "missing")]


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    field = draw(_FIELDS)
    op = draw(st.sampled_from(OPERATORS))
    if op in ("exists", "missing"):
        return Condition(field, op)
    if op == "in":
        return Condition(field, "in", tuple(draw(st.lists(_SCALARS, min_size=1, max_size=3))))
    return Condition(field, draw(st.sampled_from(_SINGLE_OPS)), draw(_SCALARS))


filters: st.SearchStrategy[Filter] = st.recursive(
    conditions(),
    lambda inner: (
        st.builds(Not, inner)
        | st.builds(And, st.lists(inner, min_size=2, max_size=3))
        | st.builds(Or, st.lists(inner, min_size=2, max_size=3))
    ),
    max_leaves=8,
)


@given(filters)
def test_rendering_a_filter_as_text_and_parsing_it_gives_the_same_filter(filter: Filter) -> None:
    assert parse_where(to_text(filter)) == filter


def test_to_text_quotes_custom_names_that_are_not_plain_words() -> None:
    filter = And(
        [
            Condition("custom.Lead Score", ">=", 50),
            Or([Condition("url", "exists"), Condition("name", "in", ("A", 'B"'))]),
        ]
    )
    assert to_text(filter) == 'custom."Lead Score" >= 50 and (url exists or name in ("A", "B\\""))'


def test_a_filter_nested_deeper_than_the_limit_is_a_syntax_error_not_a_crash() -> None:
    from closeflow.close import WhereSyntaxError, parse_where

    assert parse_where("(" * 100 + 'name = "x"' + ")" * 100) == parse_where('name = "x"')
    for deep in ("(" * 101 + 'name = "x"' + ")" * 101, "not " * 5000 + 'name = "x"'):
        with pytest.raises(WhereSyntaxError, match="nests not / \\( more than 100 levels deep"):
            parse_where(deep)
