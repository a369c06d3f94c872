"""`closeflow sync`, `models`, `changes`, `sql`: extract Close into a local store and read it."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from closeflow.cli._app import app, console, err_console, fail, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.cli._records import cell_text
from closeflow.sync import (
    DEFAULT_LOOKBACK,
    MODEL_NAMES,
    Change,
    Store,
    StoreError,
    StreamProgress,
    SyncResult,
    open_store,
    sync,
)
from closeflow.sync.store import DEFAULT_PATH, json_keys

DbOption = typer.Option(None, "--db", help="SQLite file of the store [default: closeflow.db].")
PostgresOption = typer.Option(
    None, "--postgres", envvar="CLOSEFLOW_POSTGRES", help="Postgres URL of the store (instead of --db)."
)


DEFAULT_CHANGES = 100  # `closeflow changes` shows this many unless --limit says otherwise
_CHANGES_BATCH = 1000  # changes read per round trip when streaming them all
DEFAULT_MAX_ROWS = 1000  # `closeflow sql` prints this many rows unless --max-rows says otherwise


class TableFormat(StrEnum):
    table = "table"
    json = "json"


class RowsFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _open(db: str | None, postgres: str | None, *, create: bool) -> Store:
    """The store named by ``--db`` or ``--postgres``; commands that only read pass ``create=False``,
    so a mistyped name is an error rather than a new, empty store."""
    if db is not None and postgres is not None:
        raise fail("--db and --postgres (or CLOSEFLOW_POSTGRES) both name a store; give only one of them", 2)
    try:
        return open_store(postgres or db or DEFAULT_PATH, create=create)
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
    db: str | None = DbOption,
    postgres: str | None = PostgresOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    """Extract Close into the store incrementally (live progress per stream, then a summary)."""
    unknown = sorted(set(models or []) - set(MODEL_NAMES))
    if unknown:
        raise fail(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODEL_NAMES)}")
    store = _open(db, postgres, create=True)
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
def models_command(db: str | None = DbOption, postgres: str | None = PostgresOption) -> None:
    """Each data model: live rows, tombstones, last sync and cursor."""
    store = _open(db, postgres, create=False)
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
    limit: int = typer.Option(
        DEFAULT_CHANGES, "--limit", "-n", min=0, help="At most this many changes; 0 = all (streamed)."
    ),
    output: TableFormat = typer.Option(TableFormat.table, "--format", help="Output format."),
    db: str | None = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """The change log: {seq, model, record_id, kind, changed_fields, before, after, at}."""
    if model is not None and model not in MODEL_NAMES:
        raise fail(f"unknown model {model!r}: choose from {', '.join(MODEL_NAMES)}")
    store = _open(db, postgres, create=False)
    try:
        if output is TableFormat.json:
            _changes_json(_read_changes(store, since, model, limit))
            return
        changes = list(_read_changes(store, since, model, limit + 1 if limit else 0))
    finally:
        store.close()
    cut = bool(limit) and len(changes) > limit
    changes = changes[:limit] if limit else changes
    caption = f"{len(changes)} change{'s' if len(changes) != 1 else ''}"
    if cut:
        caption += f" (the first {limit}; --since {changes[-1].seq} for more, --limit 0 for all)"
    table = Table(
        "seq", "model", "record_id", "kind", Column("changed_fields", overflow="fold"), "at", caption=caption
    )
    for change in changes:
        table.add_row(
            str(change.seq),
            change.model,
            change.record_id,
            change.kind,
            ", ".join(change.changed_fields),
            change.at,
        )
    console.print(table)


def _read_changes(store: Store, since: int, model: str | None, limit: int) -> Iterator[Change]:
    """Changes after ``since`` in seq order, read in batches: all of them when ``limit`` is 0."""
    left = limit or None
    while left is None or left > 0:
        batch = store.changes(since, model=model, limit=min(_CHANGES_BATCH, left or _CHANGES_BATCH))
        yield from batch
        if len(batch) < min(_CHANGES_BATCH, left or _CHANGES_BATCH):
            return
        since = batch[-1].seq
        left = None if left is None else left - len(batch)


def _changes_json(changes: Iterator[Change]) -> None:
    """A JSON array written as it is read, so ``--limit 0`` on a large log never holds it all."""
    sys.stdout.write("[")
    for index, change in enumerate(changes):
        sys.stdout.write(",\n  " if index else "\n  ")
        sys.stdout.write(json.dumps(change.as_dict(), ensure_ascii=False))
    sys.stdout.write("\n]\n")


@app.command("sql")
def sql_command(
    statement: str = typer.Argument(
        ..., help='A read-only query, e.g. "select name from leads_view limit 5".'
    ),
    output: RowsFormat = typer.Option(RowsFormat.table, "--format", help="Output format."),
    max_rows: int = typer.Option(
        DEFAULT_MAX_ROWS, "--max-rows", min=0, help="Print at most this many rows; 0 = all."
    ),
    db: str | None = DbOption,
    postgres: str | None = PostgresOption,
) -> None:
    """Run a read-only SQL query against the store (views: leads_view, contacts_view, …)."""
    store = _open(db, postgres, create=False)
    try:
        columns, rows = store.query(statement, max_rows=max_rows + 1 if max_rows else None)
    except StoreError as exc:
        raise fail(str(exc), 1) from None
    finally:
        store.close()
    cut = bool(max_rows) and len(rows) > max_rows
    rows = rows[:max_rows] if max_rows else rows
    if output is RowsFormat.json:
        keys = json_keys(columns)
        records = [dict(zip(keys, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, indent=2, ensure_ascii=False, default=str) + "\n")
    elif output is RowsFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([cell_text(value) for value in row] for row in rows)
    else:
        table = Table(*(Column(c, overflow="fold") for c in columns), caption=f"{len(rows)} rows")
        for row in rows:
            table.add_row(*(cell_text(value) for value in row))
        console.print(table)
    if cut:
        err_console.print(
            f"[yellow]output cut at {max_rows} rows:[/] add LIMIT/OFFSET to the query, "
            "or --max-rows 0 for all",
            highlight=False,
        )


def _compact(value: Any) -> Any:
    """A cursor made readable: the ids a position has already seen are shown as a count."""
    if isinstance(value, dict):
        return {
            key: len(item) if key == "seen" and isinstance(item, list) else _compact(item)
            for key, item in value.items()
        }
    return value
