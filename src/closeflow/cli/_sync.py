"""`closeflow sync`, `models`, `changes`, `sql`: extract Close into a local store and read it."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from closeflow.cli._app import app, console, fail, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.sync import (
    DEFAULT_LOOKBACK,
    MODEL_NAMES,
    Store,
    StoreError,
    StreamProgress,
    SyncResult,
    open_store,
    sync,
)

DbOption = typer.Option("closeflow.db", "--db", help="SQLite file of the store.")
PostgresOption = typer.Option(
    None, "--postgres", envvar="CLOSEFLOW_POSTGRES", help="Postgres URL of the store (instead of --db)."
)


class TableFormat(StrEnum):
    table = "table"
    json = "json"


class RowsFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _open(db: str, postgres: str | None) -> Store:
    try:
        return open_store(postgres or db)
    except StoreError as exc:
        raise fail(str(exc), 1) from None


class _LiveDisplay:
    """One progress line per stream: phase, records, requests, rate-limit waits, changes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stream: StreamProgress) -> None:
        text = (
            f"{stream.phase:<11} {stream.records:>8} records {stream.requests:>6} requests "
            f"{stream.rate_limit_waits:>4} waits  +{stream.added} ~{stream.updated} -{stream.removed}"
        )
        if stream.error:
            text += f"  [red]{stream.error}[/]"
        task = self.tasks.get(stream.stream)
        if task is None:
            self.tasks[stream.stream] = self.progress.add_task(stream.stream, status=text, total=None)
        else:
            self.progress.update(task, status=text)


@app.command("sync")
def sync_command(
    models: list[str] | None = typer.Argument(
        None, help=f"Models to sync (default: all): {', '.join(MODEL_NAMES)}.", show_default=False
    ),
    full: bool = typer.Option(False, "--full", help="Re-read everything from Close, then reconcile ids."),
    reconcile: bool = typer.Option(
        False, "--reconcile", help="Compare id sets with Close to catch deletions older than the event log."
    ),
    lookback: float = typer.Option(
        DEFAULT_LOOKBACK, "--lookback", min=0, help="Seconds re-read behind every incremental position."
    ),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Extract Close into the store incrementally (live progress per stream, then a summary)."""
    unknown = sorted(set(models or []) - set(MODEL_NAMES))
    if unknown:
        raise fail(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODEL_NAMES)}")
    store = _open(db, postgres)
    try:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<34}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        with progress:
            result = run(_sync(store, models or None, full, reconcile, lookback, profile, base_url, progress))
    except StoreError as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    _summary(result)
    if result.failed:
        raise typer.Exit(1)


async def _sync(
    store: Store,
    models: list[str] | None,
    full: bool,
    reconcile: bool,
    lookback: float,
    profile: str | None,
    base_url: str | None,
    progress: Progress,
) -> SyncResult:
    async with client_for(profile, base_url) as client:
        return await sync(
            client,
            store,
            models=models,
            full=full,
            reconcile=reconcile,
            lookback=lookback,
            progress=_LiveDisplay(progress),
        )


def _summary(result: SyncResult) -> None:
    table = Table("model", "added", "updated", "removed", caption=f"{result.requests} requests")
    for summary in result.by_model():
        table.add_row(summary.model, str(summary.added), str(summary.updated), str(summary.removed))
    console.print(table)
    if result.reconciled:
        console.print(f"reconciled: {', '.join(result.reconciled)}")
    if result.views_rebuilt:
        console.print(f"views rebuilt: {', '.join(result.views_rebuilt)}")
    for failed in result.failed:
        console.print(f"[bold red]failed:[/] {failed.stream}: {failed.error}", highlight=False)


@app.command("models")
def models_command(db: str = DbOption, postgres: str | None = PostgresOption) -> None:
    """Each data model: live rows, tombstones, last sync and cursor."""
    store = _open(db, postgres)
    try:
        infos = store.models()
    finally:
        store.close()
    table = Table("model", "rows", "deleted", "last sync", Column("cursor", overflow="fold"))
    for info in infos:
        cursor = json.dumps(_compact(info.cursor), sort_keys=True) if info.cursor is not None else ""
        table.add_row(info.name, str(info.rows), str(info.deleted), info.last_sync or "never", cursor)
    console.print(table)


@app.command("changes")
def changes_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Only changes of this model."),
    since: int = typer.Option(0, "--since", min=0, help="Only changes with a sequence number above this."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many changes."),
    output: TableFormat = typer.Option(TableFormat.table, "--format", help="Output format."),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """The change log: {seq, model, record_id, kind, changed_fields, before, after, at}."""
    if model is not None and model not in MODEL_NAMES:
        raise fail(f"unknown model {model!r}: choose from {', '.join(MODEL_NAMES)}")
    store = _open(db, postgres)
    try:
        changes = store.changes(since, model=model, limit=limit)
    finally:
        store.close()
    rows = [change.as_dict() for change in changes]
    if output is TableFormat.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(
        "seq", "model", "record_id", "kind", Column("changed_fields", overflow="fold"), "at",
        caption=f"{len(rows)} change{'s' if len(rows) != 1 else ''}",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            str(row["seq"]),
            row["model"],
            row["record_id"],
            row["kind"],
            ", ".join(row["changed_fields"]),
            row["at"],
        )
    console.print(table)


@app.command("sql")
def sql_command(
    statement: str = typer.Argument(
        ..., help='A read-only query, e.g. "select name from leads_view limit 5".'
    ),
    output: RowsFormat = typer.Option(RowsFormat.table, "--format", help="Output format."),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """Run a read-only SQL query against the store (views: leads_view, contacts_view, …)."""
    store = _open(db, postgres)
    try:
        columns, rows = store.query(statement)
    except StoreError as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    if output is RowsFormat.json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, indent=2, ensure_ascii=False, default=str) + "\n")
    elif output is RowsFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([_cell(value) for value in row] for row in rows)
    else:
        table = Table(*(Column(c, overflow="fold") for c in columns), caption=f"{len(rows)} rows")
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        console.print(table)


def _compact(value: Any) -> Any:
    """A cursor made readable: the ids a position has already seen are shown as a count."""
    if isinstance(value, dict):
        return {
            key: len(item) if key == "seen" and isinstance(item, list) else _compact(item)
            for key, item in value.items()
        }
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
