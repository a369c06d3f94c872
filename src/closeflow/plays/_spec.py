"""Loading a play or tool file, or a whole ``plays/`` folder, into the models of ``_models``.

Every problem becomes a ``PlayFileError`` naming the file, the line and a fix. Loading checks what
can be checked without Close: node types and fields, graph targets and cycles, ``where`` filters,
template and JMESPath syntax, action configurations (through ``closeflow.actions.parse_spec``),
trigger models, retry error names, tool input defaults, secrets, tool references.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, get_args

import pydantic
from pydantic import BaseModel

from closeflow.actions import ActionSpec, parse_spec
from closeflow.close import CloseError, ConfigError, FilterError, parse_where
from closeflow.plays._expressions import Evaluator, ExpressionError, is_dynamic
from closeflow.plays._models import (
    END,
    NODE_CLASSES,
    NODE_TYPES,
    ActionNode,
    BranchNode,
    Catalog,
    DelayNode,
    EndNode,
    Enrolment,
    FilterNode,
    Graph,
    HttpNode,
    Node,
    NodeBase,
    Play,
    RetryPolicy,
    Schedule,
    SecretRef,
    SetNode,
    SwitchNode,
    Tool,
    ToolInput,
    ToolNode,
    ToolOutput,
    Trigger,
)
from closeflow.plays._schedule import parse_cron, parse_duration
from closeflow.plays._secrets import looks_secret
from closeflow.plays._tools import fits
from closeflow.plays._yaml import YAML_11_BOOLEANS, Location, PlayFileError, YamlDocument, load_yaml
from closeflow.sync import MODEL_NAMES

__all__ = [
    "ACTIONS",
    "NODE_TYPES",
    "RETRY_ERROR_NAMES",
    "ActionNode",
    "BranchNode",
    "Catalog",
    "DelayNode",
    "EndNode",
    "Enrolment",
    "FilterNode",
    "Graph",
    "HttpNode",
    "Node",
    "Play",
    "PlayFileError",
    "RetryPolicy",
    "Schedule",
    "SecretRef",
    "SetNode",
    "SwitchNode",
    "Tool",
    "ToolInput",
    "ToolNode",
    "ToolOutput",
    "Trigger",
    "load_folder",
    "load_play_file",
]

# The action names closeflow.actions knows (its spec union's `action` tags), in its order.
_SPEC_CLASSES: tuple[type[BaseModel], ...] = get_args(get_args(ActionSpec)[0])
ACTIONS: tuple[str, ...] = tuple(str(spec.model_fields["action"].default) for spec in _SPEC_CLASSES)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def _error_names(cls: type[BaseException]) -> list[str]:
    return [cls.__name__, *(name for sub in cls.__subclasses__() for name in _error_names(sub))]


# What a node failure's error_class can be, so a typo in `non_retryable` is caught at load time:
# closeflow.close's errors, and the plays' own (an http status outside expect_status, a failed
# expression, bad tool inputs, a failed tool run).
RETRY_ERROR_NAMES: tuple[str, ...] = tuple(
    sorted({*_error_names(CloseError), "HttpStatus", "ExpressionError", "ToolInputError", "ToolFailed"})
)


# -- loading ------------------------------------------------------------------------------------


def load_play_file(path: str | Path) -> Play | Tool:
    """One play or tool file, checked on its own (tool references are checked by ``load_folder``)."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlayFileError(shown, None, f"cannot read the file: {exc}") from None
    return build(load_yaml(text, shown))


