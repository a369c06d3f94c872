"""The engine: interpreter → executor → ledger, until a run finishes or waits.

The interpreter decides the next step from the recorded history; the engine does it (an executor
for I/O nodes, the interpreter's own evaluation for control nodes), records the attempt, and asks
again. Every attempt is committed before the next decision, so a runner killed anywhere resumes a
run at the first node without a recorded outcome — and since action nodes write through the
actions' write ledger under ``{run_id}:{node_id}``, even a node killed mid-create does not create
twice on resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from closeflow._clock import Clock
from closeflow.actions import Ledger
from closeflow.close import CloseClient, ConfigError
from closeflow.plays._interpreter import (
    Execute,
    Finish,
    HistoryError,
    NodeOutcome,
    Wait,
    evaluate_control,
    next_step,
    node_context,
)
from closeflow.plays._nodes import NodeExecutor
from closeflow.plays._retry import carried_over
from closeflow.plays._retry import retry_from as retry_from  # imported from here by tests
from closeflow.plays._runs import NodeRecord, RunLedger, RunRecord
from closeflow.plays._secrets import MIN_SECRET_LENGTH, Secrets, scrub
from closeflow.plays._tools import ToolInputError, check_inputs, evaluate_outputs

# A delay longer than this leaves the run ``waiting`` for the runner to pick up after ``wake_at``
# rather than holding a task (and the runner's cycle) for minutes.
MAX_INLINE_WAIT = 60.0


class LeaseLost(Exception):
    """This runner's lease on the run expired and another runner took it: stop, record nothing."""


# A play may loop (a branch back to an earlier node); this cap on node attempts per run turns a loop
# that never exits into a failed run instead of a runner that never finishes its cycle.
MAX_NODE_ATTEMPTS = 1000
_CONTROL = frozenset({"branch", "switch", "filter", "set", "end"})
# Context keys a run's creator sets to bind how every drive of it runs, resumed or retried alike:
# a run planned for an agent must never be finished for real by a runner, nor lose its delete cap.
DRY_RUN, MAX_DELETE = "dry_run", "max_delete"


def tighter(cap: int | None, other: int | None) -> int | None:
    """The lower of two delete caps (None: no cap)."""
    return other if cap is None else cap if other is None else min(cap, other)


def definition_of(catalog: Any, name: str) -> Any:
    """The play or tool a run belongs to (names are unique across a plays folder)."""
    found = catalog.plays.get(name) or catalog.tools.get(name)
    if found is None:
        raise ConfigError(
            f"the run belongs to {name!r}, which is no longer in the plays folder; restore the file or "
            "leave the run be"
        )
    return found


