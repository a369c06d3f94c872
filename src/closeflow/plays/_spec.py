"""Play and tool files: the strict models, and loading a file or a whole ``plays/`` folder.

Every problem becomes a ``PlayFileError`` naming the file, the line and a fix. Loading checks what
can be checked without Close: node types and fields, graph targets, ``where`` filters, template and
JMESPath syntax, action configurations (through ``closeflow.actions.parse_spec``), tool references.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema

from closeflow.actions import ActionSpec, parse_spec
from closeflow.close import ConfigError, Filter, FilterError, parse_where
from closeflow.plays._expressions import Evaluator, ExpressionError
from closeflow.plays._schedule import parse_cron, parse_duration
from closeflow.plays._yaml import YAML_11_BOOLEANS, Location, PlayFileError, YamlDocument, load_yaml

__all__ = [
    "ACTIONS",
    "NODE_TYPES",
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
END = "end"
ChangeKind = Literal["added", "updated", "removed"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("added", "updated", "removed")
ValueType = Literal["string", "number", "integer", "boolean", "object", "array"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=1, ge=1, le=100)
    initial_interval: float = Field(default=1.0, ge=0)
    backoff_coefficient: float = Field(default=2.0, ge=1)
    max_interval: float = Field(default=60.0, ge=0)
    non_retryable: list[str] = Field(default_factory=list)


class NodeBase(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
    type: str
    next: str | None = None
    on_failure: str | None = None
    retry: RetryPolicy = RetryPolicy()
    line: SkipJsonSchema[int] = Field(default=0, exclude=True)

    def targets(self) -> dict[str, str]:
        """Field name → node id this node may go to."""
        found = {"next": self.next, "on_failure": self.on_failure}
        return {key: value for key, value in found.items() if value is not None}


class ActionNode(NodeBase):
    type: Literal["action"]
    action: str
    config: dict[str, Any]
    record: dict[str, Any] = Field(default_factory=dict)


class HttpNode(NodeBase):
    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: Any
    headers: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    timeout: float = Field(default=10.0, gt=0)


class BranchNode(NodeBase):
    type: Literal["branch"]
    if_: Any = Field(alias="if")
    then: str
    else_: str = Field(alias="else")

    def targets(self) -> dict[str, str]:
        return {**super().targets(), "then": self.then, "else": self.else_}


class SwitchNode(NodeBase):
    type: Literal["switch"]
    value: Any
    cases: dict[str, str]
    default: str = END

    def targets(self) -> dict[str, str]:
        return {
            **super().targets(),
            **{f"cases.{k}": v for k, v in self.cases.items()},
            "default": self.default,
        }


class FilterNode(NodeBase):
    type: Literal["filter"]
    if_: Any = Field(alias="if")


class SetNode(NodeBase):
    type: Literal["set"]
    vars: dict[str, Any]


class DelayNode(NodeBase):
    type: Literal["delay"]
    seconds: float = Field(ge=0)


class ToolNode(NodeBase):
    type: Literal["tool"]
    tool: str
    input: dict[str, Any] = Field(default_factory=dict)


class EndNode(NodeBase):
    type: Literal["end"]
    status: Literal["succeeded", "failed"] = "succeeded"


Node = Annotated[
    ActionNode | HttpNode | BranchNode | SwitchNode | FilterNode | SetNode | DelayNode | ToolNode | EndNode,
    Field(discriminator="type"),
]
NODE_CLASSES: dict[str, type[NodeBase]] = {
    "action": ActionNode, "http": HttpNode, "branch": BranchNode, "switch": SwitchNode, "filter": FilterNode,
    "set": SetNode, "delay": DelayNode, "tool": ToolNode, "end": EndNode,
}  # fmt: skip
NODE_TYPES = tuple(NODE_CLASSES)


class Trigger(_Strict):
    model: str
    on: list[ChangeKind] = Field(default_factory=lambda: list(CHANGE_KINDS), min_length=1)
    where: str | None = None
    changed: list[str] = Field(default_factory=list)
    when: Any = None
    _filter: Filter | None = PrivateAttr(default=None)

    @property
    def filter(self) -> Filter | None:
        """``where`` parsed (``closeflow.close`` filter model)."""
        return self._filter

    def model_post_init(self, context: Any) -> None:
        self._filter = parse_where(self.where) if self.where else None


class Enrolment(_Strict):
    mode: Literal["once", "every_change"] = "once"
    batch_size: int = Field(default=50, ge=1)
    max_records_per_run: int = Field(default=500, ge=1)


class Schedule(_Strict):
    kind: Literal["manual", "after_sync", "every", "cron"] = "after_sync"
    every_seconds: float | None = None
    cron: str | None = None


class Graph(_Strict):
    nodes: list[Node] = Field(min_length=1)
    start: str

    def node(self, node_id: str) -> NodeBase:
        return next(n for n in self.nodes if n.id == node_id)

    def next_of(self, node_id: str) -> str:
        """Where a node goes when it succeeds and names no ``next``: the following node, or the end."""
        ids = [n.id for n in self.nodes]
        node = self.node(node_id)
        if node.next is not None:
            return node.next
        index = ids.index(node_id)
        return ids[index + 1] if index + 1 < len(ids) else END


class ToolInput(_Strict):
    type: ValueType
    required: bool = True
    description: str = ""
    default: Any = None


class ToolOutput(_Strict):
    type: ValueType
    description: str = ""
    value: Any


class Play(_Strict):
    kind: Literal["play"]
    name: str
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    trigger: Trigger
    enrolment: Enrolment = Enrolment()
    schedule: Schedule = Schedule()
    graph: Graph
    path: str
    warnings: SkipJsonSchema[list[str]] = Field(default_factory=list, exclude=True)


class Tool(_Strict):
    kind: Literal["tool"]
    name: str
    description: str
    vars: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, ToolInput] = Field(default_factory=dict)
    outputs: dict[str, ToolOutput] = Field(default_factory=dict)
    graph: Graph
    path: str
    warnings: SkipJsonSchema[list[str]] = Field(default_factory=list, exclude=True)


@dataclass
class Catalog:
    """Every play and tool of a folder, checked together (names unique, tool references resolved)."""

    plays: dict[str, Play] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)


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
        _where(doc, data["trigger"].get("where"))
        _values(doc, ("trigger", "when"), data["trigger"].get("when"), evaluator)
    else:
        for output, spec in (data.get("outputs") or {}).items():
            if isinstance(spec, dict):
                _values(doc, ("outputs", output, "value"), spec.get("value"), evaluator)
    _values(doc, ("vars",), data.get("vars"), evaluator)
    model: type[Play] | type[Tool] = Play if kind == "play" else Tool
    item: Play | Tool = _validate(doc, model, fields, ())
    item.warnings.extend(_check_graph(doc, item.graph, ("start",) if "start" in data else ("nodes", 0)))
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
                return Schedule(kind="every", every_seconds=parse_duration(str(value)))
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
        reached_node = graph.node(current)
        todo.extend(reached_node.targets().values())
        if reached_node.next is None and not isinstance(reached_node, BranchNode | SwitchNode | EndNode):
            todo.append(graph.next_of(current))
    return [
        f'{doc.path}:{node.line}: node "{node.id}" can never run (nothing leads to it)'
        for node in graph.nodes
        if node.id not in reached
    ]
