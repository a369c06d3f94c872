"""The Jinja2 sandbox plays' templates run in: size checks before one step can build a huge value,
and a time limit for everything else.

One C-level call (``str()``, ``json.dumps``, ``str.join``, ``str.replace``, ``sum``) cannot be
interrupted once it starts, so sizes are checked *before* such calls; loops and recursion in
template code are stopped by a trace-function deadline on the evaluating thread.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, TypeVar

import jinja2
from jinja2.filters import do_format as format_filter
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg

__all__ = ["TEMPLATE_FILE", "Deadline", "Sandbox", "TooBig", "size_of", "within"]

T = TypeVar("T")

TEMPLATE_FILE = "<template>"  # the code filename Jinja2 gives compiled templates
_NUMBER = re.compile(r"\d{6,}")  # a width or precision in a format string big enough to matter
# Filters that never turn their whole input into text (so a big list is fine to pass them).
_SHAPE_FILTERS = frozenset(
    {"length", "count", "first", "last", "random", "min", "max", "list", "sort", "unique", "reverse",
     "batch", "slice", "map", "select", "reject", "selectattr", "rejectattr", "groupby", "dictsort",
     "items", "default", "d", "attr", "abs", "int", "float", "round", "bool", "center", "indent",
     "format", "wordwrap", "truncate"}
)  # fmt: skip


class Deadline(Exception):
    """Raised from the trace function inside a template that ran past the time limit."""


class TooBig(Exception):
    """Raised inside a template about to build a value over the output cap."""


def size_of(value: Any, stop_after: int) -> int:
    """Roughly how many characters ``value`` takes as text or JSON, counting no further than
    ``stop_after + 1``: shared references count each time they appear (as they would when written
    out), so a list that doubles itself 30 times is measured in a few steps, not 2**30."""
    size = 0
    todo = [value]
    while todo and size <= stop_after:
        item = todo.pop()
        size += 1
        if isinstance(item, str | bytes):
            size += len(item)
        elif isinstance(item, bool) or item is None:
            size += 4
        elif isinstance(item, int):
            size += item.bit_length() // 3
        elif isinstance(item, range):
            size += len(item) * max(1, len(str(item.stop)))
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                todo.extend((key, inner))
        elif isinstance(item, Namespace):
            todo.append(item._Namespace__attrs)
        elif isinstance(item, list | tuple | set | frozenset):
            todo.extend(item)
        else:
            size += 8
    return min(size, stop_after + 1)


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size checks where one operation can build a huge value."""

    intercepted_binops = frozenset({"*", "+", "%", "**"})

    def __init__(self, max_output: int) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False, finalize=self._finalize)
        self.max_output = max_output
        self.globals.pop("lipsum", None)  # generates arbitrary amounts of text
        for name in ("center", "indent", "format", "wordwrap", "truncate"):
            self.filters[name] = self._capped_filter(self.filters[name])
        # One C call (str(), json.dumps, str.join, str.replace, sum) cannot be stopped by the time
        # limit once it starts, so every filter that writes out its input is sized before it runs.
        for name, func in list(self.filters.items()):
            if name not in _SHAPE_FILTERS:
                self.filters[name] = self._sized_filter(func)

    def _finalize(self, value: Any) -> Any:
        # `{{ value }}` writes the value out with str(): size it first.
        if not isinstance(value, str):
            self._check_size(value)
        return value

    def _sized_filter(self, func: Callable[..., Any]) -> Callable[..., Any]:
        skip = 1 if _PassArg.from_obj(func) is not None else 0  # context / eval context / environment
        name = getattr(func, "__name__", "")

        def sized(*args: Any, **kwargs: Any) -> Any:
            value: Any = args[skip] if len(args) > skip else None
            rest = args[skip + 1 :]
            if name in ("do_join", "do_sum") and not isinstance(value, str | Mapping | list | tuple):
                value = list(value)  # a generator (`map`, `select`) is measured once and passed on
                args = (*args[:skip], value, *rest)
            if name == "do_join":
                self._check_join(value, (*rest, *kwargs.values())[:1])
            elif name == "do_replace" and isinstance(value, str) and len(rest) >= 2:
                self._check_replace(value, rest[0], rest[1])
            elif name == "do_sum":
                start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)  # (attribute, start)
                if not isinstance(start, int | float):  # summing lists or strings concatenates them
                    self._check_size([value, start])
            else:
                self._check_size([value, *rest, *kwargs.values()])
            return func(*args, **kwargs)

        sized.__dict__.update(getattr(func, "__dict__", {}))
        sized.__name__ = name
        return sized

    def _check_size(self, value: Any) -> None:
        if size_of(value, self.max_output) > self.max_output:
            raise TooBig(f"the value would be over the cap of {self.max_output} characters")

    def _check_join(self, seq: Any, separator: tuple[Any, ...]) -> None:
        items = seq if isinstance(seq, str | Mapping | list | tuple) else list(seq)
        sep = str(separator[0]) if separator and isinstance(separator[0], str) else ""
        self._check(size_of(items, self.max_output) + len(sep) * len(items))

    def _check_replace(self, text: str, old: Any, new: Any) -> None:
        if isinstance(old, str) and isinstance(new, str):
            found = text.count(old) if old else len(text) + 1
            self._check(len(text) + found * max(0, len(new) - len(old)))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    self._check(len(seq) * count)
        elif operator == "%" and isinstance(left, str):
            self._check_format(left)
            self._check_size(right)
            for arg in right if isinstance(right, tuple) else (right,):
                self._check_number(arg)
        elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
            self._check(int(right * math.log10(abs(left))))  # the result's digits
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, str | list | tuple):
            self._check(len(result))
        return result

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # `'x'.ljust(10**9)`, `'{:>999999999}'.format(…)`: refuse sizes over the cap before Python
        # allocates them (one C call cannot be interrupted by the time limit).
        method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str) and name in ("format", "format_map"):
            self._check_format(owner)
            self._check_size([args, kwargs])
        elif isinstance(owner, str) and name == "join" and args:
            args = (list(args[0]), *args[1:])  # measured once, then joined
            self._check_join(args[0], (owner,))
        elif isinstance(owner, str) and name == "replace" and len(args) >= 2:
            self._check_replace(owner, args[0], args[1])
        for arg in (*args, *kwargs.values()):
            self._check_number(arg)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str | list | tuple):
            self._check(len(result))
        return result

    def capped_join(self, seq: Any) -> str:
        items = list(seq)
        self._check_size(items)
        text = "".join(str(item) for item in items)
        self._check(len(text))
        return text

    def _capped_filter(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def capped(*args: Any, **kwargs: Any) -> Any:
            if args and isinstance(args[0], str) and func is format_filter:
                self._check_format(args[0])
            for arg in (*args[1:], *kwargs.values()):
                self._check_number(arg)
            result = func(*args, **kwargs)
            if isinstance(result, str):
                self._check(len(result))
            return result

        # Keep Jinja2's pass_context/pass_environment markers.
        capped.__dict__.update(getattr(func, "__dict__", {}))
        return capped

    def _check_number(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value > self.max_output:
            raise TooBig(f"the number {value} is over the size limit of {self.max_output}")

    def _check_format(self, text: str) -> None:
        for width in _NUMBER.findall(text):
            self._check_number(int(width))

    def _check(self, size: int) -> None:
        if size > self.max_output:
            raise TooBig(f"the value would be over the cap of {self.max_output} characters")


def within(limit: float, work: Callable[[], T]) -> T:
    """``work()``, stopped with ``Deadline`` once ``limit`` seconds have passed.

    The check runs on every call and on every line of compiled template code; frames outside
    templates only pay for the call event. This measures CPU-bound work in this thread, so it reads
    a monotonic counter, not the injectable wall clock.
    """
    deadline = time.monotonic() + limit

    def in_template(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise Deadline
        return in_template

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise Deadline
        return in_template if frame.f_code.co_filename == TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        return work()
    finally:
        sys.settrace(previous)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