def load_folder(path: str | Path) -> Catalog:
    """Every ``*.yaml`` / ``*.yml`` file in ``path`` (one play or tool each), checked together.

    Raises the first file's ``PlayFileError`` (files in name order)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"no plays folder at {folder}; create it or pass --plays DIR")
    catalog = Catalog()
    seen: dict[str, str] = {}
    loaded: list[Play | Tool] = []
    for file in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        item = load_play_file(file)
        if item.name in seen:
            raise PlayFileError(
                item.path,
                1,
                f'the name "{item.name}" is already used by {seen[item.name]}',
                "rename one of them",
            )
        seen[item.name] = item.path
        loaded.append(item)
        if isinstance(item, Play):
            catalog.plays[item.name] = item
        else:
            catalog.tools[item.name] = item
    for item in loaded:
        for node in item.graph.nodes:
            if isinstance(node, ToolNode) and node.tool not in catalog.tools:
                hint = _did_you_mean(node.tool, catalog.tools)
                raise PlayFileError(
                    item.path,
                    node.line,
                    f'node "{node.id}" calls the unknown tool "{node.tool}"',
                    hint or f"add a file with `kind: tool` and `name: {node.tool}` to {folder}",
                )
    return catalog


def _did_you_mean(word: str, choices: Any) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f'did you mean "{close[0]}"?' if close else None


def _yaml_11_hint(value: Any) -> str | None:
    """A fix for a value YAML 1.1 would have read as a boolean (play files read it as text)."""
    if isinstance(value, str) and value in YAML_11_BOOLEANS:
        return (
            f'"{value}" is text in play files (YAML 1.2), not a boolean: write true or false for a '
            f'yes/no setting, or quote it ("{value}") where you mean the text'
        )
    return None


# -- checking one file ---------------------------------------------------------------------------

_SCHEDULE_WORDS = ("manual", "after_sync")
# Node fields that hold values (paths, templates, literals), checked for syntax at load time.
_VALUE_FIELDS = ("record", "url", "headers", "json", "if", "value", "vars", "input")


def build(doc: YamlDocument) -> Play | Tool:
    """The play or tool ``doc`` describes, or the first ``PlayFileError`` in it."""
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error(
            (), "a play file must be a mapping of keys", "start it with `kind: play` or `kind: tool`"
        )
    kind = data.get("kind")
    if kind not in ("play", "tool"):
        raise doc.error(
            ("kind",), f"kind must be play or tool, not {kind!r}", "write `kind: play` or `kind: tool`"
        )
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise doc.error(
            ("name",),
            f"name {name!r} is not a valid name",
            "use lower-case letters, digits and dashes: follow-up-a",
        )
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise doc.error(
            ("nodes",), "a play needs a non-empty list of nodes under `nodes:`", "add `nodes:` with one item"
        )
    _finite(doc, (), data)
    evaluator = Evaluator()
    nodes = [_node(doc, index, raw, evaluator) for index, raw in enumerate(raw_nodes)]
    fields = {k: v for k, v in data.items() if k not in ("nodes", "start", "schedule")}
    fields["graph"] = {"nodes": nodes, "start": data.get("start", nodes[0].id)}
    fields["path"] = doc.path
    if kind == "play":
        fields["schedule"] = _schedule(doc, data.get("schedule", "after_sync"))
        if not isinstance(data.get("trigger"), dict):
            raise doc.error(
                ("trigger",), "a play needs a `trigger:` mapping", "add `trigger: {model: leads}`"
            )
        _trigger_model(doc, data["trigger"].get("model"))
        _where(doc, data["trigger"].get("where"))
        _values(doc, ("trigger", "when"), data["trigger"].get("when"), evaluator)
    else:
        for output, spec in (data.get("outputs") or {}).items():
            if isinstance(spec, dict):
                _values(doc, ("outputs", output, "value"), spec.get("value"), evaluator)
    vars_warnings = _vars(doc, data.get("vars"))
    model: type[Play] | type[Tool] = Play if kind == "play" else Tool
    item: Play | Tool = _validate(doc, model, fields, ())
    if isinstance(item, Tool):
        _input_defaults(doc, item)
    item.warnings.extend(vars_warnings)
    item.warnings.extend(_check_graph(doc, item.graph, ("start",) if "start" in data else ("nodes", 0)))
    _check_cycles(doc, item.graph)
    return item


def _node(doc: YamlDocument, index: int, raw: Any, evaluator: Evaluator) -> NodeBase:
    loc: Location = ("nodes", index)
    if not isinstance(raw, dict):
        raise doc.error(loc, "each node must be a mapping with an `id` and a `type`")
    node_type = raw.get("type")
    if node_type not in NODE_CLASSES:
        fix = _did_you_mean(str(node_type), NODE_CLASSES) or "set `type:` to one of the types listed"
        what = "has no type" if node_type is None else f"has the unknown type {node_type!r}"
        raise doc.error(
            (*loc, "type"),
            f"node {raw.get('id', index)!r} {what}; expected one of {', '.join(NODE_TYPES)}",
            fix,
        )
    for key in _VALUE_FIELDS:
        if key in raw:
            _values(doc, (*loc, key), raw[key], evaluator)
    node = _validate(doc, NODE_CLASSES[node_type], raw, loc)
    _non_retryable(doc, loc, node)
    located: NodeBase = node.model_copy(update={"line": doc.line_of(loc) or 0})
    if isinstance(located, ActionNode):
        _action(doc, loc, located)
    return located


def _action(doc: YamlDocument, loc: Location, node: ActionNode) -> None:
    if node.action not in ACTIONS:
        raise doc.error(
            (*loc, "action"),
            f'node "{node.id}": unknown action "{node.action}"; expected one of {", ".join(ACTIONS)}',
            _did_you_mean(node.action, ACTIONS),
        )
    if "action" in node.config:
        raise doc.error(
            (*loc, "config", "action"), "`action` goes on the node, not in `config`", "remove it from config"
        )
    try:
        parse_spec({**node.config, "action": node.action})
    except pydantic.ValidationError as exc:
        error = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        where = tuple(part for part in error["loc"] if part != node.action)
        spec = next(m for m in _SPEC_CLASSES if m.model_fields["action"].default == node.action)
        what = f'node "{node.id}" ({node.action}) config'
        raise _located(doc, (*loc, "config"), where, error, what, spec) from None
    except (ConfigError, ValueError) as exc:
        raise doc.error((*loc, "config"), f'node "{node.id}" ({node.action}) config: {exc}') from None


def _values(doc: YamlDocument, loc: Location, value: Any, evaluator: Evaluator) -> None:
    try:
        evaluator.check(value)
    except ExpressionError as exc:
        raise doc.error(loc, f"bad expression {exc.expression!r}: {exc.reason}") from None


def _finite(doc: YamlDocument, loc: Location, value: Any) -> None:
    """Refuse ``.nan`` and ``.inf`` anywhere: no setting means them, and JSON cannot store them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise doc.error(loc, f"{value} is not a usable number", "write a finite number, e.g. 30")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(doc, (*loc, key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(doc, (*loc, index), item)


def _trigger_model(doc: YamlDocument, model: Any) -> None:
    if isinstance(model, str) and model not in MODEL_NAMES:
        raise doc.error(
            ("trigger", "model"),
            f'unknown data model "{model}"; plays trigger on the models closeflow syncs: '
            f"{', '.join(MODEL_NAMES)}",
            _did_you_mean(model, MODEL_NAMES),
        )


def _vars(doc: YamlDocument, raw: Any) -> list[str]:
    """Play- and tool-level vars are literals, stored with every run: no templates, no credentials."""
    warnings: list[str] = []
    if not isinstance(raw, dict):
        return warnings
    for name, value in raw.items():
        if _holds_expression(value):
            raise doc.error(
                ("vars", name),
                f"vars.{name} holds a path or template, but play-level vars are used as written",
                "compute it in a `set` node (type: set, vars: {...}) as the first node",
            )
        reason = looks_secret(str(name), value)
        if reason:
            # A warning, not an error, until every engine path passes `secrets` through: a play
            # that works today keeps loading, and `plays validate` shows the fix.
            warnings.append(
                f"{doc.path}:{doc.line_of(('vars', name)) or 1}: vars.{name} looks like a secret "
                f"({reason}) and vars are stored with every run; move it to "
                f"`secrets: {{{name}: {{env: {str(name).upper()}}}}}`, set that environment variable, "
                f"and write secrets.{name} where you used vars.{name}"
            )
    return warnings


def _holds_expression(value: Any) -> bool:
    if is_dynamic(value):
        return True
    if isinstance(value, dict):
        return any(_holds_expression(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_expression(item) for item in value)
    return False


def _non_retryable(doc: YamlDocument, loc: Location, node: NodeBase) -> None:
    for index, name in enumerate(node.retry.non_retryable):
        if name not in RETRY_ERROR_NAMES:
            raise doc.error(
                (*loc, "retry", "non_retryable", index),
                f'node "{node.id}": non_retryable names the unknown error "{name}"',
                _did_you_mean(name, RETRY_ERROR_NAMES) or f"use one of {', '.join(RETRY_ERROR_NAMES)}",
            )


def _input_defaults(doc: YamlDocument, tool: Tool) -> None:
    for name, spec in tool.inputs.items():
        if spec.default is not None and not fits(spec.type, spec.default):
            raise doc.error(
                ("inputs", name, "default"),
                f"input {name!r} is declared {spec.type} but its default {spec.default!r} is not",
                f"give a {spec.type} default, or change `type:`",
            )


def _where(doc: YamlDocument, where: Any) -> None:
    if where is None:
        return
    if not isinstance(where, str):
        raise doc.error(
            ("trigger", "where"),
            "`where` must be filter text",
            """write e.g. where: 'status = "Qualified"'""",
        )
    try:
        parse_where(where)
    except FilterError as exc:
        reason = str(exc).replace("\n", "\n  ")
        raise doc.error(
            ("trigger", "where"),
            f"bad filter in `where`: {reason}",
            "see `closeflow leads --help` for the filter language",
        ) from None


def _schedule(doc: YamlDocument, raw: Any) -> Schedule:
    loc: Location = ("schedule",)
    fix = 'write manual, after_sync, {every: "5m"} or {cron: "*/10 * * * *"}'
    if raw in _SCHEDULE_WORDS:
        return Schedule(kind=raw)
    if isinstance(raw, dict) and len(raw) == 1:
        ((key, value),) = raw.items()
        try:
            if key == "every" and isinstance(value, str | int | float) and not isinstance(value, bool):
                seconds = parse_duration(str(value))
                if not math.isfinite(seconds):  # float() reads "nan" and "inf" too
                    raise ConfigError(f"every {value!r} is not a finite duration")
                return Schedule(kind="every", every_seconds=seconds)
            if key == "cron" and isinstance(value, str):
                parse_cron(value)
                return Schedule(kind="cron", cron=value)
        except ConfigError as exc:
            raise doc.error((*loc, key), f"bad schedule: {exc}", fix) from None
    raise doc.error(loc, f"unknown schedule {raw!r}", fix)


def _validate(doc: YamlDocument, model: type[Any], data: Any, loc: Location) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        # A misspelt key also shows up as a missing one; the misspelling is the better message.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        what = f'node "{data.get("id")}"' if loc[:1] == ("nodes",) and isinstance(data, dict) else ""
        raise _located(doc, loc, errors[0]["loc"], errors[0], what, model) from None


def _located(
    doc: YamlDocument, base: Location, inner: tuple[Any, ...], error: Any, what: str, model: type[Any] | None
) -> PlayFileError:
    """A pydantic error at ``inner`` (within ``base``) as a located message with a fix."""
    if inner[:2] == ("graph", "nodes"):
        base, inner = ("nodes", inner[2]), inner[3:]
    elif inner[:2] == ("graph", "start"):
        inner = ("start",)
    loc = (*base, *inner)
    name = ".".join(str(part) for part in inner if not isinstance(part, int)) or "value"
    key = str(loc[-1]) if loc else ""
    prefix = f"{what}: " if what else ""
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return doc.error(loc, f"{prefix}missing field `{key}`", f"add `{key}:`")
    if kind == "extra_forbidden":
        known = list(getattr(model, "model_fields", {}))
        aliases = [f.alias for f in getattr(model, "model_fields", {}).values() if f.alias]
        fix = _did_you_mean(key, [*known, *aliases]) or "remove it"
        return doc.error(loc, f"{prefix}unknown field `{key}`", fix)
    hint = _yaml_11_hint(value)
    if hint and key == "on":
        hint = f'"{value}" is text here, not false: list the change kinds, e.g. on: [added, updated]'
    return doc.error(loc, f"{prefix}`{name}`: {error['msg']} (got {value!r})", hint)


def _check_graph(doc: YamlDocument, graph: Graph, start_loc: Location) -> list[str]:
    ids: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        if node.id == END:
            raise doc.error(
                ("nodes", index, "id"), '"end" is reserved (it means: end the run)', "rename the node"
            )
        if node.id in ids:
            first = graph.nodes[ids[node.id]].line
            raise doc.error(
                ("nodes", index, "id"),
                f'duplicate node id "{node.id}" (first on line {first})',
                "give each node a unique id",
            )
        ids[node.id] = index
    if graph.start not in ids:
        raise doc.error(
            start_loc, f'start names the unknown node "{graph.start}"', _did_you_mean(graph.start, ids)
        )
    for index, node in enumerate(graph.nodes):
        for key, target in node.targets().items():
            if target != END and target not in ids:
                hint = _did_you_mean(target, ids) or f'use one of {", ".join(ids)} or "end"'
                where: Location = ("nodes", index, *key.split(".", 1))
                raise doc.error(where, f'node "{node.id}": `{key}` goes to the unknown node "{target}"', hint)
    reached: set[str] = set()
    todo = [graph.start]
    while todo:
        current = todo.pop()
        if current == END or current in reached:
            continue
        reached.add(current)
        todo.extend(graph.successors(current))
    return [
        f'{doc.path}:{node.line}: node "{node.id}" can never run (nothing leads to it)'
        for node in graph.nodes
        if node.id not in reached
    ]


def _check_cycles(doc: YamlDocument, graph: Graph) -> None:
    """Refuse a path that returns to a node: runs visit each node at most once, so a loop would
    either hang a runner or reuse one visit's idempotency keys for another."""
    done: set[str] = set()
    for first in (n.id for n in graph.nodes):
        path: list[str] = []
        on_path: set[str] = set()
        # Depth-first with an explicit stack: a play may have thousands of nodes.
        stack: list[tuple[str, int]] = [(first, 0)]
        while stack:
            current, index = stack.pop()
            if index == 0:
                if current == END or current in done:
                    continue
                if current in on_path:
                    loop = [*path[path.index(current) :], current]
                    node = graph.node(current)
                    raise doc.error(
                        ("nodes", [n.id for n in graph.nodes].index(current)),
                        f'the nodes loop: {" → ".join(loop)} (node "{node.id}", line {node.line})',
                        "plays run each node at most once; use a tool, or split the play",
                    )
                path.append(current)
                on_path.add(current)
            successors = graph.successors(current)
            if index < len(successors):
                stack.append((current, index + 1))
                stack.append((successors[index], 0))
            else:
                path.pop()
                on_path.discard(current)
                done.add(current)
