"""How `closeflow leads|contacts …` run and show their work: search results, a batch with its
progress bar, ``--report`` file, dry-run plan, failures and totals.

The commands themselves are generated from the action specs in ``_actions.py``. Tables go to
stdout; the progress bar and the batch id go to stderr, so ``--format jsonl`` output can be piped.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import sys
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from closeflow.actions import (
    DeleteRefused,
    InputError,
    Outcome,
    Summary,
    custom_field_name,
    open_write_ledger,
    read_records,
    run_action,
)
from closeflow.cli._app import console, err_console, fail
from closeflow.cli._common import client_for
from closeflow.close import UnknownCustomField

# A dry run of a large file would flood the terminal; the full plan is in the --report file.
SHOWN_OUTCOMES = 200


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def split_fields(text: str) -> list[str]:
    """Split on commas outside double quotes (custom."Field, with comma")."""
    return [name.strip() for name in next(csv.reader([text], skipinitialspace=True))] if text else []


def _column_key(name: str) -> str:
    # find() returns custom fields under custom.<Name>, without the quotes the filter text uses.
    return "custom." + name.removeprefix("custom.").strip('"') if name.startswith('custom."') else name


def cell_text(value: Any) -> str:
    """A value as one table or CSV cell: nothing for null, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def render_records(rows: AsyncIterator[dict[str, Any]], fields: list[str], output: OutputFormat) -> int:
    """Print search results; jsonl and csv stream (a search may return any number of records)."""
    keys = [_column_key(c) for c in ["id", *(f for f in fields if f != "id")]]
    count = 0
    if output is OutputFormat.jsonl:
        async for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(keys)
        async for row in rows:
            writer.writerow([cell_text(row.get(k)) for k in keys])
            count += 1
    else:
        collected = [row async for row in rows]
        count = len(collected)
        if output is OutputFormat.json:
            sys.stdout.write(json.dumps(collected, indent=2, ensure_ascii=False) + "\n")
        else:
            table = Table(
                *(Column(k, overflow="fold") for k in keys),
                caption=f"{count} record{'s' if count != 1 else ''}",
            )
            for row in collected:
                table.add_row(*(cell_text(row.get(k)) for k in keys))
            console.print(table)
    return count


def _changes(outcome: Outcome) -> str:
    return "\n".join(
        f"{c.field}: {cell_text(c.before) or '∅'} → {cell_text(c.after) or '∅'}" for c in outcome.changes
    )


def render_outcomes(outcomes: Iterable[Outcome], total: int, title: str) -> None:
    """A table of per-record outcomes (a dry run's plan, or the failures of a run)."""
    shown = list(outcomes)
    if not shown:
        return
    table = Table(
        "row",
        Column("key", overflow="fold"),
        "plan",
        Column("ids", overflow="fold"),
        Column("changes / error", overflow="fold"),
        title=title,
    )
    for outcome in shown:
        detail = outcome.error or _changes(outcome) or outcome.note or ""
        table.add_row(
            "" if outcome.row is None else str(outcome.row),
            outcome.key,
            outcome.plan,
            ", ".join(outcome.ids),
            detail,
        )
    console.print(table)
    if total > len(shown):
        console.print(f"… and {total - len(shown)} more (every record is in the --report file)")


def render_summary(summary: Summary, *, batch_id: str, dry_run: bool, report: str | None) -> None:
    """The totals of a batch: records by status (by plan in a dry run), notes, where to look next."""
    counts = summary.by_plan if dry_run else summary.by_status
    table = Table("plan" if dry_run else "status", Column("records", justify="right"), title="Summary")
    for name, count in sorted(counts.items()):
        table.add_row(name, str(count))
    table.add_row("total", str(summary.processed), style="bold")
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)
    if dry_run:
        console.print("dry run: nothing was written", highlight=False)
    else:
        console.print(f"batch id: {batch_id} (re-run the same command to resume it)", highlight=False)
    if report:
        console.print(f"report: {report}", highlight=False)


async def _guarded(spec: Any, batch: AsyncIterable[Outcome]) -> AsyncIterator[Outcome]:
    """Outcomes, with the refusals that come before any write said in the CLI's words."""
    try:
        async for outcome in batch:
            yield outcome
    except UnknownCustomField as exc:
        option = _option_naming(spec, exc.name_or_id)
        if option is None:
            raise  # named in --where: a filter error, as in search
        raise fail(f"{option}: {exc}") from None
    except DeleteRefused as exc:
        raise fail(
            f"refusing to delete {exc.count} {spec.object_type}s, more than --max-affected "
            f"{exc.max_affected}; nothing was deleted. See them with --dry-run, then raise "
            "--max-affected or add --force",
            code=1,
        ) from None


def _option_naming(spec: Any, name: str) -> str | None:
    for key, column in getattr(spec, "custom", {}).items():
        if key == name:
            return f'--custom "{key}={column}"'
    for key in getattr(spec, "constants", {}):
        if custom_field_name(key) == name:
            return f"--set {key}=…"
    for rule in getattr(spec, "match", []):
        if custom_field_name(rule.property) == name:
            return f"--match {rule.property}"
    return None


