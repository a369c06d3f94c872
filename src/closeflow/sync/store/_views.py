"""Per-model SQL views: one typed column per record key, over live rows only.

A view must never fail because one record holds a surprising value (a text in a number field, a
malformed date): every extraction checks the JSON type first and yields NULL when the value does not
fit. The same view reads the same on both backends except for the native types: SQLite has no
date/boolean types (dates are ``YYYY-MM-DD`` text, datetimes ``YYYY-MM-DDTHH:MM:SS.SSSZ`` UTC text,
booleans 1/0); Postgres gives ``numeric``, ``date``, ``timestamptz``, ``boolean`` and ``jsonb``.
"""

from __future__ import annotations

from collections.abc import Sequence

from closeflow.sync.store._names import literal, quote, unique_names
from closeflow.sync.store._types import Dialect, StoreError, ViewColumn

# Postgres casts raise on bad input (`'2024-02-30'::date`) and Postgres 15 has no pg_input_is_valid,
# so dates go through two small functions that turn a failed cast into NULL. Naive datetimes are UTC,
# as in Close's event log, whatever the reader's session time zone.
POSTGRES_FUNCTIONS = (
    r"""
CREATE OR REPLACE FUNCTION closeflow_date(v text) RETURNS date LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
  IF v !~ '^\d{4}-\d{2}-\d{2}' THEN RETURN NULL; END IF;
  RETURN substr(v, 1, 10)::date;
EXCEPTION WHEN others THEN RETURN NULL;
END $$""",
    r"""
CREATE OR REPLACE FUNCTION closeflow_datetime(v text) RETURNS timestamptz LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
  IF v !~ '^\d{4}-\d{2}-\d{2}' THEN RETURN NULL; END IF;
  IF v ~ '[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)$' THEN RETURN v::timestamptz; END IF;
  RETURN v::timestamp AT TIME ZONE 'UTC';
EXCEPTION WHEN others THEN RETURN NULL;
END $$""",
)


def _sqlite_expression(key: str, kind: str) -> str:
    if '"' in key:
        raise StoreError(
            f"view key {key!r}: SQLite JSON paths cannot address a key containing a double quote"
        )
    path = literal(f'$."{key}"')
    value = f"json_extract(data, {path})"
    json_type = f"json_type(data, {path})"
    # SQLite's date() echoes '2024-02-30' back unchanged; '+0 days' normalises it, so a round trip
    # tells a real calendar date from a malformed one.
    valid_date = f"date(substr({value}, 1, 10), '+0 days') = substr({value}, 1, 10)"
    match kind:
        case "text":
            booleans = "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"  # as Postgres' ->> spells them
            return f"CASE {json_type} {booleans} ELSE CAST({value} AS TEXT) END"
        case "number":
            return f"CASE WHEN {json_type} IN ('integer', 'real') THEN {value} END"
        case "boolean":
            return f"CASE {json_type} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
        case "date":
            return f"CASE WHEN {json_type} = 'text' AND {valid_date} THEN substr({value}, 1, 10) END"
        case "datetime":
            return (
                f"CASE WHEN {json_type} = 'text' AND {valid_date} "
                f"THEN strftime('%Y-%m-%dT%H:%M:%fZ', {value}) END"
            )
        case "json":
            return f"CASE WHEN {json_type} <> 'null' THEN data -> {path} END"
    raise StoreError(f"unknown view column type {kind!r}")


def _postgres_expression(key: str, kind: str) -> str:
    name = literal(key)
    value, node = f"(data ->> {name})", f"(data -> {name})"
    match kind:
        case "text":
            return value
        case "number":
            return f"CASE WHEN jsonb_typeof({node}) = 'number' THEN {value}::numeric END"
        case "boolean":
            return f"CASE WHEN jsonb_typeof({node}) = 'boolean' THEN {value}::boolean END"
        case "date":
            return f"CASE WHEN jsonb_typeof({node}) = 'string' THEN closeflow_date({value}) END"
        case "datetime":
            return f"CASE WHEN jsonb_typeof({node}) = 'string' THEN closeflow_datetime({value}) END"
        case "json":
            return f"NULLIF({node}, 'null'::jsonb)"
    raise StoreError(f"unknown view column type {kind!r}")


def view_sql(
    dialect: Dialect, model: str, view: str, promoted: Sequence[str], columns: Sequence[ViewColumn]
) -> tuple[list[str], list[str]]:
    """The statements that (re)create ``view``, and the view's final column names in order."""
    expression = _sqlite_expression if dialect == "sqlite" else _postgres_expression
    fixed = ["id", *promoted]
    names = unique_names((column.name for column in columns), fixed)
    select = [quote(name) for name in fixed]
    select += [
        f"{expression(column.key, column.type)} AS {quote(name)}"
        for column, name in zip(columns, names, strict=True)
    ]
    body = ",\n  ".join(select)
    statements = [
        f"DROP VIEW IF EXISTS {quote(view)}",
        f"CREATE VIEW {quote(view)} AS SELECT\n  {body}\nFROM {quote(model)} WHERE deleted_at IS NULL",
    ]
    return statements, fixed + names
