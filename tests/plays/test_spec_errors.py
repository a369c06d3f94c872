"""Play files that cannot be used fail with the file, the line and a fix — never half-loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeflow.plays._spec import Play, Tool, load_folder, load_play_file
from closeflow.plays._yaml import PlayFileError

FILES = Path(__file__).parent / "files"
HEAD = "kind: play\nname: p\ntrigger: {model: leads}\nnodes:\n"


def load_text(tmp_path: Path, text: str) -> Play | Tool:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_play_file(path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(PlayFileError) as caught:
        load_text(tmp_path, text)
    return str(caught.value).replace(str(tmp_path), "plays")


def test_a_valid_play_loads_with_its_trigger_schedule_and_node_lines() -> None:
    play = load_play_file(FILES / "follow-up.yaml")
    assert isinstance(play, Play)
    assert play.vars == {"owner_email": "ada.0@example.com", "country": "NO"}
    assert play.trigger.on == ["updated"]
    assert play.trigger.changed == ["status_label"]
    assert play.schedule.kind == "every" and play.schedule.every_seconds == 300.0
    assert play.enrolment.mode == "every_change" and play.enrolment.batch_size == 10
    assert [(node.id, node.type, node.line) for node in play.graph.nodes] == [
        ("upsert_contact", "action", 14),
        ("route", "branch", 24),
        ("notify", "http", 25),
        ("failed", "end", 31),
    ]
    assert play.graph.start == "upsert_contact"
    assert play.graph.successors("upsert_contact") == ["failed", "route"]  # on_failure, then the next node
    assert play.warnings == []


def test_unknown_node_type(tmp_path: Path) -> None:
    assert error_of(tmp_path, HEAD + "  - {id: a, type: emial}\n") == (
        "plays/p.yaml:5: node 'a' has the unknown type 'emial'; expected one of action, http, branch, "
        "switch, filter, set, delay, tool, end\n  fix: set `type:` to one of the types listed"
    )


def test_missing_field(tmp_path: Path) -> None:
    text = HEAD + "  - id: a\n    type: http\n    url: https://x\n"
    assert (
        error_of(tmp_path, text) == 'plays/p.yaml:5: node "a": missing field `method`\n  fix: add `method:`'
    )


def test_misspelt_field_suggests_the_right_name(tmp_path: Path) -> None:
    text = HEAD + "  - {id: a, type: delay, secnds: 1}\n"
    assert (
        error_of(tmp_path, text)
        == 'plays/p.yaml:5: node "a": unknown field `secnds`\n  fix: did you mean "seconds"?'
    )


def test_bad_filter_in_where_points_at_the_column(tmp_path: Path) -> None:
    text = (
        "kind: play\nname: p\ntrigger:\n  model: leads\n  where: 'status = Qualified'\n"
        "nodes:\n  - {id: a, type: end}\n"
    )
    assert error_of(tmp_path, text) == (
        'plays/p.yaml:5: bad filter in `where`: expected a value after "=" (quote text: "…") at column 10\n'
        "    status = Qualified\n"
        "             ^\n"
        "  fix: see `closeflow leads --help` for the filter language"
    )


def test_dangling_next(tmp_path: Path) -> None:
    text = HEAD + "  - {id: a, type: delay, seconds: 1, next: b}\n  - {id: c, type: end}\n"
    assert error_of(tmp_path, text) == (
        'plays/p.yaml:5: node "a": `next` goes to the unknown node "b"\n  fix: use one of a, c or "end"'
    )


def test_dangling_branch_target_suggests_a_near_id(tmp_path: Path) -> None:
    text = (
        HEAD
        + "  - {id: route, type: branch, if: true, then: notfy, else: end}\n  - {id: notify, type: end}\n"
    )
    assert error_of(tmp_path, text) == (
        'plays/p.yaml:5: node "route": `then` goes to the unknown node "notfy"\n  fix: did you mean "notify"?'
    )


def test_duplicate_ids(tmp_path: Path) -> None:
    text = HEAD + "  - {id: a, type: end}\n  - {id: a, type: end}\n"
    assert error_of(tmp_path, text) == (
        'plays/p.yaml:6: duplicate node id "a" (first on line 5)\n  fix: give each node a unique id'
    )


def test_unknown_action(tmp_path: Path) -> None:
    message = error_of(tmp_path, HEAD + "  - {id: a, type: action, action: upsert_contact, config: {}}\n")
    assert message.startswith(
        'plays/p.yaml:5: node "a": unknown action "upsert_contact"; expected one of insert_lead,'
    )
    assert message.endswith('\n  fix: did you mean "upsert_contacts"?')


def test_bad_action_config_goes_through_the_action_spec(tmp_path: Path) -> None:
    text = (
        HEAD + "  - id: a\n    type: action\n    action: upsert_contacts\n    config:\n"
        "      match_property: email\n      match_value: email\n      emial: email\n"
    )
    assert error_of(tmp_path, text) == (
        'plays/p.yaml:11: node "a" (upsert_contacts) config: unknown field `emial`\n'
        '  fix: did you mean "email"?'
    )


def test_action_config_rule_violations_are_reported(tmp_path: Path) -> None:
    text = (
        HEAD
        + "  - id: a\n    type: action\n    action: upsert_contacts\n    config: {match_property: email}\n"
    )
    message = error_of(tmp_path, text)
    assert message.startswith('plays/p.yaml:8: node "a" (upsert_contacts) config: ')
    assert "match_property and match_value go together" in message


def test_bad_template_syntax_is_found_at_load_time(tmp_path: Path) -> None:
    text = HEAD + "  - {id: a, type: filter, if: '{{ record.x == }}'}\n"
    assert error_of(tmp_path, text) == (
        "plays/p.yaml:5: bad expression '{{ record.x == }}': "
        "template syntax error: unexpected 'end of template'"
    )


def test_bad_schedule(tmp_path: Path) -> None:
    text = HEAD.replace("nodes:", "schedule: {every: soon}\nnodes:") + "  - {id: a, type: end}\n"
    assert error_of(tmp_path, text) == (
        "plays/p.yaml:4: bad schedule: duration 'soon' is not a number with a unit; "
        "write e.g. 30s, 5m, 2h or 1d\n"
        '  fix: write manual, after_sync, {every: "5m"} or {cron: "*/10 * * * *"}'
    )


def test_bad_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, "kind: play\nname: Follow Up\n") == (
        "plays/p.yaml:2: name 'Follow Up' is not a valid name\n"
        "  fix: use lower-case letters, digits and dashes: follow-up-a"
    )


def test_unreachable_nodes_are_warnings_not_errors(tmp_path: Path) -> None:
    play = load_text(tmp_path, HEAD + "  - {id: a, type: end}\n  - {id: orphan, type: end}\n")
    assert play.warnings == [f'{tmp_path}/p.yaml:6: node "orphan" can never run (nothing leads to it)']


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


TOOL = (
    "kind: tool\nname: add-note\ndescription: Add a note.\n"
    "inputs: {lead_id: {type: string}}\n"
    "outputs: {ok: {type: boolean, value: true}}\n"
    "nodes:\n  - {id: done, type: end}\n"
)


def test_load_folder_resolves_tool_calls(tmp_path: Path) -> None:
    write(tmp_path, "add-note.yaml", TOOL)
    write(
        tmp_path,
        "p.yaml",
        HEAD + "  - {id: call, type: tool, tool: add-note, input: {lead_id: {path: record.id}}}\n",
    )
    catalog = load_folder(tmp_path)
    assert sorted(catalog.plays) == ["p"]
    assert sorted(catalog.tools) == ["add-note"]
    tool = catalog.tools["add-note"]
    assert tool.inputs["lead_id"].type == "string" and tool.inputs["lead_id"].required is True
    assert tool.outputs["ok"].value is True


def test_unknown_tool(tmp_path: Path) -> None:
    write(tmp_path, "add-note.yaml", TOOL)
    write(tmp_path, "p.yaml", HEAD + "  - {id: call, type: tool, tool: add-notes}\n")
    with pytest.raises(PlayFileError) as caught:
        load_folder(tmp_path)
    assert str(caught.value) == (
        f'{tmp_path}/p.yaml:5: node "call" calls the unknown tool "add-notes"\n'
        '  fix: did you mean "add-note"?'
    )


def test_names_are_unique_across_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", TOOL)
    write(tmp_path, "b.yaml", TOOL)
    with pytest.raises(PlayFileError, match=r'b.yaml:1: the name "add-note" is already used by .*a.yaml'):
        load_folder(tmp_path)
