"""Values in plays: JMESPath paths, templates with native values, literals."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.plays._expressions import Evaluator, ExpressionError

CONTEXT: dict[str, Any] = {
    "record": {
        "id": "lead_1",
        "display_name": "Ada Lovelace",
        "status_label": "Qualified",
        "custom.Tier": "A",
        "emails": [{"email": "ada@example.com"}, {"email": "ada@work.example.com"}],
        "employees": 40,
    },
    "change": {
        "kind": "updated",
        "before": {"status_label": "Potential"},
        "changed_fields": ["status_label"],
    },
    "vars": {"owner": "ada.0@example.com"},
    "nodes": {"upsert": {"output": {"ids": ["cont_9"]}, "status": "succeeded"}},
}


@pytest.fixture
def evaluator() -> Evaluator:
    return Evaluator()


def test_a_path_is_jmespath_over_the_context(evaluator: Evaluator) -> None:
    assert evaluator.evaluate({"path": "record.emails[].email"}, CONTEXT) == [
        "ada@example.com",
        "ada@work.example.com",
    ]
    assert evaluator.evaluate({"path": 'record."custom.Tier"'}, CONTEXT) == "A"
    assert evaluator.evaluate({"path": "nodes.upsert.output.ids[0]"}, CONTEXT) == "cont_9"
    assert evaluator.evaluate({"path": "record.nothing"}, CONTEXT) is None


def test_a_single_expression_keeps_its_native_type(evaluator: Evaluator) -> None:
    assert evaluator.evaluate("{{ record.employees * 2 }}", CONTEXT) == 80
    assert evaluator.evaluate("{{ record['custom.Tier'] == 'A' }}", CONTEXT) is True
    assert evaluator.evaluate("{{ record.emails | map(attribute='email') | list }}", CONTEXT) == [
        "ada@example.com",
        "ada@work.example.com",
    ]
    assert evaluator.evaluate("{{ {'a': [1, none]} }}", CONTEXT) == {"a": [1, None]}
    assert evaluator.evaluate("{{ none }}", CONTEXT) is None


def test_mixed_text_renders_to_a_string(evaluator: Evaluator) -> None:
    value = "{{ record.display_name | lower | replace(' ', '.') }}@example.com"
    assert evaluator.evaluate(value, CONTEXT) == "ada.lovelace@example.com"
    assert evaluator.evaluate("{{ record.employees }} people", CONTEXT) == "40 people"
    assert evaluator.evaluate("{% if record.employees > 10 %}big{% else %}small{% endif %}", CONTEXT) == "big"


def test_literals_pass_through_and_containers_are_evaluated_recursively(evaluator: Evaluator) -> None:
    value = {
        "name": "Follow-up",
        "n": 3,
        "ok": True,
        "lead": {"path": "record.id"},
        "tags": ["x", "{{ vars.owner }}"],
    }
    assert evaluator.evaluate(value, CONTEXT) == {
        "name": "Follow-up",
        "n": 3,
        "ok": True,
        "lead": "lead_1",
        "tags": ["x", "ada.0@example.com"],
    }
    # A mapping with more keys than `path` is a literal mapping.
    assert evaluator.evaluate({"path": "a", "b": 1}, CONTEXT) == {"path": "a", "b": 1}


def test_truthy_reads_before_and_after(evaluator: Evaluator) -> None:
    went_qualified = "{{ change.before.status_label == 'Potential' and record.status_label == 'Qualified' }}"
    assert evaluator.truthy(went_qualified, CONTEXT) is True
    assert evaluator.truthy("{{ record.employees > 100 }}", CONTEXT) is False
    assert evaluator.truthy("{% if false %}yes{% endif %}", CONTEXT) is False  # renders ""
    assert evaluator.truthy(" {{ 'x' }} is {{ false }}", CONTEXT) is True
    assert evaluator.truthy("{{ 'false' }}", CONTEXT) is True  # a native non-empty string
    assert evaluator.truthy("{% if true %}False{% endif %}", CONTEXT) is False  # rendered text "False"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{{ record.nme }}", "expression '{{ record.nme }}' failed: 'dict object' has no attribute 'nme'"),
        ("{{ nope }}", "expression '{{ nope }}' failed: 'nope' is undefined"),
        (
            "{{ [record.nope] }}",
            "expression '{{ [record.nope] }}' failed: 'dict object' has no attribute 'nope'",
        ),
        (
            "hi {{ vars.missing }}",
            "expression 'hi {{ vars.missing }}' failed: 'dict object' has no attribute 'missing'",
        ),
        ("{{ 1 / 0 }}", "expression '{{ 1 / 0 }}' failed: ZeroDivisionError: division by zero"),
    ],
)
def test_undefined_names_and_runtime_errors_name_the_expression(
    evaluator: Evaluator, value: str, message: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluator.evaluate(value, CONTEXT)
    assert str(caught.value).startswith(message)
    assert caught.value.expression == value


def test_syntax_errors_are_found_by_check_without_a_context(evaluator: Evaluator) -> None:
    with pytest.raises(ExpressionError, match="template syntax error"):
        evaluator.check({"a": ["{{ x + }}"]})
    with pytest.raises(ExpressionError, match="not a valid JMESPath"):
        evaluator.check({"path": "record.["})
    evaluator.check({"a": ["{{ x }}", {"path": "record.id"}, 3]})  # fine: names are checked at run time


def test_the_context_cannot_be_changed_by_a_template(evaluator: Evaluator) -> None:
    context = {"vars": {"items": [1]}}
    with pytest.raises(ExpressionError, match="not allowed in the sandbox"):
        evaluator.evaluate("{{ vars['items'].append(2) }}", context)
    assert context == {"vars": {"items": [1]}}
