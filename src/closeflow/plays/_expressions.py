"""Values in play files: JMESPath paths, sandboxed Jinja2 templates, or literals.

- ``{path: "record.emails[0].email"}`` → JMESPath over the context;
- a string holding ``{{`` or ``{%`` → a Jinja2 template; a string that is exactly one ``{{ expr }}``
  is the expression's native value (number, bool, list, dict, None), any other renders to text;
- anything else is a literal, recursively through dicts and lists.

Play files are written by users and run unattended, so templates run in Jinja2's immutable sandbox
(no ``__class__``-style attribute escapes, no mutation of the context), with StrictUndefined (a
typo is an error, not an empty string), an output cap (checked while rendering, and before the
operators that can build huge values in one step: ``*``, ``+``, ``~``, ``%``, ``**``, width
arguments) and a time limit. The time limit is a trace-function deadline on the evaluating thread:
no worker thread or process to kill, and a runaway loop stops within one template line.
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
import jmespath
from jinja2.filters import do_format as format_filter
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jmespath.exceptions import JMESPathError

from closeflow.close import ConfigError

__all__ = ["Evaluator", "ExpressionError", "is_dynamic"]

T = TypeVar("T")

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
# Rendered text that reads as "no" when a template decides a branch or filter.
_FALSE_TEXT = frozenset({"", "false", "0", "none", "null", "no"})
_TEMPLATE_FILE = "<template>"  # the code filename Jinja2 gives compiled templates
_CACHE_SIZE = 2048
_NUMBER = re.compile(r"\d{6,}")  # a width or precision in a format string big enough to matter


class ExpressionError(ConfigError):
    """An expression in a play that failed: which one, and why."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {_clip(expression)!r} failed: {reason}")


class _Deadline(Exception):
    """Raised from the trace function inside a template that ran past the time limit."""


class _TooBig(Exception):
    """Raised inside a template about to build a value over the output cap."""


