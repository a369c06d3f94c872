"""The ``--where`` language: filters as one line of text, and back.

    status = "Qualified" and custom."Tier" = "A"
    (email contains "acme.com" or phone = "+14155550100") and not date_updated < "2026-01-01"
    name in ("Acme", "Bluth")        url exists        custom."Lead Score" >= 50

Precedence: ``not`` binds tighter than ``and``, which binds tighter than ``or``; parentheses group.
Strings are double-quoted with ``\\"`` and ``\\\\`` escapes; numbers, ``true``, ``false`` and
``null`` are values; keywords are case-insensitive. A hand-written tokenizer and recursive-descent
parser keep error messages precise: each names the column and draws a caret under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from ._filters import And, Condition, Filter, FilterError, Not, Op, Or, Scalar

__all__ = ["WhereSyntaxError", "parse_where", "to_text"]

_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "contains", "starts_with", "exists", "missing", "true", "false", "null"}
)
_COMPARISONS = ("<=", ">=", "!=", "=", "<", ">")
_WORD_OPS = ("contains", "starts_with")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[().,])
  | (?P<string>")
    """,
    re.VERBOSE,
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class WhereSyntaxError(FilterError):
    """``--where`` text that does not parse; ``column`` is 1-based."""

    def __init__(self, reason: str, text: str, column: int) -> None:
        self.reason = reason
        self.text = text
        self.column = column
        super().__init__(f"{reason} at column {column}\n  {text}\n  {' ' * (column - 1)}^")


@dataclass(frozen=True)
class _Token:
    kind: str  # number, word, op, punct, string, end
    text: str  # source text (for strings: the decoded value)
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the text"
        return f'"{self.text}"' if self.kind != "string" else f'the string "{self.text}"'


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise WhereSyntaxError(f'unexpected character "{text[pos]}"', text, pos + 1)
        kind = match.lastgroup or ""
        if kind == "string":
            value, end = _read_string(text, pos)
            tokens.append(_Token("string", value, pos + 1))
            pos = end
            continue
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return "".join(chars), pos + 1
        if ch == "\\":
            if pos + 1 >= len(text) or text[pos + 1] not in '"\\':
                raise WhereSyntaxError('unknown escape in string (use \\" or \\\\)', text, pos + 1)
            chars.append(text[pos + 1])
            pos += 2
            continue
        chars.append(ch)
        pos += 1
    raise WhereSyntaxError("unterminated string", text, start + 1)


