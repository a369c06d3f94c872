"""Review findings 7, 9, 10, 11 and 1 (load-time half): each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from closeflow.close import ConfigError
from closeflow.plays._expressions import Evaluator, ExpressionError, size_of, switch_key
from closeflow.plays._models import SecretRef
from closeflow.plays._secrets import Secrets, scrub
from closeflow.plays._spec import Play, Tool, load_folder, load_play_file
from closeflow.plays._yaml import PlayFileError

EXAMPLES = Path(__file__).parents[2] / "examples" / "plays"
CONTEXT = {"record": {"id": "lead_1", "n": [1, 2, 3]}, "vars": {}, "nodes": {}, "change": {}}
HEAD = "kind: play\nname: p\ntrigger: {model: leads}\nnodes:\n"


def load_text(tmp_path: Path, text: str) -> Play | Tool:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_play_file(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(PlayFileError) as caught:
        load_text(tmp_path, text)
    return str(caught.value).replace(str(tmp_path), "plays")


# -- 9: one C-level call cannot build a huge value -------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ range(10000)|join('x'*10000) }}",
        "{{ ('x'*20000)|replace('x', 'y'*20000) }}",
        "{{ ('x'*20000).replace('x', 'y'*20000) }}",
        "{{ 'y'.join(['x'*20000]*20000) }}",
        "{{ (['x'*20000]*20000)|string }}",
        "{{ (['x'*20000]*20000)|tojson }}",
        "{{ ([range(3000)|list]*3000)|sum(start=[])|length }}",
        "a{{ ['x'*20000]*20000 }}",
        "{{ 'a' ~ (['x'*20000]*20000) }}",
        "{{ '%s' % ((['x'*20000]*20000),) }}",
        "{% set ns = namespace(x='a') %}{% for i in range(28) %}{% set ns.x = [ns.x, ns.x] %}"
        "{% endfor %}{{ ns.x|tojson|length }}",
    ],
)
def test_oversized_values_are_refused_before_python_builds_them(expression: str) -> None:
    with pytest.raises(ExpressionError, match="over the cap of 100000"):
        Evaluator().evaluate(expression, CONTEXT)


def test_a_jmespath_result_that_doubles_itself_is_refused() -> None:
    path = "record.id" + " | [@, @]" * 22
    with pytest.raises(ExpressionError, match="over the cap of 100000"):
        Evaluator().evaluate({"path": path}, CONTEXT)


def test_ordinary_joins_sums_and_generators_still_work() -> None:
    evaluator = Evaluator()
    text = (
        "{{ record.n|join(', ') }}|{{ record.n|map('string')|join }}|{{ '-'.join(record.n|map('string')) }}"
    )
    assert evaluator.evaluate(text, CONTEXT) == "1, 2, 3|123|1-2-3"
    assert evaluator.evaluate("{{ record.n|map('int')|sum }}", CONTEXT) == 6
    assert evaluator.evaluate("{{ [[1], [2]]|sum(start=[]) }}", CONTEXT) == [1, 2]
    assert evaluator.evaluate("{{ record|tojson }}", CONTEXT) == '{"id": "lead_1", "n": [1, 2, 3]}'


def test_size_of_stops_counting_at_the_limit() -> None:
    doubled: list[object] = ["a"]
    for _ in range(60):
        doubled = [doubled, doubled]
    assert size_of(doubled, 1000) == 1001
    assert size_of({"id": "lead_1"}, 1000) == 11  # one per item (mapping, key, value) plus the text


# -- 7: switch keys are the text YAML keys hold -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [(True, "true"), (False, "false"), (None, "null"), (3, "3"), (2.0, "2"), (2.5, "2.5"), ("Won", "Won")],
)
def test_switch_key_writes_values_as_json_does(value: object, key: str) -> None:
    assert switch_key(value) == key


# -- 10: secrets come from the environment and are scrubbed ----------------------------------------


def test_secrets_resolve_from_the_environment_and_never_show_in_repr() -> None:
    secrets = Secrets.resolve({"hook_token": SecretRef(env="HOOK_TOKEN")}, {"HOOK_TOKEN": "tok_12345678"})
    assert secrets.context() == {"hook_token": "tok_12345678"}
    assert "tok_12345678" not in repr(secrets)
    assert repr(secrets) == "Secrets(hook_token=***)"


def test_a_missing_secret_variable_is_named_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match=r"HOOK_TOKEN \(secrets.hook_token\)"):
        Secrets.resolve({"hook_token": SecretRef(env="HOOK_TOKEN")}, {})


def test_short_secrets_are_refused_because_they_cannot_be_scrubbed() -> None:
    with pytest.raises(ConfigError, match="shorter than 8"):
        Secrets({"pin": "1234"})


def test_scrub_removes_secrets_from_every_stored_shape() -> None:
    secrets = Secrets({"hook_token": "s3cret/+token", "key": "sk_live_abcdef"})
    stored = {
        "url": "https://h.example.com/in?token=s3cret%2F%2Btoken",
        "headers": {"X-Hook-Auth": "Bearer sk_live_abcdef"},
        "body": ['{"t": "s3cret/+token"}', 3],
        "s3cret/+token": None,
    }
    cleaned = scrub(stored, secrets)
    text = json.dumps(cleaned)
    assert "s3cret" not in text and "sk_live" not in text
    assert cleaned["headers"] == {"X-Hook-Auth": "Bearer ***"}
    assert cleaned["url"] == "https://h.example.com/in?token=***"
    assert cleaned["body"] == ['{"t": "***"}', 3]


def test_a_play_declares_secrets_by_environment_variable(tmp_path: Path) -> None:
    play = load_text(
        tmp_path,
        "kind: play\nname: p\nsecrets: {hook_token: {env: HOOK_TOKEN}}\ntrigger: {model: leads}\n"
        "nodes:\n  - {id: a, type: http, method: POST,\n"
        "     url: 'https://h.example.com/{{ secrets.hook_token }}'}\n",
    )
    assert isinstance(play, Play)
    assert play.secrets == {"hook_token": SecretRef(env="HOOK_TOKEN")}
    bad = "kind: play\nname: p\nsecrets: {t: {value: abc}}\ntrigger: {model: leads}\n"
    bad += "nodes: [{id: a, type: end}]\n"
    assert error_of(tmp_path, bad).startswith("plays/p.yaml:3: unknown field `value`")


def test_vars_that_look_like_secrets_warn_with_the_fix(tmp_path: Path) -> None:
    play = load_text(
        tmp_path,
        "kind: play\nname: p\nvars:\n  hook: 'https://h.example.com/in?token=abc&x=1'\n  api_key: sk_live_1\n"
        "  owner: ada@example.com\ntrigger: {model: leads}\nnodes:\n  - {id: a, type: end}\n",
    )
    assert len(play.warnings) == 2
    assert play.warnings[0].startswith(f"{tmp_path}/p.yaml:4: vars.hook looks like a secret")
    assert "secrets: {hook: {env: HOOK}}" in play.warnings[0]
    assert play.warnings[1].startswith(f"{tmp_path}/p.yaml:5: vars.api_key looks like a secret")


# -- 11: mistakes that used to load silently -------------------------------------------------------


def test_an_unknown_trigger_model_is_refused(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, "kind: play\nname: p\ntrigger: {model: lead}\nnodes:\n  - {id: a, type: end}\n"
    )
    assert message.startswith('plays/p.yaml:3: unknown data model "lead"')
    assert 'did you mean "leads"?' in message


def test_a_misspelt_non_retryable_error_is_refused(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, HEAD + "  - {id: a, type: end, retry: {non_retryable: [NotFound, ValidationErorr]}}\n"
    )
    assert message.startswith(
        'plays/p.yaml:5: node "a": non_retryable names the unknown error "ValidationErorr"'
    )
    assert 'did you mean "ValidationError"?' in message
    for known in ("HttpStatus", "ExpressionError", "ToolInputError", "RateLimited", "ServerError"):
        load_text(tmp_path, HEAD + f"  - {{id: a, type: end, retry: {{non_retryable: [{known}]}}}}\n")


def test_a_tool_input_default_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    tool = "kind: tool\nname: t\ndescription: d\n"
    tool += "inputs: {{n: {{type: integer, required: false, default: {}}}}}\n"
    tool += "nodes:\n  - {{id: a, type: end}}\n"
    message = error_of(tmp_path, tool.format("abc"))
    assert message.startswith("plays/p.yaml:4: input 'n' is declared integer but its default 'abc' is not")
    loaded = load_text(tmp_path, tool.format(3))
    assert isinstance(loaded, Tool) and loaded.inputs["n"].default == 3


def test_templates_in_play_level_vars_are_refused_with_a_fix(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        "kind: play\nname: p\nvars: {g: 'Hi {{ record.name }}'}\ntrigger: {model: leads}\n"
        "nodes: [{id: a, type: end}]\n",
    )
    assert message.startswith("plays/p.yaml:3: vars.g holds a path or template")
    assert "`set` node" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEAD + "  - {id: a, type: delay, seconds: .inf}\n", 5),
        (HEAD + "  - {id: a, type: end, retry: {initial_interval: .nan}}\n", 5),
        (HEAD + "  - {id: a, type: set, vars: {x: -.inf}}\n", 5),
        (
            "kind: play\nname: p\ntrigger: {model: leads}\nschedule: {every: nan}\n"
            "nodes: [{id: a, type: end}]\n",
            4,
        ),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path: Path, text: str, line: int) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"plays/p.yaml:{line}: ")
    assert "finite" in message


# -- 1: plays run each node at most once ------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "loop"),
    [
        (
            "  - {id: a, type: set, vars: {x: 1}}\n  - {id: b, type: set, vars: {x: 2}, next: a}\n",
            "a → b → a",
        ),
        (
            "  - {id: a, type: branch, if: true, then: b, else: end}\n"
            "  - {id: b, type: end, on_failure: a}\n",
            "a → b → a",
        ),
        ("  - {id: a, type: switch, value: 1, cases: {'1': a}}\n", "a → a"),
    ],
)
def test_a_graph_that_returns_to_a_node_is_refused(tmp_path: Path, nodes: str, loop: str) -> None:
    message = error_of(tmp_path, HEAD + nodes)
    assert message.startswith(f"plays/p.yaml:5: the nodes loop: {loop}")
    assert "plays run each node at most once; use a tool, or split the play" in message


def test_the_example_plays_have_no_loops_and_load() -> None:
    catalog = load_folder(EXAMPLES)
    assert sorted(catalog.plays) == ["qualified-follow-up", "removed-leads-log", "status-changed-webhook"]
    assert sorted(catalog.tools) == ["add-note"]