def is_dynamic(value: Any) -> bool:
    """Whether ``value`` is a path or a template (rather than a literal)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return isinstance(value, dict) and set(value) == {"path"} and isinstance(value["path"], str)


class Evaluator:
    """Evaluates play values over a plain-data context (``record``, ``change``, ``vars``, ``nodes``…)."""

    def __init__(self, time_limit: float = 1.0, max_output: int = 100_000) -> None:
        self.time_limit = time_limit
        self.max_output = max_output
        self._env = _Sandbox(max_output)
        self._templates: dict[str, jinja2.Template] = {}
        self._expressions: dict[str, Callable[..., Any]] = {}
        self._paths: dict[str, Any] = {}

    # -- public ---------------------------------------------------------------------------------

    def evaluate(self, value: Any, context: Mapping[str, Any]) -> Any:
        """``value`` with every path and template in it evaluated over ``context``."""
        if isinstance(value, str):
            return self._string(value, context) if is_dynamic(value) else value
        if isinstance(value, dict):
            if is_dynamic(value):
                return self._path(value["path"], context)
            return {key: self.evaluate(item, context) for key, item in value.items()}
        if isinstance(value, list):
            return [self.evaluate(item, context) for item in value]
        return value

    def truthy(self, value: Any, context: Mapping[str, Any]) -> bool:
        """Whether ``value`` evaluates to "yes"; rendered text such as "false", "0" or "" is "no"."""
        result = self.evaluate(value, context)
        if isinstance(result, str) and isinstance(value, str) and _SINGLE.match(value) is None:
            return result.strip().lower() not in _FALSE_TEXT
        return bool(result)

    def check(self, value: Any) -> None:
        """Compile every path and template in ``value`` (syntax errors surface at load time)."""
        if isinstance(value, str):
            if is_dynamic(value):
                self._compile(value)
        elif isinstance(value, dict):
            if is_dynamic(value):
                self._compiled_path(value["path"])
            else:
                for item in value.values():
                    self.check(item)
        elif isinstance(value, list):
            for item in value:
                self.check(item)

    # -- JMESPath -------------------------------------------------------------------------------

    def _compiled_path(self, path: str) -> Any:
        compiled = self._paths.get(path)
        if compiled is None:
            try:
                compiled = jmespath.compile(path)
            except JMESPathError as exc:
                raise ExpressionError(path, f"not a valid JMESPath: {_first_line(exc)}") from None
            self._paths[path] = compiled
        return compiled

    def _path(self, path: str, context: Mapping[str, Any]) -> Any:
        try:
            return self._compiled_path(path).search(dict(context))
        except JMESPathError as exc:
            raise ExpressionError(path, _first_line(exc)) from None

    # -- Jinja2 ---------------------------------------------------------------------------------

    def _compile(self, source: str) -> tuple[Callable[..., Any] | None, jinja2.Template | None]:
        single = _SINGLE.match(source)
        expr = single.group("expr") if single else None
        if expr is not None and ("{{" in expr or "}}" in expr or "{%" in expr):
            expr = None  # several expressions: render as text
        try:
            if expr is not None:
                if expr not in self._expressions:
                    compiled = self._env.compile_expression(expr, False)
                    self._cap_joins(compiled._template)
                    self._remember(self._expressions, expr, compiled)
                return self._expressions[expr], None
            if source not in self._templates:
                template = self._env.from_string(source)
                self._cap_joins(template)
                self._remember(self._templates, source, template)
            return None, self._templates[source]
        except jinja2.TemplateSyntaxError as exc:
            raise ExpressionError(source, f"template syntax error: {exc.message}") from None

    def _cap_joins(self, template: jinja2.Template) -> None:
        # `~` joins strings through the module-level `str_join`, which the sandbox cannot intercept.
        template.root_render_func.__globals__["str_join"] = self._env.capped_join

    def _remember(self, cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = value

    def _string(self, source: str, context: Mapping[str, Any]) -> Any:
        expression, template = self._compile(source)
        if expression is not None:
            result = self._guarded(source, lambda: expression(**context))
            return self._native(source, result)
        assert template is not None
        return self._guarded(source, lambda: self._render(template, context))

    def _render(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > self.max_output:
                raise _TooBig(f"the output is over the cap of {self.max_output} characters")
            parts.append(chunk)
        return "".join(parts)

    def _native(self, source: str, value: Any) -> Any:
        """Plain data from a native expression result; undefined parts are errors, not None."""
        budget = [self.max_output]

        def plain(item: Any) -> Any:
            budget[0] -= 1
            if isinstance(item, jinja2.Undefined):
                item._fail_with_undefined_error()  # StrictUndefined: says which name
            if isinstance(item, str):
                budget[0] -= len(item)
                item = str(item)  # Markup → str
            elif isinstance(item, Mapping):
                item = {str(k): plain(v) for k, v in item.items()}
            elif isinstance(item, list | tuple):
                item = [plain(v) for v in item]
            if budget[0] < 0:
                raise _TooBig(f"the value is over the cap of {self.max_output} characters")
            return item

        try:  # our own walk, bounded by the cap: no time limit needed
            return plain(value)
        except _TooBig as exc:
            raise ExpressionError(source, str(exc)) from None
        except jinja2.exceptions.SecurityError as exc:
            raise ExpressionError(source, f"not allowed in the sandbox: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise ExpressionError(
                source, f"{exc.message} (names available: record, change, vars, …)"
            ) from None

    def _guarded(self, source: str, work: Callable[[], T]) -> T:
        try:
            return _within(self.time_limit, work)
        except _Deadline:
            raise ExpressionError(source, f"took longer than the limit of {self.time_limit:g} s") from None
        except _TooBig as exc:
            raise ExpressionError(source, str(exc)) from None
        except jinja2.exceptions.SecurityError as exc:
            raise ExpressionError(source, f"not allowed in the sandbox: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise ExpressionError(
                source, f"{exc.message} (names available: record, change, vars, …)"
            ) from None
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            raise ExpressionError(source, f"{type(exc).__name__}: {exc}") from None
        except RecursionError:
            raise ExpressionError(source, "recursion too deep") from None


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size checks where one operation can build a huge value."""

    intercepted_binops = frozenset({"*", "+", "%", "**"})

    def __init__(self, max_output: int) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, autoescape=False)
        self.max_output = max_output
        self.globals.pop("lipsum", None)  # generates arbitrary amounts of text
        for name in ("center", "indent", "format", "wordwrap", "truncate"):
            self.filters[name] = self._capped_filter(self.filters[name])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    self._check(len(seq) * count)
        elif operator == "%" and isinstance(left, str):
            self._check_format(left)
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
        if isinstance(owner, str) and getattr(method, "__name__", "") in ("format", "format_map"):
            self._check_format(owner)
        for arg in (*args, *kwargs.values()):
            self._check_number(arg)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str | list | tuple):
            self._check(len(result))
        return result

    def capped_join(self, seq: Any) -> str:
        text = "".join(str(item) for item in seq)
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
            raise _TooBig(f"the number {value} is over the size limit of {self.max_output}")

    def _check_format(self, text: str) -> None:
        for width in _NUMBER.findall(text):
            self._check_number(int(width))

    def _check(self, size: int) -> None:
        if size > self.max_output:
            raise _TooBig(f"the value would be over the cap of {self.max_output} characters")


def _within(limit: float, work: Callable[[], T]) -> T:
    """``work()``, stopped with ``_Deadline`` once ``limit`` seconds have passed.

    The check runs on every call and on every line of compiled template code; frames outside
    templates only pay for the call event. This measures CPU-bound work in this thread, so it reads
    a monotonic counter, not the injectable wall clock.
    """
    deadline = time.monotonic() + limit

    def in_template(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Deadline
        return in_template

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise _Deadline
        return in_template if frame.f_code.co_filename == _TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        return work()
    finally:
        sys.settrace(previous)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
