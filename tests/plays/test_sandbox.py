"""Templates from play files cannot escape the sandbox, build huge values or run forever.

The evaluator's own time limit is set low; tests assert the error, never elapsed time."""

from __future__ import annotations

import pytest

from closeflow.plays._expressions import Evaluator, ExpressionError

CONTEXT = {"record": {"id": "lead_1"}, "vars": {}}


@pytest.fixture
def evaluator() -> Evaluator:
    return Evaluator(time_limit=0.2, max_output=100_000)


def fails(evaluator: Evaluator, template: str) -> str:
    with pytest.raises(ExpressionError) as caught:
        evaluator.evaluate(template, CONTEXT)
    assert caught.value.expression == template
    return caught.value.reason


@pytest.mark.parametrize(
    ("template", "attribute"),
    [
        ("{{ ''.__class__.__mro__ }}", "__class__"),
        ("{{ cycler.__init__.__globals__ }}", "__init__"),
        ("{{ record.__class__ }}", "__class__"),
        ("{{ (1).__class__.__subclasses__() }}", "__class__"),
        ("{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}", "__class__"),
    ],
)
def test_attribute_escapes_are_refused(evaluator: Evaluator, template: str, attribute: str) -> None:
    reason = fails(evaluator, template)
    assert reason.startswith("not allowed in the sandbox: access to attribute ")
    assert f"'{attribute}'" in reason


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 10**8 }}",
        "{{ [0] * 10**8 }}",
        "{{ 'x'.ljust(10**9) }}",
        "{{ 'x' | center(10**9) }}",
        "{{ '%*s' % (10**9, 'x') }}",
        "{{ '{:>999999999}'.format('x') }}",
        "{{ 10 ** 999999 }}",
        "{{ range(60000) | list + range(60000) | list }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    ],
)
def test_huge_values_are_refused_before_they_are_built(evaluator: Evaluator, template: str) -> None:
    assert "over the" in fails(evaluator, template)


def test_huge_rendered_output_is_cut_off_at_the_cap(evaluator: Evaluator) -> None:
    assert fails(evaluator, "{% for i in range(10**7) %}x{% endfor %}") in (
        "the number 10000000 is over the size limit of 100000",
        "the output is over the cap of 100000 characters",
    )
    assert fails(evaluator, "{% for i in range(99999) %}{{ i }}{{ 'x' * 999 }}{% endfor %}") == (
        "the output is over the cap of 100000 characters"
    )


def test_a_range_past_the_sandbox_limit_is_refused(evaluator: Evaluator) -> None:
    assert fails(evaluator, "{% for i in range(10**9) %}{% endfor %}") == (
        "the number 1000000000 is over the size limit of 100000"
    )


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
        "{% for i in range(99999) %}{% for j in range(99999) %}"
        "{% if j == -1 %}x{% endif %}{% endfor %}{% endfor %}",
        "{{ range(99999) | map('string') | map('length') | sum }}"
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    ],
)
def test_long_loops_stop_at_the_time_limit(evaluator: Evaluator, template: str) -> None:
    assert fails(evaluator, template) == "took longer than the limit of 0.2 s"


def test_the_evaluator_still_works_after_a_timeout(evaluator: Evaluator) -> None:
    fails(evaluator, "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}")
    assert evaluator.evaluate("{{ record.id }}", CONTEXT) == "lead_1"


def test_a_native_expression_over_the_cap_is_refused(evaluator: Evaluator) -> None:
    # Refused before str.join runs (a single C call the time limit cannot stop).
    refused = fails(evaluator, "{{ range(99999) | join(',') }}")
    assert refused == "the value would be over the cap of 100000 characters"
