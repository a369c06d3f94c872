"""What the run ledger holds and promises: run and node records, their statuses, and ``RunLedger``.

The interpreter, the engine and the runner work with these types; ``_ledger_sql.py`` stores them and
``_ledger.py`` opens a ledger on SQLite or Postgres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from closeflow.sync.store import StoreError

RunStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "filtered"]
RunSource = Literal["play", "tool", "cli", "mcp"]
NodeStatus = Literal["succeeded", "failed", "skipped"]
UNFINISHED = ("pending", "running", "waiting")
FINISHED = ("succeeded", "failed", "filtered")


class AlreadyRetried(StoreError):
    """The run was retried before (``by``): a second retry would repeat the first one's writes."""

    def __init__(self, run_id: str, by: str) -> None:
        super().__init__(f"run {run_id} was already retried by run {by}; retry that run instead")
        self.by = by


@dataclass(frozen=True)
class NodeRecord:
    """One attempt of one node. ``skipped`` marks an output reused from an earlier run (replay)."""

    node_id: str
    attempt: int
    status: NodeStatus
    input: Any = None
    output: Any = None
    error: str | None = None
    error_class: str | None = None
    retryable: bool = True
    started_at: float = 0.0
    finished_at: float = 0.0


@dataclass(frozen=True)
class RunRecord:
    id: str
    play: str
    source: str
    status: str
    record_id: str | None
    change_seq: int | None
    trigger: dict[str, Any] | None
    context: dict[str, Any]
    error: str | None
    created_at: float
    updated_at: float
    wake_at: float | None = None
    output: dict[str, Any] | None = None
    retried_by: str | None = None
    nodes: list[NodeRecord] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``closeflow runs show``."""
        out = {k: v for k, v in self.__dict__.items() if k != "nodes"}
        out["nodes"] = [dict(n.__dict__) for n in self.nodes]
        return out


class RunLedger(Protocol):
    def create_run(
        self,
        *,
        play: str,
        source: RunSource,
        record_id: str | None,
        change_seq: int | None,
        trigger: dict[str, Any] | None,
        context: dict[str, Any],
        run_id: str | None = None,
        nodes: Sequence[NodeRecord] = (),
        retry_of: str | None = None,
    ) -> str: ...
    def enrol(self, play: str, record_id: str, change_seq: int, mode: str) -> bool: ...
    def enrolments(self, play: str) -> list[tuple[str, int, str]]: ...
    def enrol_run(
        self,
        *,
        play: str,
        record_id: str,
        change_seq: int,
        mode: str,
        trigger: dict[str, Any] | None,
        context: dict[str, Any],
    ) -> str | None: ...
    def runs(
        self,
        *,
        play: str | None = None,
        status: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]: ...
    def run(self, run_id: str) -> RunRecord | None: ...
    def record_node(self, run_id: str, node: NodeRecord) -> None: ...
    def set_status(
        self, run_id: str, status: RunStatus, *, error: str | None = None, wake_at: float | None = None
    ) -> None: ...
    def set_output(self, run_id: str, output: dict[str, Any]) -> None: ...
    def claim(self, run_id: str, owner: str, *, until: float, now: float) -> bool: ...
    def release(self, run_id: str, owner: str) -> None: ...
    def lease_holder(self, run_id: str) -> str | None: ...
    def take_over(self, run_id: str, owner: str, *, holder: str, until: float) -> bool: ...
    def unfinished(self) -> list[RunRecord]: ...
    def cursor(self, play: str) -> int: ...
    def set_cursor(self, play: str, seq: int) -> None: ...
    def close(self) -> None: ...
