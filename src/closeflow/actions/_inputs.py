"""Input records: CSV (header row), JSONL or stdin, streamed as dicts that know their row number.

A ``Row`` is a plain dict with a ``row`` attribute (the CSV data row or JSONL line number), so the
executor can name the record in every message. Files are read lazily: a 100k-row file is never
in memory at once.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from closeflow.close import ConfigError

__all__ = ["InputError", "Records", "Row", "chunks", "from_text", "read_csv", "read_jsonl", "read_records"]

Records = Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]


class InputError(ConfigError, ValueError):
    """A malformed input line: names the source and the line, and how to fix it."""


class Row(dict[str, Any]):
    """An input record with the row number it had in its file (1 = first data row)."""

    row: int

    def __init__(self, values: dict[str, Any], row: int) -> None:
        super().__init__(values)
        self.row = row


def _open(source: str | Path | IO[str]) -> tuple[IO[str], str, bool]:
    if not isinstance(source, str | Path):
        return source, getattr(source, "name", "input"), False
    if str(source) == "-":
        return sys.stdin, "stdin", False
    # utf-8-sig drops the byte-order mark spreadsheet programs put at the start of CSV exports.
    return open(source, encoding="utf-8-sig", newline=""), str(source), True


def read_csv(source: str | Path | IO[str]) -> Iterator[Row]:
    """Rows of a CSV file with a header row; ``"-"`` reads stdin. Empty cells are empty strings."""
    stream, name, owned = _open(source)
    try:
        reader = csv.reader(stream)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise InputError(f"{name}: line 1: duplicate column names {', '.join(duplicates)}; rename them")
        for number, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                raise InputError(
                    f"{name}: line {reader.line_num}: {len(cells)} cells but the header has {len(header)} "
                    "columns; quote values that contain commas"
                )
            yield Row(dict(zip(header, [*cells, *[""] * (len(header) - len(cells))], strict=True)), number)
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
    finally:
        if owned:
            stream.close()


def read_jsonl(source: str | Path | IO[str]) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped; ``"-"`` reads stdin."""
    stream, name, owned = _open(source)
    try:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{name}: line {number}: not valid JSON ({exc.args[0]})") from None
            if not isinstance(value, dict):
                raise InputError(f"{name}: line {number}: expected a JSON object, got {type(value).__name__}")
            yield Row(value, number)
    finally:
        if owned:
            stream.close()


def read_records(
    source: str | Path | IO[str], format: Literal["csv", "jsonl"] | None = None
) -> Iterator[Row]:
    """CSV or JSONL, chosen by ``format`` or the file's extension (``.jsonl``/``.ndjson`` → JSONL)."""
    if format is None:
        suffix = Path(str(source)).suffix.lower() if isinstance(source, str | Path) else ""
        format = "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "csv"
    return read_jsonl(source) if format == "jsonl" else read_csv(source)


def from_text(text: str, format: Literal["csv", "jsonl"]) -> Iterator[Row]:
    """Records from a string (tests, pasted input)."""
    return read_records(io.StringIO(text), format)


async def chunks(records: Records | None, size: int) -> AsyncIterator[list[tuple[int, dict[str, Any]]]]:
    """``(row number, record)`` lists of ``size``; a ``Row`` keeps its file row number, others
    count from 1."""
    if records is None:
        return
    chunk: list[tuple[int, dict[str, Any]]] = []
    position = 0

    def take(record: Any) -> None:
        nonlocal position
        position += 1
        if not isinstance(record, dict):
            raise ConfigError(f"record {position} is a {type(record).__name__}, not a dict of input values")
        chunk.append((getattr(record, "row", position), record))

    if isinstance(records, AsyncIterable):
        async for record in records:
            take(record)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for record in records:
            take(record)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk
