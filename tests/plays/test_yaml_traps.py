"""YAML 1.1 traps: `no`, `NO`, `yes`, `on`, `1:30` stay the text the user wrote, never booleans or numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeflow.plays._spec import load_play_file
from closeflow.plays._yaml import PlayFileError, load_yaml


def test_yaml_11_boolean_words_stay_text() -> None:
    doc = load_yaml("on: no\ncountry: NO\nenabled: yes\noff: Off\nn: n\n", "x.yaml")
    assert doc.data == {"on": "no", "country": "NO", "enabled": "yes", "off": "Off", "n": "n"}


def test_core_schema_values_keep_their_types() -> None:
    doc = load_yaml(
        "t: true\nf: False\nz: ~\ne:\ni: 12\nx: 0x1f\no: 0o17\nfl: 1.5e3\ntime: 1:30\nq: '12'\n", "x.yaml"
    )
    assert doc.data == {
        "t": True, "f": False, "z": None, "e": None, "i": 12, "x": 31, "o": 15, "fl": 1500.0,
        "time": "1:30", "q": "12",
    }  # fmt: skip


def test_every_key_and_item_has_its_line() -> None:
    doc = load_yaml("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n", "x.yaml")
    assert doc.lines[("a",)] == 1
    assert doc.lines[("a", "b")] == 2
    assert doc.lines[("a", "c", 1)] == 5
    assert doc.lines[("a", "c", 1, "d")] == 5
    assert doc.line_of(("a", "c", 1, "missing")) == 5  # a key never written: its parent's line


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(PlayFileError) as caught:
        load_yaml("kind: play\nname: a\nname: b\n", "plays/x.yaml")
    assert str(caught.value) == (
        'plays/x.yaml:3: the key "name" appears twice (first on line 2)\n'
        "  fix: remove or rename one of them; YAML would silently keep only the last"
    )


def test_python_tags_are_refused() -> None:
    with pytest.raises(
        PlayFileError, match=r"^plays/x.yaml:2: the YAML tag tag:yaml.org,2002:python/object/apply"
    ):
        load_yaml("a: 1\nb: !!python/object/apply:os.system [echo]\n", "plays/x.yaml")


def test_broken_yaml_names_its_line() -> None:
    with pytest.raises(PlayFileError) as caught:
        load_yaml("a: 1\nb: [1, 2\n", "plays/x.yaml")
    assert caught.value.line == 3
    assert str(caught.value).startswith("plays/x.yaml:3: not valid YAML: ")


def test_alias_bombs_are_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 8):
        lines.append(f"{chr(97 + n)}: &{chr(97 + n)} [" + ", ".join([f"*{chr(96 + n)}"] * 10) + "]")
    with pytest.raises(PlayFileError, match="expands to more than 200000 values"):
        load_yaml("\n".join(lines) + "\n", "x.yaml")


def test_on_no_in_a_trigger_says_to_list_the_change_kinds(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "kind: play\nname: p\ntrigger:\n  model: leads\n  on: no\nnodes:\n  - {id: a, type: end}\n"
    )
    with pytest.raises(PlayFileError) as caught:
        load_play_file(path)
    assert str(caught.value) == (
        f"{path}:5: `trigger.on`: Input should be a valid list (got 'no')\n"
        '  fix: "no" is text here, not false: list the change kinds, e.g. on: [added, updated]'
    )


def test_yes_where_a_value_is_expected_says_to_write_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "kind: tool\nname: t\ndescription: d\ninputs:\n  x: {type: string, required: yes}\n"
        "nodes:\n  - {id: a, type: end}\n"
    )
    with pytest.raises(PlayFileError) as caught:
        load_play_file(path)
    assert str(caught.value) == (
        f"{path}:5: `inputs.x.required`: Input should be a valid boolean (got 'yes')\n"
        '  fix: "yes" is text in play files (YAML 1.2), not a boolean: '
        "write true or false for a yes/no setting, "
        'or quote it ("yes") where you mean the text'
    )


def test_country_no_stays_norway_in_vars(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "kind: play\nname: p\nvars: {country: NO}\ntrigger: {model: leads}\nnodes:\n  - {id: a, type: end}\n"
    )
    assert load_play_file(path).vars == {"country": "NO"}
