"""Safe SQL identifiers: model and column names from code, view column names from people.

View columns carry human names (a custom field called "Lead Source", "Owner's \"Tier\"", "select",
"Größe"), always emitted as quoted identifiers. Two rules make them portable: SQLite compares
identifiers case-insensitively, and Postgres silently truncates them to 63 bytes; so uniqueness is
decided on the case-folded, truncated name, and a repeat gets the first free ``_2``, ``_3``, … suffix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from closeflow.sync.store._types import StoreError

MAX_IDENTIFIER_BYTES = 63  # Postgres' NAMEDATALEN - 1; longer names would be cut silently
FIXED_COLUMNS = ("id", "data", "hash", "first_seen", "last_seen", "deleted_at")
STORE_TABLES = ("change_log", "sync_state", "store_meta", "store_models", "model_streams")

_MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")
_COLUMN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def quote(name: str) -> str:
    """A quoted identifier; embedded double quotes are doubled, as both SQLite and Postgres expect."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal, for the few places a value is part of DDL (view definitions)."""
    if "\x00" in text:
        raise StoreError("a SQL literal cannot contain a NUL character")
    return "'" + text.replace("'", "''") + "'"


def check_model_name(name: str) -> str:
    if not _MODEL_NAME.fullmatch(name) or name in STORE_TABLES:
        raise StoreError(
            f"model name {name!r} is not usable as a table: use lower-case letters, digits and '_' "
            f"(starting with a letter, at most 41 characters), and none of {', '.join(STORE_TABLES)}"
        )
    return name


def check_promoted_key(model: str, key: str) -> str:
    if not _COLUMN_KEY.fullmatch(key) or key.lower() in FIXED_COLUMNS:
        raise StoreError(
            f"{model}: promoted key {key!r} cannot be a column: use a top-level key made of letters, digits "
            f"and '_' that is not one of {', '.join(FIXED_COLUMNS)}"
        )
    return key


def check_view_name(name: str, tables: Iterable[str]) -> str:
    clean = _clean(name)
    if clean != name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise StoreError(
            f"view name {name!r} must be printable, without surrounding spaces, at most 63 bytes"
        )
    taken = {table.casefold() for table in tables}
    if name.casefold() in taken:
        raise StoreError(
            f"view name {name!r} is already a table of the store; pick another (e.g. {name}_view)"
        )
    return name


def _clean(name: str) -> str:
    # Control characters (newlines, NUL) are legal in neither dialect's identifiers in any useful way.
    return "".join(" " if unicodedata.category(char) == "Cc" else char for char in name).strip()


def _truncate(name: str, limit: int) -> str:
    encoded = name.encode()
    if len(encoded) <= limit:
        return name
    return encoded[:limit].decode(errors="ignore").rstrip()


def unique_names(wanted: Iterable[str], reserved: Iterable[str]) -> list[str]:
    """Deterministic safe names for ``wanted`` that collide neither with ``reserved`` nor each other.

    >>> unique_names(["Lead Source", "lead source", "id", ""], ["id"])
    ['Lead Source', 'lead source_2', 'id_2', 'column']
    """
    taken = {name.casefold() for name in reserved}
    result: list[str] = []
    for raw in wanted:
        base = _truncate(_clean(raw), MAX_IDENTIFIER_BYTES) or "column"
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            suffix = f"_{n}"
            name = _truncate(base, MAX_IDENTIFIER_BYTES - len(suffix)) + suffix
        taken.add(name.casefold())
        result.append(name)
    return result


def json_keys(columns: Iterable[str]) -> list[str]:
    """A query's column names as JSON object keys: a repeated name gets ``_2``, ``_3``… so no column
    is lost."""
    taken: set[str] = set()
    names = []
    for column in columns:
        name, n = column, 1
        while name in taken:
            n += 1
            name = f"{column}_{n}"
        taken.add(name)
        names.append(name)
    return names