class _Run:
    """One run being driven: its definition, history and collaborators."""

    def __init__(self, run: RunRecord, catalog: Any, **deps: Any) -> None:
        self.record = run
        self.catalog = catalog
        self.definition = definition_of(catalog, run.play)
        self.graph = self.definition.graph
        self.history: list[NodeRecord] = list(run.nodes)
        self.ledger: RunLedger = deps["ledger"]
        self.clock: Clock = deps["clock"]
        # Passed on to tool runs this run calls, so a cap or a dry run reaches every nested graph.
        self.deps = {
            **deps,
            "dry_run": bool(deps["dry_run"] or run.context.get(DRY_RUN)),
            "max_delete": tighter(deps["max_delete"], run.context.get(MAX_DELETE)),
        }
        self.executor = NodeExecutor(
            deps["client"],
            deps["write_ledger"],
            deps["evaluator"],
            deps["http"],
            self.deps["dry_run"],
            self.deps["max_delete"],
        )
        # Resolved from the environment for this drive only: visible to expressions as `secrets.*`,
        # scrubbed from everything the ledger stores.
        self.secrets = Secrets.resolve(
            getattr(self.definition, "secrets", {}) or {}, owner=f"{self.definition.kind} {run.play!r}"
        )
        # What is scrubbed: the play's secrets and the caller's known ones (an agent server's API
        # key), the latter never visible to expressions. Too short a value cannot be scrubbed safely.
        known = deps["scrub_values"].items()
        self.scrubbed = Secrets(
            {f"play.{k}": v for k, v in self.secrets.items()}
            | {f"known.{k}": v for k, v in known if len(v) >= MIN_SECRET_LENGTH}
        )

    def context(self) -> dict[str, Any]:
        context = node_context(
            self.graph,
            self.record.context,
            getattr(self.definition, "vars", {}) or {},
            self.history,
            {"id": self.record.id, "play": self.record.play},
        )
        context["secrets"] = self.secrets.context()
        return context

    def record_attempt(self, node_id: str, attempt: int, outcome: NodeOutcome, started: float) -> None:
        record = NodeRecord(
            node_id=node_id,
            attempt=attempt,
            status="succeeded" if outcome.status == "succeeded" else "failed",
            input=scrub(outcome.input, self.scrubbed),
            output=scrub(outcome.output, self.scrubbed),
            error=scrub(outcome.error, self.scrubbed),
            error_class=outcome.error_class,
            retryable=outcome.retryable,
            started_at=started,
            finished_at=self.clock.now(),
        )
        self.ledger.record_node(self.record.id, record)
        self.history.append(record)

    def visit(self, node_id: str, attempt: int) -> int:
        """Which visit of ``node_id`` this attempt belongs to (a loop visits a node more than once);
        attempt 1 starts a new visit, later attempts retry the current one."""
        visits = sum(1 for n in self.history if n.node_id == node_id and n.attempt == 1)
        return visits + 1 if attempt == 1 else max(visits, 1)

    def write_key(self, node_id: str, attempt: int) -> str:
        """The write-ledger batch id, Idempotency-Key and tool child id base of this node visit.

        A run retried from its failed node writes as the run it retries (``writes_as``), with that
        run's history carried over: the re-run node gets the same key, so a create whose answer was
        lost is looked up in the write ledger instead of being sent again."""
        base = str(self.record.context.get("writes_as") or self.record.id)
        visit = self.visit(node_id, attempt)
        return f"{base}:{node_id}" if visit == 1 else f"{base}:{node_id}#{visit}"

    async def execute(self, step: Execute) -> NodeOutcome:
        try:
            return await self._execute(step)
        except LeaseLost:
            raise
        except Exception as exc:  # a bug or bad data in one node fails that node, never the runner
            return NodeOutcome(
                "failed",
                error=f"node {step.node.id!r} raised {type(exc).__name__}: {str(exc)[:500]}",
                error_class=type(exc).__name__,
                retryable=False,
            )

    async def _execute(self, step: Execute) -> NodeOutcome:
        node, context = step.node, self.context()
        key = self.write_key(node.id, step.attempt)
        if node.type in _CONTROL:
            return evaluate_control(node, context, self.deps["evaluator"])
        if node.type == "action":
            return await self.executor.action(node, context, key)
        if node.type == "http":
            return await self.executor.request(node, context, key)
        if node.type == "tool":
            return await self.call_tool(node, context, key, step.attempt)
        return NodeOutcome(
            "failed", error=f"unknown node type {node.type!r}", error_class="ConfigError", retryable=False
        )

    async def call_tool(self, node: Any, context: dict[str, Any], key: str, attempt: int) -> NodeOutcome:
        tool = self.catalog.tools.get(node.tool)
        if tool is None:
            return NodeOutcome(
                "failed", error=f"no tool named {node.tool!r}", error_class="ConfigError", retryable=False
            )
        try:
            inputs = check_inputs(tool, self.deps["evaluator"].evaluate(node.input, context))
        except ConfigError as exc:
            name = "ToolInputError" if isinstance(exc, ToolInputError) else type(exc).__name__
            return NodeOutcome("failed", error=str(exc), error_class=name, retryable=False)
        child_id = self._child_run(tool.name, key.replace(":", "."), inputs, node.id)
        deps = {**self.deps, "max_inline_wait": float("inf")}
        child = await _drive(child_id, self.catalog, deps, None)
        if not child.finished and not self.lease_held():
            raise LeaseLost(self.record.id)  # the child stopped for the same reason: record nothing
        if child.status == "succeeded":
            return NodeOutcome(
                "succeeded", input=inputs, output={"run_id": child_id, "outputs": child.output or {}}
            )
        return NodeOutcome(
            "failed",
            input=inputs,
            output={"run_id": child_id},
            error=f"tool {tool.name!r} (run {child_id}) {child.status}: {child.error}",
            error_class="ToolFailed",
        )

    def _child_run(self, tool: str, base: str, inputs: dict[str, Any], node_id: str) -> str:
        """The tool run this node visit drives: ``{base}.1`` at first; an unfinished or succeeded one is
        finished or reused (a resumed parent); after a failed one, ``{base}.{n+1}`` continues it from its
        failed node under its write keys, so the tool's completed creates are not made again."""
        latest, number = None, 0
        while (found := self.ledger.run(f"{base}.{number + 1}")) is not None:
            latest, number = found, number + 1
        if latest is not None and latest.status != "failed":
            return latest.id
        nodes: list[NodeRecord] = []
        # A secret passed as a tool input is stored scrubbed (the tool sees ***): tools declare their own.
        context: dict[str, Any] = {
            "input": scrub(inputs, self.scrubbed),
            "parent": {"run_id": self.record.id, "node_id": node_id},
        }
        if latest is not None:
            nodes = carried_over(latest.nodes)
            context["writes_as"] = latest.context.get("writes_as") or latest.id
        return self.ledger.create_run(
            play=tool,
            source="tool",
            record_id=self.record.record_id,
            change_seq=self.record.change_seq,
            trigger=None,
            context=context,
            run_id=f"{base}.{number + 1}",
            nodes=nodes,
        )

    def finish(self, step: Finish) -> RunRecord:
        status, error = step.status, step.error
        if status == "succeeded" and getattr(self.definition, "kind", "") == "tool":
            try:
                outputs = evaluate_outputs(self.definition, self.context(), self.deps["evaluator"])
                self.ledger.set_output(self.record.id, scrub(outputs, self.scrubbed))
            except Exception as exc:  # ConfigError, or bad data in an output expression
                status, error = "failed", str(exc)
        self.ledger.set_status(self.record.id, status, error=scrub(error, self.scrubbed))  # type: ignore[arg-type]
        return self._reload()

    def _reload(self) -> RunRecord:
        run = self.ledger.run(self.record.id)
        assert run is not None
        return run

    def lease_held(self) -> bool:
        """Renew the runner's lease before a node runs (so a run longer than the lease keeps it);
        False when it was lost (it expired and another runner took it)."""
        keep_lease = self.deps["keep_lease"]
        return keep_lease is None or bool(keep_lease())

    async def wait(self, step: Wait) -> bool:
        """Sleep through a delay node if it is short; False when the run is left waiting."""
        now = self.clock.now()
        if self.deps["dry_run"]:
            self.record_attempt(
                step.node.id, 1, NodeOutcome("succeeded", output={"planned_delay": step.node.seconds}), now
            )
            return True
        if self.record.wake_at is None:
            self.ledger.set_status(self.record.id, "waiting", wake_at=step.wake_at)
        remaining = step.wake_at - now
        if remaining > self.deps["max_inline_wait"]:
            return False
        if remaining > 0:
            await self.clock.sleep(remaining)
        outcome = NodeOutcome(
            "succeeded", input={"seconds": step.node.seconds}, output={"woke_at": step.wake_at}
        )
        self.record_attempt(step.node.id, 1, outcome, now)
        self.ledger.set_status(self.record.id, "running")
        return True

    async def drive(self, from_node: str | None) -> RunRecord:
        if self.record.finished:
            return self.record
        if self.record.status != "waiting":
            self.ledger.set_status(self.record.id, "running")
        wake_at = self.record.wake_at
        # A run started at --from-node keeps starting there when resumed: its history begins there.
        start = from_node or (self.history[0].node_id if self.history else None)
        while True:
            try:
                step = next_step(self.graph, self.history, now=self.clock.now(), wake_at=wake_at, start=start)
            except HistoryError as exc:
                return self.finish(Finish("failed", str(exc)))
            if isinstance(step, Finish):
                return self.finish(step)
            if isinstance(step, Wait):
                self.record = RunRecord(**{**self.record.__dict__, "wake_at": wake_at})
                if not await self.wait(step):
                    return self._reload()
                wake_at = None
                self.record = RunRecord(**{**self.record.__dict__, "wake_at": None})
                continue
            # The wake-up time belonged to the step the run was waiting on; never to a later delay.
            wake_at = None
            if len(self.history) >= MAX_NODE_ATTEMPTS:
                return self.finish(
                    Finish(
                        "failed",
                        f"the run made {len(self.history)} node attempts (the limit is {MAX_NODE_ATTEMPTS}); "
                        "a loop in the play never exits: give its branch a way out",
                    )
                )
            delay = step.not_before - self.clock.now()
            if delay > self.deps["max_inline_wait"] and not self.deps["dry_run"]:
                # A long retry backoff waits like a long delay: the runner's slot is freed.
                self.ledger.set_status(self.record.id, "waiting", wake_at=step.not_before)
                return self._reload()
            if delay > 0:
                await self.clock.sleep(delay)
            if not self.lease_held():
                return self._reload()  # another runner holds the run now: it drives it from here
            started = self.clock.now()
            try:
                outcome = await self.execute(step)
            except LeaseLost:
                return self._reload()  # the runner that holds the lease now finishes the run
            self.record_attempt(step.node.id, step.attempt, outcome, started)
            # Control nodes never await anything: yield so a loop cannot starve the other runs.
            await asyncio.sleep(0)