MAX_DEPTH = 100  # nested not / ( levels; real filters stay far below


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.token
        if token.kind == "word" and token.text.lower() in words:
            self.pos += 1
            return token.text.lower()
        return None

    def punct(self, char: str) -> bool:
        if self.token.kind == "punct" and self.token.text == char:
            self.pos += 1
            return True
        return False

    def fail(self, reason: str, token: _Token | None = None) -> WhereSyntaxError:
        return WhereSyntaxError(reason, self.text, (token or self.token).column)

    def parse(self) -> Filter:
        if self.token.kind == "end":
            raise self.fail("expected a condition")
        result = self.or_()
        if self.token.kind != "end":
            raise self.fail(f'expected "and", "or" or the end, found {self.token.describe()}')
        return result

    def or_(self) -> Filter:
        items = [self.and_()]
        while self.keyword("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(items)

    def and_(self) -> Filter:
        items = [self.unary()]
        while self.keyword("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(items)

    def unary(self) -> Filter:
        token = self.token
        nests = (token.kind, token.text.lower()) in (("punct", "("), ("word", "not"))
        if nests:
            self.depth += 1
            if self.depth > MAX_DEPTH:  # fail before Python's recursion limit turns it into a crash
                raise self.fail(f"the filter nests not / ( more than {MAX_DEPTH} levels deep")
        try:
            if self.keyword("not"):
                return Not(self.unary())
            if self.punct("("):
                opening = self.tokens[self.pos - 1]
                inner = self.or_()
                if not self.punct(")"):
                    if self.token.kind == "end":
                        raise self.fail('missing ")" to close the "("', opening)
                    raise self.fail(f'expected ")" or "and"/"or", found {self.token.describe()}')
                return inner
            return self.condition()
        finally:
            if nests:
                self.depth -= 1

    def condition(self) -> Condition:
        start = self.token
        field = self.field()
        op_token = self.token
        if op_token.kind == "op":
            self.pos += 1
            return self.make(field, cast(Op, op_token.text), self.value(f'after "{op_token.text}"'), start)
        word = self.keyword("in", "exists", "missing", *_WORD_OPS)
        if word in ("exists", "missing"):
            return self.make(field, cast(Op, word), None, start)
        if word in _WORD_OPS:
            return self.make(field, cast(Op, word), self.value(f'after "{word}"'), start)
        if word == "in":
            return self.make(field, "in", self.value_list(), start)
        raise self.fail(
            f'expected an operator after "{field_text(field)}" '
            f"(=, !=, <, <=, >, >=, contains, starts_with, in, exists, missing), found {op_token.describe()}"
        )

    def make(self, field: str, op: Op, value: Any, start: _Token) -> Condition:
        try:
            return Condition(field, op, value)
        except WhereSyntaxError:
            raise
        except FilterError as exc:
            raise self.fail(str(exc), start) from None

    def field(self) -> str:
        token = self.token
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise self.fail(f"expected a field name, found {token.describe()}")
        self.pos += 1
        parts = [token.text]
        while self.punct("."):
            part = self.take()
            if part.kind == "string" and parts == ["custom"] and part.text:
                parts.append(part.text)
                break  # a custom field's name ends the path; it may itself contain dots
            if part.kind != "word":
                raise self.fail(
                    'expected a name after "." (quote custom field names: custom."Lead Source")', part
                )
            parts.append(part.text)
        return ".".join(parts)

    def value(self, where: str) -> Scalar:
        token = self.token
        if token.kind == "string":
            self.pos += 1
            return token.text
        if token.kind == "number":
            self.pos += 1
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        word = self.keyword("true", "false", "null")
        if word is not None:
            return {"true": True, "false": False, "null": None}[word]
        hint = ' (quote text: "…")' if token.kind == "word" else ""
        raise self.fail(f"expected a value {where}{hint}")

    def value_list(self) -> tuple[Scalar, ...]:
        if not self.punct("("):
            raise self.fail('expected "(" after "in"')
        values = [self.value('in the list after "in"')]
        while self.punct(","):
            values.append(self.value('after ","'))
        if not self.punct(")"):
            raise self.fail(f'expected "," or ")" in the list after "in", found {self.token.describe()}')
        return tuple(values)


def parse_where(text: str) -> Filter:
    """The filter written in ``text``; ``WhereSyntaxError`` (a ``FilterError``) if it does not parse."""
    return _Parser(text).parse()


# -- rendering --------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field_text(field: str) -> str:
    """A field name as written in ``--where`` text (custom field names quoted)."""
    if field.startswith("custom."):
        name = field.removeprefix("custom.")
        return "custom." + (name if _IDENT.fullmatch(name) else _quote(name))
    return field


def _value_text(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


def to_text(filter: Filter) -> str:
    """``filter`` as ``--where`` text that ``parse_where`` reads back to an equal filter."""
    if isinstance(filter, Condition):
        head = f"{field_text(filter.field)} {filter.op}"
        if filter.op in ("exists", "missing"):
            return head
        if isinstance(filter.value, tuple):
            return f"{head} ({', '.join(_value_text(v) for v in filter.value)})"
        return f"{head} {_value_text(filter.value)}"
    if isinstance(filter, Not):
        return f"not {_grouped(filter.item)}"
    joiner = " and " if isinstance(filter, And) else " or "
    return joiner.join(_grouped(item) for item in filter.items)


def _grouped(filter: Filter) -> str:
    # Nested and/or always get parentheses, so text and tree stay one-to-one.
    return f"({to_text(filter)})" if isinstance(filter, And | Or) else to_text(filter)
