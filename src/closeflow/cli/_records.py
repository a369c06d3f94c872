"""`closeflow leads …` and `closeflow contacts …`: work with Close records from the shell."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Any

import typer
from rich.table import Column, Table

from closeflow.cli._app import app, console, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.close import find


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def _search_command(object_type: str, default_fields: str) -> Any:
    def search(
        where: str | None = typer.Option(
            None,
            "--where",
            "-w",
            help='Filter, e.g. \'status = "Qualified" and custom."Tier" = "A"\', '
            "'email contains \"acme.com\"', 'date_updated >= \"2026-01-01\"'. Omit for every record.",
        ),
        sort: str | None = typer.Option(
            None,
            "--sort",
            help="Field to sort by, '-' first for descending (e.g. -date_updated). "
            "Default: date_updated ascending, which streams past Close's 10,000-result cap.",
        ),
        limit: int | None = typer.Option(
            None, "--limit", "-n", min=1, help="Return at most this many records."
        ),
        fields: str = typer.Option(
            default_fields,
            "--fields",
            "-f",
            help='Comma-separated fields to return; custom fields as custom."Field Name".',
        ),
        output: OutputFormat = typer.Option(OutputFormat.table, "--format", help="Output format."),
        profile: str | None = ProfileOption,
        base_url: str | None = BaseUrlOption,
    ) -> None:
        wanted = [name.strip() for name in _split_fields(fields)]
        rows = run(_collect(object_type, where, sort, limit, wanted, profile, base_url))
        _render(rows, ["id", *(f for f in wanted if f != "id")], output)

    search.__doc__ = f"Search {object_type}s with Close's Advanced Filtering, custom fields by name."
    return search


async def _collect(
    object_type: str,
    where: str | None,
    sort: str | None,
    limit: int | None,
    fields: list[str],
    profile: str | None,
    base_url: str | None,
) -> list[dict[str, Any]]:
    async with client_for(profile, base_url) as client:
        rows = find(client, object_type, where=where, fields=fields, sort=sort, limit=limit)
        return [row async for row in rows]


def _split_fields(text: str) -> list[str]:
    """Split on commas outside double quotes (custom."Field, with comma")."""
    return next(csv.reader([text], skipinitialspace=True)) if text else []


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _render(rows: list[dict[str, Any]], columns: list[str], output: OutputFormat) -> None:
    keys = [
        c if not c.startswith('custom."') else "custom." + c.removeprefix("custom.").strip('"')
        for c in columns
    ]
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif output is OutputFormat.jsonl:
        sys.stdout.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(keys)
        writer.writerows([_cell(row.get(k)) for k in keys] for row in rows)
    else:
        table = Table(
            *(Column(k, overflow="fold") for k in keys),
            caption=f"{len(rows)} record{'s' if len(rows) != 1 else ''}",
        )
        for row in rows:
            table.add_row(*(_cell(row.get(k)) for k in keys))
        console.print(table)


for _object_type, _defaults in (("lead", "display_name,status_label"), ("contact", "name,title,lead_id")):
    _group = typer.Typer(help=f"Work with Close {_object_type}s.", no_args_is_help=True)
    _group.command("search")(_search_command(_object_type, _defaults))
    app.add_typer(_group, name=f"{_object_type}s")
