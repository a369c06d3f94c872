"""Tools: a graph with typed inputs and outputs, run on demand (a play node, the CLI, Python, agents).

Inputs are checked before anything runs, so a caller's mistake (an agent passing a number for a
lead id) becomes one clear error and no half-done work. Outputs are evaluated when the graph ends
and checked against their declared types, so callers can rely on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closeflow._clock import Clock
from closeflow.actions import Ledger
from closeflow.close import CloseClient, ConfigError
from closeflow.plays._ledger import RunLedger, RunRecord, RunSource


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
) -> tuple[RunRecord, dict[str, Any]]:
    """Run tool ``name`` to its end: its run record and its outputs (empty if the run failed).

    Bad inputs raise ``ToolInputError`` before a run is even recorded."""
    from closeflow.plays._engine import run_to_end

    tool = catalog.tools.get(name)
    if tool is None:
        known = ", ".join(sorted(catalog.tools)) or "none"
        raise ConfigError(f"no tool named {name!r} (tools: {known}); `closeflow tools list` shows them")
    checked = check_inputs(tool, inputs)
    run_id = ledger.create_run(
        play=name, source=source, record_id=None, change_seq=None, trigger=None, context={"input": checked}
    )
    run = await run_to_end(
        run_id, catalog, ledger=ledger, client=client, write_ledger=write_ledger, clock=clock, dry_run=dry_run
    )
    return run, dict(run.output or {})
