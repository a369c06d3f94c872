"""`closeflow leads|contacts insert|update|upsert|search|delete`: the actions library from the shell.

Each command's options are generated from its action spec (``closeflow.actions``): a spec field
the command takes becomes one option whose help is the field's own description, so the CLI, play
nodes and MCP tools describe a setting in the same words, and a new spec field is one row in
``SPEC_OPTIONS``. Exit codes: 0 all records fine, 1 a record failed (or Close / the delete guard
refused), 2 bad options or input.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import typer

from closeflow.actions import (
    DeleteContacts,
    DeleteLeads,
    InsertContact,
    InsertLead,
    SearchContacts,
    SearchLeads,
    UpdateContacts,
    UpdateLeads,
    UpsertContacts,
    UpsertLeads,
    input_keys,
    search,
)
from closeflow.cli._app import app, fail, guarded, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.cli._records import (
    BatchOptions,
    InputRecords,
    OutputFormat,
    batch_id_for,
    open_input,
    open_report,
    render_records,
    run_batch,
    split_fields,
)

Kind = Literal["rules", "pairs", "text", "choice", "flag", "int", "list"]


@dataclass(frozen=True)
class SpecOption:
    """One spec field as a CLI option; ``usage`` says only what the CLI adds (syntax, repetition)."""

    field: str
    decls: tuple[str, ...]
    kind: Kind
    metavar: str | None = None
    usage: str = ""


SPEC_OPTIONS: tuple[SpecOption, ...] = (
    SpecOption(
        "match",
        ("--match", "-m"),
        "rules",
        "PROP[=COLUMN]",
        'Repeatable, tried in order; COLUMN defaults to PROP (to the field name for custom."Name").',
    ),
    SpecOption("mappings", ("--map",), "pairs", "FIELD=COLUMN", "Repeatable."),
    SpecOption("custom", ("--custom",), "pairs", "NAME=COLUMN", "Repeatable."),
    SpecOption(
        "constants",
        ("--set",),
        "pairs",
        "FIELD=VALUE",
        "Repeatable; VALUE is text, FIELD= with nothing after = is null.",
    ),
    SpecOption("email", ("--email",), "text", "COLUMN"),
    SpecOption("email_type", ("--email-type",), "text", "TYPE"),
    SpecOption("phone", ("--phone",), "text", "COLUMN"),
    SpecOption("phone_type", ("--phone-type",), "text", "TYPE"),
    SpecOption("associated_lead_id", ("--lead-id",), "text", "COLUMN"),
    SpecOption("key", ("--key",), "text", "COLUMN"),
    SpecOption("on_many", ("--on-many",), "choice"),
    SpecOption("on_none", ("--on-none",), "choice"),
    SpecOption("arrays", ("--arrays",), "choice"),
    SpecOption("lead_mismatch", ("--lead-mismatch",), "choice"),
    SpecOption("where", ("--where", "-w"), "text", "FILTER"),
    SpecOption("sort", ("--sort",), "text", "[-]FIELD"),
    SpecOption("limit", ("--limit", "-n"), "int", "N"),
    SpecOption("fields", ("--fields", "-f"), "list", "FIELDS", "Comma-separated."),
    SpecOption("max_affected", ("--max-affected",), "int", "N"),
    SpecOption("force", ("--force",), "flag"),
    SpecOption("dry_run", ("--dry-run",), "flag"),
    SpecOption("stop_on_invalid", ("--stop-on-invalid",), "flag"),
)
OPTION_NAMES = {o.field: o.decls[0] for o in SPEC_OPTIONS}
# Spec fields the CLI spells differently: the match shorthand is --match PROP=COLUMN.
NOT_OPTIONS = frozenset({"action", "object_type", "match_property", "match_value"})
SEARCH_DEFAULT_FIELDS = {"lead": "display_name,status_label", "contact": "name,title,lead_id"}

COMMANDS: dict[str, dict[str, type[pydantic.BaseModel]]] = {
    "lead": {
        "insert": InsertLead,
        "update": UpdateLeads,
        "upsert": UpsertLeads,
        "search": SearchLeads,
        "delete": DeleteLeads,
    },
    "contact": {
        "insert": InsertContact,
        "update": UpdateContacts,
        "upsert": UpsertContacts,
        "search": SearchContacts,
        "delete": DeleteContacts,
    },
}


# -- options from specs --------------------------------------------------------------------------


def _option(spec_class: type[pydantic.BaseModel], option: SpecOption, object_type: str) -> inspect.Parameter:
    info = spec_class.model_fields[option.field]
    help_text = f"{option.usage} {info.description or ''}".strip()
    annotation: Any
    extra: dict[str, Any] = {}
    if option.kind in ("rules", "pairs"):
        annotation, default = list[str] | None, None
    elif option.kind == "choice":
        # typer turns a Literal into a choice; the spec's Literal is the one list of allowed values.
        annotation, default = info.annotation, info.default
        extra = {"show_default": True}
    elif option.kind == "flag":
        annotation, default = bool, False
    elif option.kind == "int":
        annotation, default = int | None, info.default
        extra = {"min": 0 if option.field == "max_affected" else 1, "show_default": default is not None}
    elif option.kind == "list":
        annotation, default = str, SEARCH_DEFAULT_FIELDS[object_type]
    else:
        default = info.default if isinstance(info.default, str) else None
        annotation = str | None
        extra = {"show_default": default is not None}
    typer_option = typer.Option(default, *option.decls, help=help_text, metavar=option.metavar, **extra)
    return inspect.Parameter(
        option.field, inspect.Parameter.KEYWORD_ONLY, default=typer_option, annotation=annotation
    )


def _parameter(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _run_parameters() -> list[inspect.Parameter]:
    return [
        _parameter(
            "input",
            str | None,
            typer.Option(
                None,
                "--input",
                "-i",
                metavar="PATH|-",
                help="Input records: a CSV file (header row) or JSONL (.jsonl/.ndjson), - for stdin.",
            ),
        ),
        _parameter(
            "input_format",
            Literal["csv", "jsonl"] | None,
            typer.Option(
                None,
                "--input-format",
                help="csv or jsonl (default: by the file's extension; stdin is csv).",
            ),
        ),
        _parameter(
            "batch_id",
            str | None,
            typer.Option(
                None,
                "--batch-id",
                help="Ledger key of this batch. Default: derived from the input's content and the "
                "options, so running the same command again resumes it (printed at the start).",
            ),
        ),
        _parameter(
            "ledger",
            str,
            typer.Option(
                "closeflow.db",
                "--ledger",
                help="Write ledger (makes creates at-most-once): a SQLite file or a postgresql:// URL.",
            ),
        ),
        _parameter(
            "report",
            str | None,
            typer.Option(None, "--report", metavar="PATH", help="Write one JSON line per record here."),
        ),
        _parameter(
            "concurrency",
            int,
            typer.Option(8, "--concurrency", min=1, max=64, help="Writes in flight at most."),
        ),
        _parameter(
            "search_lag",
            float | None,
            typer.Option(
                None,
                "--search-lag",
                min=0,
                metavar="SECONDS",
                help="How old a create with a lost answer must be before a re-run sends it again "
                "when Close's search does not show it (Close's search lags 30-60 s). Default: "
                "$CLOSEFLOW_SEARCH_LAG, else 120; 0 is safe against the emulator.",
            ),
        ),
    ]


def _connection_parameters() -> list[inspect.Parameter]:
    return [
        _parameter("profile", str | None, ProfileOption),
        _parameter("base_url", str | None, BaseUrlOption),
    ]


def _search_parameters() -> list[inspect.Parameter]:
    return [
        _parameter(
            "output",
            OutputFormat,
            typer.Option(OutputFormat.table, "--format", help="Output format: table, json, jsonl or csv."),
        )
    ]


def _with_signature(function: Callable[..., None], parameters: list[inspect.Parameter], doc: str) -> Any:
    # typer reads a command's options from its signature and type hints, so a generated signature
    # is all it needs to build the options of a generated command.
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    function.__doc__ = doc
    return guarded(function)


# -- option values -> spec -------------------------------------------------------------------------


def _split_pair(text: str, option: str, syntax: str) -> tuple[str, str]:
    """``NAME=VALUE`` split at the first ``=`` outside double quotes (custom."A=B"=column)."""
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "=" and not quoted:
            name = text[:index].strip()
            if name:
                return name, text[index + 1 :].strip()
            break
    raise fail(f'{option} expects {syntax}, got "{text}"; e.g. {option} {_EXAMPLES[option]}')


_EXAMPLES = {
    "--map": "name=full_name",
    "--custom": '"Lead Source=source"',
    "--set": "status=Qualified",
    "--match": "email",
}


def _spec_data(spec_class: type[pydantic.BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for option in SPEC_OPTIONS:
        if option.field not in spec_class.model_fields or values.get(option.field) is None:
            continue
        value, name = values[option.field], option.decls[0]
        if option.kind == "rules":
            rules = []
            for text in value:
                prop, column = _split_pair(text, name, option.metavar or "") if "=" in text else (text, "")
                default = prop.removeprefix("custom.").strip('"') if prop.startswith("custom.") else prop
                rules.append({"property": prop, "value": column or default})
            if rules:
                data["match"] = rules
        elif option.kind == "pairs":
            pairs: dict[str, Any] = {}
            for text in value:
                key, item = _split_pair(text, name, option.metavar or "")
                if option.field == "custom":
                    key = key.strip('"')
                if key in pairs:
                    raise fail(f"{name} {key} is given twice; give each field once")
                pairs[key] = None if option.field == "constants" and item == "" else item
            if pairs:
                data[option.field] = pairs
        elif option.kind == "list":
            data[option.field] = split_fields(value)
        elif option.kind == "flag":
            if value:
                data[option.field] = True
        else:
            data[option.field] = value
    return data


def _build_spec(spec_class: type[pydantic.BaseModel], data: dict[str, Any]) -> Any:
    try:
        return spec_class.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            field = str(error["loc"][0]) if error["loc"] else message.split(":", 1)[0]
            if field in OPTION_NAMES:
                message = message.removeprefix(f"{field}:").strip()
                problems.append(f"{OPTION_NAMES[field]}: {message}")
            else:
                problems.append(message)
        raise fail("; ".join(problems)) from None


# -- commands ------------------------------------------------------------------------------------------


def _check_criteria(verb: str, values: dict[str, Any]) -> None:
    """Say which option is missing in CLI words, before the spec says it in Python words."""
    given_input, match = values.get("input"), values.get("match")
    if verb in ("update", "upsert") and not match:
        raise fail(f"--match is required for {verb}: how to find the Close record, e.g. --match email")
    if verb == "delete":
        where = values.get("where")
        if where is None and not match:
            raise fail(
                'a delete needs criteria: --where FILTER (e.g. --where \'custom."Source" = "Import"\') '
                "or --match PROP[=COLUMN] with --input"
            )
        if where is not None and given_input:
            raise fail("--where selects the records itself; drop --input (or use --match with --input)")
        if match and not given_input:
            raise fail("--match needs --input: the records whose matches to delete")
    elif verb != "search" and not given_input:
        raise fail("--input is required: a CSV or JSONL file, or - for stdin")


def _command(object_type: str, verb: str, spec_class: type[pydantic.BaseModel]) -> Any:
    spec_options = [
        _option(spec_class, o, object_type) for o in SPEC_OPTIONS if o.field in spec_class.model_fields
    ]
    doc = (spec_class.__doc__ or "").strip().splitlines()[0]

    if verb == "search":

        def search_command(**values: Any) -> None:
            spec = _build_spec(spec_class, _spec_data(spec_class, values))
            run(_search(spec, values["output"], values["profile"], values["base_url"]))

        return _with_signature(
            search_command, [*spec_options, *_search_parameters(), *_connection_parameters()], doc
        )

    def write_command(**values: Any) -> None:
        _check_criteria(verb, values)
        spec = _build_spec(spec_class, _spec_data(spec_class, values))
        options = BatchOptions(
            batch_id=values["batch_id"] or "",
            ledger=values["ledger"],
            report=values["report"],
            concurrency=values["concurrency"],
            profile=values["profile"],
            base_url=values["base_url"],
            search_lag=values["search_lag"],
        )
        with open_input(values["input"], values["input_format"]) as records:
            if records is not None:
                _check_columns(spec, records)
            options.batch_id = options.batch_id or batch_id_for(spec, records)
            stream, total = (records.open(), records.count) if records is not None else (None, None)
            failed = run(run_batch(spec, stream, options, total, open_report(options.report)))
        if failed:
            raise typer.Exit(1)

    return _with_signature(write_command, [*spec_options, *_run_parameters(), *_connection_parameters()], doc)


async def _search(spec: Any, output: OutputFormat, profile: str | None, base_url: str | None) -> None:
    async with client_for(profile, base_url) as client:
        await render_records(search(client, spec), spec.fields, output)


def _check_columns(spec: Any, records: InputRecords) -> None:
    """Every column the options name must exist in the input (a typo would silently map nothing)."""
    options = {
        "mappings": "--map {fills}={key}",
        "custom": '--custom "{fills}={key}"',
        "match": "--match {fills}={key}",
    }
    named = [
        (
            options[field].format(fills=fills, key=key)
            if field in options
            else f"{OPTION_NAMES[field]} {key}",
            key,
        )
        for key, field, fills in input_keys(spec)
    ]
    missing = [(option, column) for option, column in named if column not in records.columns]
    if missing and records.count:
        columns = ", ".join(sorted(records.columns)) or "none"
        option, column = missing[0]
        raise fail(f'{option}: {records.name} has no column "{column}"; its columns are: {columns}')


def _register() -> None:
    for object_type, commands in COMMANDS.items():
        group = typer.Typer(
            help=f"Insert, update, upsert, search and delete Close {object_type}s.", no_args_is_help=True
        )
        for verb, spec_class in commands.items():
            group.command(verb)(_command(object_type, verb, spec_class))
        app.add_typer(group, name=f"{object_type}s")


_register()
