"""Specs say what is wrong before anything runs; inputs stream with row numbers and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from closeflow.actions import (
    InputError,
    InsertLead,
    UpsertContacts,
    UpsertLeads,
    from_text,
    parse_spec,
    read_csv,
    read_jsonl,
)


def test_unknown_standard_field_lists_the_allowed_ones() -> None:
    with pytest.raises(
        ValidationError, match=r'mappings: unknown field "company".*use one of name, description, url'
    ):
        InsertLead(mappings={"company": "company"})


def test_match_shorthand_becomes_a_rule_and_needs_both_halves() -> None:
    spec = UpsertContacts(match_property="email", match_value="work_email")
    assert [(r.property, r.value) for r in spec.match] == [("email", "work_email")]
    with pytest.raises(ValidationError, match="match_property and match_value go together"):
        UpsertContacts(match_property="email")
    with pytest.raises(ValidationError, match="give at least one match rule"):
        UpsertLeads()
    with pytest.raises(ValidationError, match='match: unknown field "email"'):
        UpsertLeads(match_property="email", match_value="email")


def test_parse_spec_picks_the_action_and_forbids_unknown_options() -> None:
    spec = parse_spec({"action": "upsert_leads", "match_property": "url", "match_value": "site"})
    assert isinstance(spec, UpsertLeads) and spec.on_many == "fail" and spec.arrays == "merge"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse_spec({"action": "insert_lead", "mapping": {}})


def _leaves(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, model in schema.get("$defs", {}).items():
        for field, prop in model.get("properties", {}).items():
            out.append((name, field, prop))
    return out


@pytest.mark.parametrize(
    "model", ["InsertLead", "InsertContact", "UpdateLeads", "UpsertContacts", "SearchLeads", "DeleteContacts"]
)
def test_every_option_is_described_for_cli_plays_and_agents(model: str) -> None:
    import closeflow.actions as actions

    schema = getattr(actions, model).model_json_schema()
    undocumented = [
        name
        for name, prop in schema["properties"].items()
        if name not in ("action", "object_type") and not prop.get("description")
    ]
    assert undocumented == []


def test_csv_rows_carry_their_row_numbers_and_drop_the_bom(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("\ufeffemail,name\ngob@example.com,Gob\n\n,\nmaeby@example.com,\n", encoding="utf-8")

    rows = list(read_csv(path))

    assert rows == [{"email": "gob@example.com", "name": "Gob"}, {"email": "maeby@example.com", "name": ""}]
    assert [r.row for r in rows] == [1, 4]


def test_csv_with_too_many_cells_names_the_line() -> None:
    with pytest.raises(InputError, match="line 3: 3 cells but the header has 2 columns"):
        list(from_text("email,name\na@example.com,A\nb@example.com,B,extra\n", "csv"))


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text('{"email": "a@example.com"}\n\n{"email": \n', encoding="utf-8")
    rows = read_jsonl(path)
    assert next(rows).row == 1
    with pytest.raises(InputError, match=r"people\.jsonl: line 3: not valid JSON"):
        next(rows)
    with pytest.raises(InputError, match="line 1: expected a JSON object, got list"):
        list(from_text("[1, 2]\n", "jsonl"))
