"""Tools: a graph with typed inputs and outputs, run on demand (a play node, the CLI, Python, agents).

Inputs are checked before anything runs, so a caller's mistake (an agent passing a number for a
lead id) becomes one clear error and no half-done work. Outputs are evaluated when the graph ends
and checked against their declared types, so callers can rely on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from closeflow._clock import Clock
from closeflow.actions import Ledger
from closeflow.close import CloseClient, ConfigError
from closeflow.plays._runs import RunLedger, RunRecord, RunSource
from closeflow.plays._secrets import MIN_SECRET_LENGTH, scrub

# Context keys the engine reads or sets; a caller's extra context may not shadow them.
_ENGINE_KEYS = frozenset({"input", "record", "change", "vars", "trigger", "parent"}) | frozenset(
    {"writes_as", "retry_of", "dry_run", "max_delete"}
)


# What a caller (an agent reading a plan) is shown of a run's nodes; the run ledger keeps them whole.
MAX_NODE_OUTPUT = 4000  # characters of JSON per node output
MAX_NODES_SHOWN = 100  # node attempts per run (a loop may make up to a thousand)
_MAX_TOOL_DEPTH = 3


class ToolInputError(ConfigError):
    """A tool was called with inputs that do not fit its declared ones."""


class ToolOutputError(ConfigError):
    """A tool's graph produced an output that does not fit its declared type."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def fits(declared: str, value: Any) -> bool:
    """JSON Schema's idea of the type: an integer is a number, a boolean is neither."""
    got = _type_name(value)
    return got == declared or (declared == "number" and got == "integer")


