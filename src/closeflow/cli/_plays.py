"""`closeflow run`, `plays`, `runs`, `tools`: run the plays of a folder and look at their history."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Column, Table

from closeflow._clock import SystemClock
from closeflow.actions import Ledger, SqliteLedger, open_write_ledger
from closeflow.cli._app import app, console, err_console, fail, guarded, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.close import ConfigError
from closeflow.plays import (
    Catalog,
    CycleReport,
    RunLedger,
    RunRecord,
    load_folder,
    open_run_ledger,
    parse_duration,
    retry_from,
    run_cycle,
    run_forever,
    run_to_end,
    run_tool,
)
from closeflow.sync import Store, open_store

plays_app = typer.Typer(help="The plays of a folder: list, validate, run one now.", no_args_is_help=True)
runs_app = typer.Typer(help="Run history: list, show node by node, retry.", no_args_is_help=True)
tools_app = typer.Typer(
    help="Tools: node graphs with typed inputs and outputs, run on demand.", no_args_is_help=True
)
app.add_typer(plays_app, name="plays")
app.add_typer(runs_app, name="runs")
app.add_typer(tools_app, name="tools")

PlaysOption = typer.Option(Path("plays"), "--plays", help="Folder of play and tool YAML files.")
DbOption = typer.Option(
    "closeflow.db", "--db", help="SQLite file of the store, the run ledger and the write ledger."
)
PostgresOption = typer.Option(
    None,
    "--postgres",
    envvar="CLOSEFLOW_POSTGRES",
    help="Postgres URL of the store, the run ledger and the write ledger (instead of --db).",
)
WritesOption = typer.Option(
    None,
    "--write-ledger",
    help=(
        "The actions' write ledger, keeping creates at-most-once: a SQLite file or a postgresql:// URL "
        "(default: the --postgres database if given, else the --db file)."
    ),
)
STATUS_COLUMNS = ("succeeded", "failed", "filtered", "waiting")


@dataclass
class _Session:
    catalog: Catalog
    store: Store
    ledger: RunLedger
    writes: Ledger


@contextmanager
def _session(plays: Path, db: str, postgres: str | None, writes: str | None) -> Iterator[_Session]:
    catalog = load_catalog(plays)
    target = postgres or db
    store = open_store(target)
    ledger = open_run_ledger(target)
    write_ledger = open_writes(writes, target)
    try:
        yield _Session(catalog, store, ledger, write_ledger)
    finally:
        write_ledger.close()
        ledger.close()
        store.close()


def open_writes(writes: str | None, target: str) -> Ledger:
    """The actions' write ledger: --write-ledger (a path or URL) if given, else the store's database
    (``target``: the --postgres URL, else the --db file), so runners sharing one Postgres database
    share at-most-once creates too."""
    return open_write_ledger(writes or target)


def load_catalog(folder: Path) -> Catalog:
    if not folder.is_dir():
        raise ConfigError(
            f"no plays folder at {folder}: create it, or point --plays at the folder of play files"
        )
    return load_folder(folder)


# --- closeflow run -------------------------------------------------------------------------------


def _cycle_table(report: CycleReport) -> Table:
    table = Table(
        Column("play", no_wrap=True),
        "due",
        "changes",
        "enrolled",
        "already",
        *STATUS_COLUMNS,
        Column("error", overflow="fold"),
        caption=f"{report.resumed} unfinished run(s) resumed",
    )
    for counts in report.plays.values():
        table.add_row(
            counts.play,
            "yes" if counts.due else "no",
            str(counts.changes),
            str(counts.enrolled),
            str(counts.already_enrolled),
            *(str(counts.count(status)) for status in STATUS_COLUMNS),
            counts.error or "",
        )
    return table


@app.command("run")
@guarded
def run_command(
    every: str | None = typer.Option(
        None, "--every", help="Repeat every DURATION (30s, 5m, 1h) until stopped."
    ),
    plays: Path = PlaysOption,
    sync_first: bool = typer.Option(
        True, "--sync/--no-sync", help="Sync the store from Close before each cycle."
    ),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Runs executing at once."),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    writes: str | None = WritesOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Sync, read new changes, enrol matching records into plays and run them (once, or --every)."""
    interval = parse_duration(every) if every is not None else None
    with _session(plays, db, postgres, writes) as session:
        reports = run(_run(session, interval, sync_first, concurrency, profile, base_url))
    failed = sum(report.by_status().get("failed", 0) for report in reports)
    errors = [c.error for report in reports for c in report.plays.values() if c.error]
    if errors:
        raise typer.Exit(1)
    if failed:
        err_console.print(f"{failed} run(s) failed: `closeflow runs list --status failed` shows them")