@dataclass
class BatchOptions:
    """The options of a write or delete command that are about the run, not the action."""

    batch_id: str
    ledger: str
    report: str | None
    concurrency: int
    profile: str | None
    base_url: str | None
    search_lag: float | None = None


def open_report(path: str | None) -> IO[str] | None:
    """The ``--report`` file, opened before anything is sent (a bad path fails with nothing done)."""
    if path is None:
        return None
    if not Path(path).parent.is_dir():
        raise fail(f"--report {path}: its folder does not exist; create it or write the report elsewhere")
    return open(path, "w", encoding="utf-8")


async def run_batch(
    spec: Any,
    records: Iterator[dict[str, Any]] | None,
    options: BatchOptions,
    total: int | None,
    report: IO[str] | None,
) -> bool:
    """Run a write or delete spec with a progress bar; True when a record failed."""
    err_console.print(f"batch id: {options.batch_id}", highlight=False)
    # A dry run writes nothing, so it leaves no ledger file behind either.
    ledger = open_write_ledger(":memory:" if spec.dry_run else options.ledger)
    shown: list[Outcome] = []
    # Failures are always shown; in a dry run the plan is, except records that stay as they are.
    wanted = {"failed", "planned"} if spec.dry_run else {"failed"}
    try:
        async with client_for(
            options.profile, options.base_url, concurrency=options.concurrency, search_lag=options.search_lag
        ) as client:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as progress:
                task = progress.add_task(spec.action.replace("_", " "), total=total)
                batch = run_action(
                    client,
                    spec,
                    records,
                    batch_id=options.batch_id,
                    ledger=ledger,
                    progress=lambda _outcome, _summary: progress.advance(task),
                    concurrency=options.concurrency,
                )
                async for outcome in _guarded(spec, batch):
                    if report is not None:
                        report.write(json.dumps(outcome.to_dict(), ensure_ascii=False, default=str) + "\n")
                    if outcome.status in wanted and len(shown) < SHOWN_OUTCOMES:
                        shown.append(outcome)
    finally:
        ledger.close()
        if report is not None:
            report.close()
    summary = batch.summary
    failures = summary.by_status.get("failed", 0)
    planned = summary.by_status.get("planned", 0)
    if spec.dry_run:
        render_outcomes(shown, planned + failures, "Plan (dry run)")
    else:
        render_outcomes(shown, failures, "Failed records")
    render_summary(summary, batch_id=options.batch_id, dry_run=spec.dry_run, report=options.report)
    return failures > 0


# -- input ---------------------------------------------------------------------------------------------


@dataclass
class InputRecords:
    """An input file read once up front: its records are counted (for the progress bar), its
    columns known (to catch a mistyped column before any write) and its content hashed (for the
    default batch id); ``open()`` reads it again, lazily, for the run."""

    name: str
    format: Literal["csv", "jsonl"]
    source: str | IO[str]
    count: int
    columns: set[str]
    digest: str

    def open(self) -> Iterator[dict[str, Any]]:
        if not isinstance(self.source, str):
            self.source.seek(0)
        return read_records(self.source, self.format)


@contextlib.contextmanager
def open_input(path: str | None, given_format: str | None) -> Iterator[InputRecords | None]:
    if path is None:
        yield None
        return
    digest = hashlib.sha256()
    source: str | IO[str]
    if path == "-":
        # stdin can be read only once: spool it (to disk past 16 MB) so it can be counted and read.
        spool = tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+", encoding="utf-8", newline="")  # noqa: SIM115
        for block in iter(lambda: sys.stdin.read(1 << 16), ""):
            digest.update(block.encode())
            spool.write(block)
        source, name = spool, "stdin"
    else:
        file = Path(path)
        if not file.is_file():
            raise fail(f"--input {path}: no such file; give a CSV or JSONL file, or - for stdin")
        with file.open("rb") as raw:
            for block in iter(lambda: raw.read(1 << 20), b""):
                digest.update(block)
        source, name = path, path
    suffix = Path(name).suffix.lower()
    fmt: Literal["csv", "jsonl"] = (
        "jsonl"
        if given_format == "jsonl" or (given_format is None and suffix in (".jsonl", ".ndjson", ".json"))
        else "csv"
    )
    records = InputRecords(name, fmt, source, 0, set(), digest.hexdigest())
    try:
        for record in records.open():
            records.count += 1
            records.columns.update(record)
    except InputError as exc:
        raise fail(f"--input {exc}") from None
    try:
        yield records
    finally:
        if not isinstance(source, str):
            source.close()


def batch_id_for(spec: Any, records: InputRecords | None) -> str:
    """Same input content and same options (a dry run aside) → same batch id, so a re-run resumes."""
    options = json.dumps(spec.model_dump(mode="json", exclude={"dry_run"}), sort_keys=True)
    content = records.digest if records is not None else ""
    return f"{spec.action}-{hashlib.sha256((content + options).encode()).hexdigest()[:16]}"
