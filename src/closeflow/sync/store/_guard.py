"""A lexical check of SQL sent to the read-only query path, before the database sees it.

This is the second line of defence, not the first: the database itself refuses writes (SQLite's
authorizer; Postgres' read-only transaction under a read-only role with a statement timeout). What
a read-only transaction still allows (advisory locks that block the sync's writers, reading server
files, ``COPY … TO PROGRAM`` as a superuser, changing settings, running a string as SQL) is refused
here by shape: one statement, starting with a reading verb, calling none of the functions below.

A caller may also hide tables from a query (``hidden``: the MCP server hides closeflow's ledgers from
an agent). SQLite's authorizer sees every table a statement reads, so it decides that precisely;
on Postgres this module refuses any identifier spelling a hidden name, and the store then checks
the statement's plan (see ``_pg_access.hidden_relation``), which sees through views.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from closeflow.sync.store._types import Dialect, StoreError

DEFAULT_STATEMENT_TIMEOUT = 30.0  # seconds a query may run before the store cancels it

READ_VERBS = frozenset({"select", "with", "values", "table", "explain"})

# Functions a read-only transaction still runs that lock, read the server's files, signal other
# sessions, change settings (``set_config('role', …)`` would undo SET ROLE) or run a string as SQL.
_REFUSED_FUNCTIONS = frozenset(
    {
        "set_config",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_logical_emit_message",
        "pg_notify",
        "pg_import_system_collations",
        "nextval",
        "setval",
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        # These read a table, a schema or the whole database named in a string, or run a string as
        # a query (ts_stat, ts_rewrite): no check of the statement's text can see what they read.
        "table_to_xml",
        "table_to_xml_and_xmlschema",
        "table_to_xmlschema",
        "schema_to_xml",
        "schema_to_xml_and_xmlschema",
        "schema_to_xmlschema",
        "database_to_xml",
        "database_to_xml_and_xmlschema",
        "database_to_xmlschema",
        "ts_stat",
        "ts_rewrite",
        "load_extension",  # SQLite: loading native code
    }
)
_REFUSED_PREFIXES = ("pg_advisory", "pg_try_advisory", "pg_ls_", "pg_file_", "lo_", "dblink")
_SLEEPS = frozenset({"pg_sleep", "pg_sleep_for", "pg_sleep_until"})
_NUMBER = re.compile(r"\d+(\.\d*)?")

# Postgres' planner statistics hold sample values (pg_stats.most_common_vals) of every table the
# reader may select from, hidden ones included: hidden along with any table.
PG_SAMPLING_RELATIONS = frozenset(
    {"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic", "pg_statistic_ext_data"}
)


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool = False  # a "quoted identifier": a name, but never a keyword


def hidden_names(hidden: Collection[str], dialect: Dialect) -> frozenset[str]:
    """The lower-cased names a query may not read: ``hidden``, and on Postgres (when any) the
    statistics relations that sample every table."""
    if isinstance(hidden, str):
        raise TypeError(f"hidden= takes a collection of table names, not one string ({hidden!r})")
    names = frozenset(name.lower() for name in hidden)
    if names and dialect == "postgres":
        names |= PG_SAMPLING_RELATIONS
    return names


def not_readable(name: str) -> StoreError:
    """The refusal of a hidden name, spelt as ``hidden`` has it (lower-case) however the SQL wrote it."""
    return StoreError(
        f"{name.lower()} is not readable through this query path; "
        "read the data models, their views and change_log instead"
    )


def check_read_only_sql(
    sql: str, dialect: Dialect, *, time_budget: float, hidden: frozenset[str] = frozenset()
) -> str:
    """Raise ``StoreError`` unless ``sql`` is one reading statement calling no refused function and
    naming nothing in ``hidden`` (lower-cased names, from ``hidden_names``); return its verb, lower-case.

    Names match whatever their case, quoted or not, and any identifier counts (a column alias, a
    schema-qualified name's last part), so a hidden name is refused even where it would not read
    the table: a refusal too many, never a read too many."""
    tokens = _tokens(sql, dialect)
    if not tokens:
        raise StoreError("the SQL query is empty: send one SELECT (or WITH … SELECT) statement")
    first = tokens[0]
    verb = first.text.upper()
    if first.quoted or first.text.lower() not in READ_VERBS:
        raise StoreError(
            f"the SQL query path is read-only: {verb} statements are refused; "
            "use SELECT (or WITH, VALUES, TABLE, EXPLAIN) to read the data models and the change log"
        )
    for token in tokens:
        if token.text.lower() in hidden:
            raise not_readable(token.text)
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is None or following.text != "(" or following.quoted:
            continue
        name = token.text.lower()
        if name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_PREFIXES):
            raise StoreError(
                f"the SQL query path refuses {name}(): it locks, reads server files, signals other "
                "sessions, changes settings, reads tables named in text or runs SQL text; "
                "only plain reads are allowed"
            )
        if name in _SLEEPS and not _short_sleep(name, tokens[index + 2 :], time_budget):
            raise StoreError(
                f"the SQL query path refuses {name}() beyond its {time_budget:g} s time budget "
                "(a number of seconds is allowed up to that)"
            )
    return first.text.lower()


def _short_sleep(name: str, rest: list[_Token], budget: float) -> bool:
    if name != "pg_sleep" or len(rest) < 2 or rest[1].text != ")":
        return False
    return _NUMBER.fullmatch(rest[0].text) is not None and float(rest[0].text) <= budget


def _tokens(sql: str, dialect: Dialect) -> list[_Token]:
    """Words and punctuation outside comments and string literals; ``;`` ends the only statement."""
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    ended = False
    while i < n:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i, nested=dialect == "postgres")
        elif ended:
            raise StoreError("the SQL query path runs one statement at a time; send them separately")
        elif char == ";":
            ended = True
            i += 1
        elif char == "'":
            escapes = dialect == "postgres" and i > 0 and sql[i - 1] in "eE" and not _word_char(sql, i - 2)
            if escapes and tokens:
                tokens.pop()  # the E prefix was read as a word
            i = _string_end(sql, i, "'", backslash=escapes)
        elif char == '"' or (dialect == "sqlite" and char in "`["):
            close = "]" if char == "[" else char
            end = _string_end(sql, i, close, backslash=False)
            name = sql[i + 1 : end - 1].replace(close * 2, close)
            if tokens and tokens[-1].text == "&" and len(tokens) > 1 and tokens[-2].text.lower() == "u":
                raise StoreError('the SQL query path refuses U&"…" identifiers; write the name plainly')
            tokens.append(_Token(name, quoted=True))
            i = end
        elif dialect == "postgres" and char == "$" and (match := _DOLLAR.match(sql, i)):
            end = sql.find(match.group(0), match.end())
            if end < 0:
                raise StoreError("the SQL query has an unterminated $$ string")
            i = end + len(match.group(0))
        elif _word_char(sql, i):
            start = i
            number = char.isdigit()  # 1.5 is one token; pg_catalog.pg_sleep is three
            while i < n and (_word_char(sql, i) or (number and sql[i] == ".")):
                i += 1
            tokens.append(_Token(sql[start:i]))
        else:
            tokens.append(_Token(char))
            i += 1
    return tokens


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def _word_char(sql: str, i: int) -> bool:
    return 0 <= i < len(sql) and (sql[i].isalnum() or sql[i] in "_$")


def _comment_end(sql: str, i: int, *, nested: bool) -> int:
    depth = 0
    while i < len(sql):
        if sql.startswith("/*", i):
            # Postgres nests block comments; SQLite ends one at the first */.
            depth = depth + 1 if nested or depth == 0 else depth
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise StoreError("the SQL query has an unterminated /* comment */")


def _string_end(sql: str, i: int, close: str, *, backslash: bool) -> int:
    """The index just past the literal or quoted name starting at ``i`` (doubled quotes escape)."""
    j = i + 1
    while j < len(sql):
        if backslash and sql[j] == "\\":
            j += 2
        elif sql[j] == close:
            if sql.startswith(close * 2, j):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    raise StoreError(f"the SQL query has an unterminated {sql[i]}…{close} quote")
