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

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import jinja2
import jmespath
from jmespath.exceptions import JMESPathError

from closeflow.close import ConfigError
from closeflow.plays._sandbox import Deadline, Sandbox, TooBig, size_of, within

__all__ = ["Evaluator", "ExpressionError", "is_dynamic", "size_of", "switch_key"]

T = TypeVar("T")

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
# Rendered text that reads as "no" when a template decides a branch or filter.
_FALSE_TEXT = frozenset({"", "false", "0", "none", "null", "no"})
_CACHE_SIZE = 2048


class ExpressionError(ConfigError):
    """An expression in a play that failed: which one, and why."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {_clip(expression)!r} failed: {reason}")


@contextmanager
def _refusals(source: str) -> Iterator[None]:
    """The sandbox's refusals (a value over its cap, an unsafe call, an undefined name) as the
    ``ExpressionError`` of ``source``."""
    try:
        yield
    except TooBig as exc:
        raise ExpressionError(source, str(exc)) from None
    except jinja2.exceptions.SecurityError as exc:
        raise ExpressionError(source, f"not allowed in the sandbox: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise ExpressionError(source, f"{exc.message} (names available: record, change, vars, …)") from None


def switch_key(value: Any) -> str:
    """A switch value as the case key it matches: written as JSON writes it (``true``, ``false``,
    ``null``, ``3``, ``2.5``), because case keys are the text the user wrote in YAML (``true:``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON has one number type: `2:` matches 2.0
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


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
        self._env = Sandbox(max_output)
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
        compiled = self._compiled_path(path)
        try:
            result = within(self.time_limit, lambda: compiled.search(dict(context)))
        except JMESPathError as exc:
            raise ExpressionError(path, _first_line(exc)) from None
        except Deadline:
            raise ExpressionError(path, f"took longer than the limit of {self.time_limit:g} s") from None
        except RecursionError:
            raise ExpressionError(path, "recursion too deep") from None
        # `[@, @]` doubles a value at each step without copying it; writing it out would not be cheap.
        if size_of(result, self.max_output) > self.max_output:
            raise ExpressionError(path, f"the value is over the cap of {self.max_output} characters")
        return result

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
                raise TooBig(f"the output is over the cap of {self.max_output} characters")
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
                raise TooBig(f"the value is over the cap of {self.max_output} characters")
            return item

        try:  # our own walk, bounded by the cap: no time limit needed
            with _refusals(source):
                return plain(value)
        except RecursionError:
            raise ExpressionError(source, "the value is nested too deeply") from None

    def _guarded(self, source: str, work: Callable[[], T]) -> T:
        try:
            with _refusals(source):
                return within(self.time_limit, work)
        except Deadline:
            raise ExpressionError(source, f"took longer than the limit of {self.time_limit:g} s") from None
        except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            raise ExpressionError(source, f"{type(exc).__name__}: {exc}") from None
        except RecursionError:
            raise ExpressionError(source, "recursion too deep") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
