"""Play and tool files as data: the strict models the loader (``_spec``) builds and the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.json_schema import SkipJsonSchema

from closeflow.close import Filter, parse_where

END = "end"
ChangeKind = Literal["added", "updated", "removed"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("added", "updated", "removed")
ValueType = Literal["string", "number", "integer", "boolean", "object", "array"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=True, frozen=True, allow_inf_nan=False
    )


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

    def successors(self, node_id: str) -> list[str]:
        """Every node id (or ``end``) ``node_id`` may go to, including falling through to the next node."""
        node = self.node(node_id)
        found = list(node.targets().values())
        if node.next is None and not isinstance(node, BranchNode | SwitchNode | EndNode):
            ids = [n.id for n in self.nodes]
            index = ids.index(node_id)
            found.append(ids[index + 1] if index + 1 < len(ids) else END)
        return found


class ToolInput(_Strict):
    type: ValueType
    required: bool = True
    description: str = ""
    default: Any = None


class ToolOutput(_Strict):
    type: ValueType
    description: str = ""
    value: Any


class SecretRef(_Strict):
    """Where a secret's value comes from at run time: an environment variable, never the play file."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Play(_Strict):
    kind: Literal["play"]
    name: str
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
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
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
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
