"""The interpreter: from a run's recorded history, what happens next. Pure and deterministic.

Like a Temporal workflow, it never does I/O and never reads a clock: the history (the node
attempts in the run ledger) and "now" come in, one decision goes out (run this node, wait until a
time, or finish the run). Replaying the same history always gives the same decision, which is
what lets a restarted runner resume a run at the node after the last completed one, and what
will let a durable backend host this same function later.

The control-flow nodes (branch, switch, filter, set, end) are evaluated here too: they only
evaluate expressions over plain data, so they are as deterministic as the walk itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from closeflow.close import ConfigError
from closeflow.plays._expressions import switch_key
from closeflow.plays._runs import NodeRecord

END = "end"
# Reused outputs (replay) count as completed: the walk goes through them like through successes.
COMPLETED = ("succeeded", "skipped")


class HistoryError(ConfigError):
    """The recorded history does not fit the graph (the play file changed under an unfinished run)."""


@dataclass(frozen=True)
class Execute:
    """Run ``node`` (attempt number ``attempt``, 1-based), not before ``not_before`` (retry backoff)."""

    node: Any
    attempt: int
    not_before: float


@dataclass(frozen=True)
class Wait:
    """A delay node: the run sleeps until ``wake_at``, then the node completes."""

    node: Any
    wake_at: float


@dataclass(frozen=True)
class Finish:
    status: str  # succeeded | failed | filtered
    error: str | None = None


Step = Execute | Wait | Finish


@dataclass(frozen=True)
class NodeOutcome:
    """What an executor reports for one attempt; the engine turns it into a ``NodeRecord``.

    ``error_class`` is the name a retry policy's ``non_retryable`` lists (``ValidationError``,
    ``NotFound``, ``HttpStatus``, …); ``retryable`` False means no policy can help (a template
    error, a 4xx from a webhook) and the node fails at once.
    """

    status: str  # succeeded | failed
    input: Any = None
    output: Any = None
    error: str | None = None
    error_class: str | None = None
    retryable: bool = True


def backoff(policy: Any, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): initial × coefficient^(n-1), capped."""
    delay = float(policy.initial_interval) * float(policy.backoff_coefficient) ** (attempt - 1)
    return float(min(float(policy.max_interval), delay))


def can_retry(node: Any, record: NodeRecord) -> bool:
    policy = node.retry
    return (
        record.retryable
        and record.attempt < policy.max_attempts
        and (record.error_class or "") not in set(policy.non_retryable)
    )


def _default_next(graph: Any, node: Any) -> str:
    if node.next is not None:
        return str(node.next)
    ids = [n.id for n in graph.nodes]
    position = ids.index(node.id)
    return ids[position + 1] if position + 1 < len(ids) else END


def _follow(graph: Any, node: Any, output: Any) -> str | Finish:
    """Where a completed node leads: a node id, ``end``, or the end of the run."""
    if node.type in ("branch", "switch"):
        return str(output["next"])
    if node.type == "filter" and not output.get("passed", False):
        return Finish("filtered")
    if node.type == "end":
        status = str(output.get("status", node.status))
        return Finish(
            status, None if status != "failed" else f"the run reached end node {node.id!r} (status failed)"
        )
    return _default_next(graph, node)


def next_step(
    graph: Any,
    history: Sequence[NodeRecord],
    *,
    now: float,
    wake_at: float | None = None,
    start: str | None = None,
) -> Step:
    """The next decision for a run whose node attempts so far are ``history`` (in order).

    ``wake_at`` is the run's recorded wake-up time if it is waiting on a delay node (so a restarted
    runner resumes the wait instead of starting it over); ``start`` overrides the graph's start node.
    """
    nodes = {n.id: n for n in graph.nodes}
    current = start or graph.start
    last_failure: NodeRecord | None = None
    for record in history:
        if current == END or current not in nodes or record.node_id != current:
            raise HistoryError(
                f"the run's history has node {record.node_id!r} where the graph now leads to {current!r}; "
                "the play file changed since the run started: retry the run to start it over"
            )
        node = nodes[current]
        if record.status in COMPLETED:
            last_failure = None
            target = _follow(graph, node, record.output or {})
            if isinstance(target, Finish):
                return target
            current = target
        elif can_retry(node, record):
            last_failure = record
        elif node.on_failure:
            last_failure = None
            current = str(node.on_failure)
        else:
            tries = f"after {record.attempt} attempt{'s' if record.attempt != 1 else ''}"
            return Finish("failed", f"node {node.id!r} failed {tries}: {record.error}")
    if current == END:
        return Finish("succeeded")
    node = nodes[current]
    if node.type == "delay":
        return Wait(node, wake_at if wake_at is not None else now + float(node.seconds))
    if last_failure is None:
        return Execute(node, 1, now)
    return Execute(
        node, last_failure.attempt + 1, last_failure.finished_at + backoff(node.retry, last_failure.attempt)
    )


def node_context(
    graph: Any,
    base: Mapping[str, Any],
    play_vars: Mapping[str, Any],
    history: Sequence[NodeRecord],
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """The expression context at this point of the run: ``record``, ``change``, ``input`` from the run,
    ``vars`` (play vars, then every completed ``set`` node in order), ``nodes`` (each node's latest
    completed output, or its final error) and ``run``."""
    types = {n.id: n.type for n in graph.nodes}
    variables = dict(play_vars)
    variables.update(base.get("vars") or {})
    outputs: dict[str, Any] = {}
    for record in history:
        if record.status in COMPLETED:
            outputs[record.node_id] = {"output": record.output, "status": "succeeded"}
            if types.get(record.node_id) == "set":
                variables.update((record.output or {}).get("vars", {}))
        else:
            outputs[record.node_id] = {"output": None, "status": "failed", "error": record.error}
    context = {key: value for key, value in base.items() if key in ("record", "change", "input")}
    context.update({"vars": variables, "nodes": outputs, "run": dict(run)})
    return context


def evaluate_control(node: Any, context: dict[str, Any], evaluator: Any) -> NodeOutcome:
    """Run a branch, switch, filter, set or end node (no I/O). Expression errors fail the node for good:
    re-evaluating the same template over the same data cannot succeed."""
    try:
        if node.type == "branch":
            taken = evaluator.truthy(node.if_, context)
            target = node.then if taken else node.else_
            return NodeOutcome("succeeded", output={"value": taken, "next": target})
        if node.type == "switch":
            value = evaluator.evaluate(node.value, context)
            key = switch_key(value)  # YAML keys are text: true → "true", 2.0 → "2", None → "null"
            target = node.cases.get(key, node.default)
            return NodeOutcome("succeeded", input={"value": value}, output={"case": key, "next": target})
        if node.type == "filter":
            return NodeOutcome("succeeded", output={"passed": evaluator.truthy(node.if_, context)})
        if node.type == "set":
            values = {name: evaluator.evaluate(value, context) for name, value in node.vars.items()}
            return NodeOutcome("succeeded", output={"vars": values})
        if node.type == "end":
            return NodeOutcome("succeeded", output={"status": node.status})
    except ConfigError as exc:
        return NodeOutcome("failed", error=str(exc), error_class=type(exc).__name__, retryable=False)
    raise ConfigError(f"node {node.id!r}: type {node.type!r} is not a control node")