async def _run(
    session: _Session,
    every: float | None,
    sync_first: bool,
    concurrency: int,
    profile: str | None,
    base_url: str | None,
) -> list[CycleReport]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # finish the current run, then stop cleanly
    async with client_for(profile, base_url) as client:
        with Live(
            _cycle_table(CycleReport()), console=console, refresh_per_second=4, transient=False
        ) as live:
            options: dict[str, Any] = {
                "sync_first": sync_first,
                "concurrency": concurrency,
                "progress": lambda report: live.update(_cycle_table(report)),
            }
            return await run_forever(
                session.catalog,
                every=every or 1.0,
                cycles=None if every else 1,
                stop=stop,
                store=session.store,
                client=client,
                ledger=session.ledger,
                write_ledger=session.writes,
                clock=SystemClock(),
                **options,
            )


# --- closeflow plays ------------------------------------------------------------------------------


@plays_app.command("list")
@guarded
def plays_list(plays: Path = PlaysOption) -> None:
    """Each play: its trigger, enrolment and schedule."""
    catalog = load_catalog(plays)
    table = Table(
        Column("play", no_wrap=True),
        "trigger",
        "where",
        "enrolment",
        "schedule",
        Column("description", overflow="fold"),
    )
    for play in catalog.plays.values():
        trigger = f"{play.trigger.model}: {', '.join(play.trigger.on)}"
        if play.trigger.changed:
            trigger += f" ({', '.join(play.trigger.changed)} changed)"
        schedule: str = play.schedule.kind
        if play.schedule.every_seconds is not None:
            schedule += f" {play.schedule.every_seconds:g}s"
        if play.schedule.cron:
            schedule += f" {play.schedule.cron}"
        table.add_row(
            play.name, trigger, play.trigger.where or "", play.enrolment.mode, schedule, play.description
        )
    console.print(table)


@plays_app.command("validate")
@guarded
def plays_validate(plays: Path = PlaysOption) -> None:
    """Check every play and tool file (YAML, fields, node graph, filters, tool references)."""
    catalog = load_catalog(plays)
    console.print(
        f"{len(catalog.plays)} play(s) and {len(catalog.tools)} tool(s) are valid in {plays}", soft_wrap=True
    )