def check_inputs(tool: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs with defaults filled in, or ``ToolInputError`` naming every problem."""
    if not isinstance(inputs, Mapping):
        raise ToolInputError(
            f"tool {tool.name!r}: inputs must be an object (JSON {{…}}), got {_type_name(inputs)}"
        )
    problems: list[str] = []
    checked: dict[str, Any] = {}
    for name in inputs:
        if name not in tool.inputs:
            known = ", ".join(sorted(tool.inputs)) or "none"
            problems.append(f"unknown input {name!r} (the tool's inputs: {known})")
    for name, declared in tool.inputs.items():
        if name not in inputs or inputs[name] is None:
            if declared.required and declared.default is None:
                problems.append(f"input {name!r} ({declared.type}) is required")
            elif declared.default is not None:
                checked[name] = declared.default
            continue
        value = inputs[name]
        if not fits(declared.type, value):
            problems.append(f"input {name!r} expects {declared.type}, got {_type_name(value)} {value!r:.60}")
        checked[name] = value
    if problems:
        raise ToolInputError(f"tool {tool.name!r}: " + "; ".join(problems))
    return checked


def evaluate_outputs(tool: Any, context: dict[str, Any], evaluator: Any) -> dict[str, Any]:
    """The tool's declared outputs evaluated over the finished run's context, type-checked."""
    outputs: dict[str, Any] = {}
    for name, declared in tool.outputs.items():
        value = evaluator.evaluate(declared.value, context)
        if value is not None and not fits(declared.type, value):
            raise ToolOutputError(
                f"tool {tool.name!r}: output {name!r} should be {declared.type} but its value is "
                f"{_type_name(value)} {value!r:.60}; fix its `value` expression"
            )
        outputs[name] = value
    return outputs


async def run_tool(
    name: str,
    inputs: dict[str, Any],
    catalog: Any,
    *,
    ledger: RunLedger,
    client: CloseClient | None,
    write_ledger: Ledger | None,
    clock: Clock,
    source: RunSource = "cli",
    dry_run: bool = False,
    max_delete: int | None = None,
    context_extra: Mapping[str, Any] | None = None,
    scrub_values: Mapping[str, str] | None = None,
    http: Any = None,
) -> tuple[RunRecord, dict[str, Any]]:
    """Run tool ``name`` to its end: its run record and its outputs (empty if the run failed).

    Bad inputs raise ``ToolInputError`` before a run is even recorded. ``max_delete`` caps every
    delete the graph makes (``max_affected`` at most this, never forced); ``context_extra`` is kept
    in the run's context (who called, how); ``scrub_values`` are secrets the caller knows of, scrubbed
    from everything stored, inputs included: a tool given one as an input reads ``***``. The dry run
    and the cap are kept in the run's context, so a resumed or retried run keeps them."""
    from closeflow.plays._engine import DRY_RUN, MAX_DELETE, run_to_end
    from closeflow.plays._runner import LEASE_SECONDS, new_owner

    tool = catalog.tools.get(name)
    if tool is None:
        known = ", ".join(sorted(catalog.tools)) or "none"
        raise ConfigError(f"no tool named {name!r} (tools: {known}); `closeflow tools list` shows them")
    checked = check_inputs(tool, inputs)
    extra = dict(context_extra or {})
    clashing = sorted(_ENGINE_KEYS & set(extra))
    if clashing:
        raise ConfigError(f"context_extra may not set {', '.join(clashing)}: the engine owns these keys")
    # Too short a value cannot be scrubbed without mangling ordinary text (see plays._secrets).
    secrets = {k: v for k, v in (scrub_values or {}).items() if len(v) >= MIN_SECRET_LENGTH}
    context: dict[str, Any] = {**scrub(extra, secrets), "input": scrub(checked, secrets)}
    if dry_run:
        context[DRY_RUN] = True
    if max_delete is not None:
        context[MAX_DELETE] = max_delete
    run_id = ledger.create_run(
        play=name, source=source, record_id=None, change_seq=None, trigger=None, context=context
    )
    # Driven under a lease like a runner's run, so a `closeflow run` on the same database, which
    # resumes unfinished runs, leaves this one alone while it is being driven here.
    owner = new_owner()

    def keep_lease() -> bool:
        now = clock.now()
        return ledger.claim(run_id, owner, until=now + LEASE_SECONDS, now=now)

    keep_lease()
    try:
        run = await run_to_end(
            run_id,
            catalog,
            ledger=ledger,
            client=client,
            write_ledger=write_ledger,
            clock=clock,
            dry_run=dry_run,
            max_delete=max_delete,
            scrub_values=secrets,
            keep_lease=keep_lease,
            http=http,
        )
    finally:
        ledger.release(run_id, owner)
    return run, dict(run.output or {})


def node_report(run: RunRecord, ledger: RunLedger, *, depth: int = 0) -> dict[str, Any]:
    """A run's node attempts as a caller reads them: ``{"nodes": [{node_id, status, output, error}]}``.

    A dry run's action nodes hold the planned outcomes and its HTTP nodes the request they would
    send. An output whose JSON is longer than ``MAX_NODE_OUTPUT`` is shown cut, as text, with a
    note; a tool node shows the nodes of the tool run it drove under ``tool_run``."""
    shown: list[dict[str, Any]] = []
    for node in run.nodes[:MAX_NODES_SHOWN]:
        entry: dict[str, Any] = {"node_id": node.node_id, "status": node.status}
        if node.attempt > 1:
            entry["attempt"] = node.attempt
        text = json.dumps(node.output, ensure_ascii=False, default=str)
        if len(text) > MAX_NODE_OUTPUT:
            entry["output"] = text[:MAX_NODE_OUTPUT]
            entry["output_cut"] = (
                f"the output is {len(text)} characters of JSON; the first {MAX_NODE_OUTPUT} are shown "
                f"(closeflow runs show {run.id} shows it whole)"
            )
        else:
            entry["output"] = node.output
        if node.error:
            entry["error"] = node.error
        child = _tool_run_of(node.output, run.id, ledger)
        if child is not None and depth < _MAX_TOOL_DEPTH:
            entry["tool_run"] = {"run_id": child.id, **node_report(child, ledger, depth=depth + 1)}
        shown.append(entry)
    report: dict[str, Any] = {"nodes": shown}
    if len(run.nodes) > MAX_NODES_SHOWN:
        report["nodes_left_out"] = len(run.nodes) - MAX_NODES_SHOWN
    return report


def _tool_run_of(output: Any, parent_id: str, ledger: RunLedger) -> RunRecord | None:
    """The tool run a tool node's output names, if this run drove it."""
    child_id = output.get("run_id") if isinstance(output, dict) else None
    if not isinstance(child_id, str):
        return None
    child = ledger.run(child_id)
    parent = child.context.get("parent") if child is not None else None
    return child if isinstance(parent, dict) and parent.get("run_id") == parent_id else None