async def _drive(run_id: str, catalog: Any, deps: dict[str, Any], from_node: str | None) -> RunRecord:
    run = deps["ledger"].run(run_id)
    if run is None:
        raise ConfigError(f"no run {run_id!r} in the run ledger; `closeflow runs list` shows the runs")
    return await _Run(run, catalog, **deps).drive(from_node)


async def run_to_end(
    run_id: str,
    catalog: Any,
    *,
    ledger: RunLedger,
    client: CloseClient | None,
    write_ledger: Ledger | None,
    clock: Clock,
    dry_run: bool = False,
    http: httpx2.AsyncClient | None = None,
    from_node: str | None = None,
    evaluator: Any = None,
    max_inline_wait: float = MAX_INLINE_WAIT,
    keep_lease: Callable[[], bool] | None = None,
    max_delete: int | None = None,
    scrub_values: Mapping[str, str] | None = None,
) -> RunRecord:
    """Drive run ``run_id`` until it finishes or waits on a long delay; resumes from its history.

    ``dry_run``: action nodes plan (nothing written), HTTP nodes report the request they would send,
    delays do not wait. ``from_node`` starts a fresh run at that node instead of the graph's start.
    ``keep_lease`` (a runner's): renews its lease before each node; False stops driving the run.
    ``max_delete``: deletes are capped at this many records and never forced (an agent's calls);
    ``scrub_values``: known secrets scrubbed from everything stored, besides the play's own. A run
    whose context holds ``dry_run`` or ``max_delete`` (set by its creator) always runs so.
    """
    if evaluator is None:
        from closeflow.plays._expressions import Evaluator

        evaluator = Evaluator()
    deps = {
        "ledger": ledger,
        "client": client,
        "write_ledger": write_ledger,
        "clock": clock,
        "dry_run": dry_run,
        "http": http,
        "evaluator": evaluator,
        "max_inline_wait": max_inline_wait,
        "keep_lease": keep_lease,
        "max_delete": max_delete,
        "scrub_values": dict(scrub_values or {}),
    }
    return await _drive(run_id, catalog, deps, from_node)