@plays_app.command("run")
@guarded
def plays_run(
    name: str = typer.Argument(..., help="The play to run now, whatever its schedule."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan of writes per record; send nothing."
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many records."),
    sync_first: bool = typer.Option(False, "--sync/--no-sync", help="Sync the store from Close first."),
    plays: Path = PlaysOption,
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    writes: str | None = WritesOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Enrol the play's pending changes (since its cursor) now and run them, or --dry-run them."""
    with _session(plays, db, postgres, writes) as session:
        if name not in session.catalog.plays:
            raise fail(f"no play named {name!r} in {plays}; `closeflow plays list` shows them", 1)
        if dry_run:
            # A throwaway ledger pair: a dry run must neither enrol records nor move the play's cursor.
            scratch = _Session(
                session.catalog, session.store, open_run_ledger(":memory:"), SqliteLedger(":memory:")
            )
            scratch.ledger.set_cursor(name, session.ledger.cursor(name))
            # Read (never written) from the real ledger: a record enrolled once already is not "new".
            for record_id, change_seq, mode in session.ledger.enrolments(name):
                scratch.ledger.enrol(name, record_id, change_seq, mode)
            try:
                report = run(_run_play(scratch, name, dry_run, limit, sync_first, profile, base_url))
            finally:
                scratch.ledger.close()
                scratch.writes.close()
        else:
            report = run(_run_play(session, name, dry_run, limit, sync_first, profile, base_url))
    console.print(_cycle_table(report))
    for record in report.runs:
        _print_run(record, plans_only=dry_run)


async def _run_play(
    session: _Session,
    name: str,
    dry_run: bool,
    limit: int | None,
    sync_first: bool,
    profile: str | None,
    base_url: str | None,
) -> CycleReport:
    async with client_for(profile, base_url) as client:
        return await run_cycle(
            session.catalog,
            store=session.store,
            client=client,
            ledger=session.ledger,
            write_ledger=session.writes,
            clock=SystemClock(),
            sync_first=sync_first,
            plays=[name],
            ignore_schedule=True,
            limit=limit,
            dry_run=dry_run,
        )


# --- closeflow runs -------------------------------------------------------------------------------


@runs_app.command("list")
@guarded
def runs_list(
    play: str | None = typer.Option(None, "--play", help="Only runs of this play or tool."),
    status: str | None = typer.Option(
        None, "--status", help="pending, running, waiting, succeeded, failed, filtered."
    ),
    source: str | None = typer.Option(None, "--source", help="play, tool, cli or mcp."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many runs (newest first)."),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """Runs, newest first."""
    ledger = open_run_ledger(postgres or db)
    try:
        records = ledger.runs(play=play, status=status, source=source, limit=limit)
    finally:
        ledger.close()
    table = Table(
        Column("run", no_wrap=True),
        Column("play", no_wrap=True),
        "source",
        Column("status", no_wrap=True),
        "record",
        "nodes",
        Column("error", overflow="fold"),
        caption=f"{len(records)} run(s)",
    )
    for record in records:
        table.add_row(
            record.id,
            record.play,
            record.source,
            record.status,
            record.record_id or "",
            " → ".join(n.node_id for n in record.nodes),
            _first_words(record.error or ""),
        )
    console.print(table)


def _first_words(text: str, limit: int = 60) -> str:
    """A list row's error: its start; `runs show` has all of it."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@runs_app.command("show")
@guarded
def runs_show(
    run_id: str = typer.Argument(..., help="A run id (run_…) from `closeflow runs list`."),
    as_json: bool = typer.Option(False, "--json", help="The whole run as JSON."),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """One run node by node: attempts, inputs, outputs, errors, timing."""
    ledger = open_run_ledger(postgres or db)
    try:
        record = ledger.run(run_id)
    finally:
        ledger.close()
    if record is None:
        raise fail(f"no run {run_id!r} in the ledger; `closeflow runs list` shows the run ids", 1)
    if as_json:
        sys.stdout.write(json.dumps(record.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
        return
    _print_run(record, plans_only=False)


def _print_run(record: RunRecord, *, plans_only: bool) -> None:
    console.print(
        f"[bold]{record.id}[/] {record.play} record={record.record_id or '-'} status={record.status}"
        + (f" error={record.error}" if record.error else ""),
        highlight=False,
    )
    table = Table(
        "node",
        "attempt",
        "status",
        "seconds",
        Column("output" if not plans_only else "plan", overflow="fold"),
        Column("error", overflow="fold"),
    )
    for node in record.nodes:
        output = json.dumps(node.output, ensure_ascii=False, default=str) if node.output is not None else ""
        table.add_row(
            node.node_id,
            str(node.attempt),
            node.status,
            f"{node.finished_at - node.started_at:.3f}",
            output[:400],
            node.error or "",
        )
    console.print(table)


@runs_app.command("retry")
@guarded
def runs_retry(
    run_id: str | None = typer.Argument(None, help="The failed run to retry."),
    from_failed_node: bool = typer.Option(
        False,
        "--from-failed-node",
        help="Reuse the completed nodes' outputs; re-run only the failed node onward.",
    ),
    failed: bool = typer.Option(False, "--failed", help="Retry every failed run (of --play, if given)."),
    play: str | None = typer.Option(None, "--play", help="With --failed: only this play's runs."),
    plays: Path = PlaysOption,
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    writes: str | None = WritesOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Retry a failed run (or --failed: all of them) and show how each retry ended."""
    if (run_id is None) == (not failed):
        raise fail("give a run id, or --failed (optionally with --play) to retry every failed run")
    with _session(plays, db, postgres, writes) as session:
        ids = (
            [run_id]
            if run_id
            else [
                r.id
                for r in session.ledger.runs(play=play, status="failed", limit=10_000)
                if r.retried_by is None  # retried before: its retry is the run to look at
            ]
        )
        records = run(_retry(session, ids, from_failed_node or failed, profile, base_url))
    for record in records:
        _print_run(record, plans_only=False)
    console.print(f"{len(records)} run(s) retried: {sum(r.status == 'succeeded' for r in records)} succeeded")


async def _retry(
    session: _Session, ids: list[str], from_failed_node: bool, profile: str | None, base_url: str | None
) -> list[RunRecord]:
    async with client_for(profile, base_url) as client:
        results = []
        for run_id in ids:
            new_id = retry_from(session.ledger, run_id, from_failed_node=from_failed_node)
            results.append(
                await run_to_end(
                    new_id,
                    session.catalog,
                    ledger=session.ledger,
                    client=client,
                    write_ledger=session.writes,
                    clock=SystemClock(),
                )
            )
        return results


# --- closeflow tools ------------------------------------------------------------------------------


@tools_app.command("list")
@guarded
def tools_list(plays: Path = PlaysOption) -> None:
    """Each tool: its inputs, outputs and description (what an agent would see)."""
    catalog = load_catalog(plays)
    table = Table(
        Column("tool", no_wrap=True),
        Column("inputs", overflow="fold"),
        Column("outputs", overflow="fold"),
        Column("description", overflow="fold"),
    )
    for tool in catalog.tools.values():
        inputs = ", ".join(
            f"{name}: {spec.type}{'' if spec.required else '?'}" for name, spec in tool.inputs.items()
        )
        outputs = ", ".join(f"{name}: {spec.type}" for name, spec in tool.outputs.items())
        table.add_row(tool.name, inputs, outputs, tool.description)
    console.print(table)


@tools_app.command("run")
@guarded
def tools_run(
    name: str = typer.Argument(..., help="The tool to run."),
    inputs: str = typer.Option(
        "{}", "--input", help='Inputs as a JSON object, e.g. \'{"lead_id": "lead_…"}\'.'
    ),
    plays: Path = PlaysOption,
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    writes: str | None = WritesOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Run a tool once with JSON inputs; prints its outputs as JSON."""
    try:
        values = json.loads(inputs)
    except json.JSONDecodeError as exc:
        raise fail(
            f"--input is not valid JSON ({exc.msg} at column {exc.colno}); pass an object like '{{\"a\": 1}}'"
        ) from None
    if not isinstance(values, dict):
        raise fail("--input must be a JSON object of input names to values")
    with _session(plays, db, postgres, writes) as session:
        if name not in session.catalog.tools:
            raise fail(f"no tool named {name!r} in {plays}; `closeflow tools list` shows them", 1)
        record, outputs = run(_tool(session, name, values, profile, base_url))
    _print_run(record, plans_only=False)
    sys.stdout.write(json.dumps(outputs, indent=2, ensure_ascii=False, default=str) + "\n")
    if record.status != "succeeded":
        raise typer.Exit(1)


async def _tool(
    session: _Session, name: str, values: dict[str, Any], profile: str | None, base_url: str | None
) -> tuple[RunRecord, dict[str, Any]]:
    async with client_for(profile, base_url) as client:
        return await run_tool(
            name,
            values,
            session.catalog,
            ledger=session.ledger,
            client=client,
            write_ledger=session.writes,
            clock=SystemClock(),
            source="cli",
        )
