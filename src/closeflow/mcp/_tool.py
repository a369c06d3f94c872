"""What an agent sees of one tool: its name, risk tier, description and inputs, and how its
configuration (``auto`` / ``default`` / ``disabled`` per input) shapes the schema it is shown.

Every tool's inputs are JSON Schema properties; a tool's exposed schema is those properties minus
the ones the configuration fixes or disables, plus the call-control inputs of the server's mode
(``confirmation_token`` when writes are confirmed, ``dry_run`` when they are not). Arguments are
checked against exactly that schema, so what an agent is shown is what it is held to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator

Tier = Literal["read", "write", "destructive"]
TIERS: tuple[Tier, ...] = ("read", "write", "destructive")
Kind = Literal["action", "tool", "data"]

CONFIRMATION_TOKEN = "confirmation_token"
DRY_RUN = "dry_run"
# Inputs the server itself adds or reads: never fixed or disabled by a configuration file.
CONTROL_INPUTS = (CONFIRMATION_TOKEN, DRY_RUN)


class ArgumentError(ValueError):
    """A tool call's arguments do not fit the tool's exposed schema (every problem, one message)."""


@dataclass(frozen=True)
class InputSetting:
    """How one input is filled: by the agent (``auto``), by the server (``default``: ``value``,
    hidden from the agent), or not at all (``disabled``: hidden; the tool's default applies)."""

    mode: Literal["auto", "default", "disabled"] = "auto"
    value: Any = None


@dataclass(frozen=True)
class ToolSetting:
    enabled: bool = True
    inputs: Mapping[str, InputSetting] = field(default_factory=dict)

    def hidden(self) -> set[str]:
        return {name for name, setting in self.inputs.items() if setting.mode != "auto"}

    def fixed(self) -> dict[str, Any]:
        return {name: s.value for name, s in self.inputs.items() if s.mode == "default"}


@dataclass(frozen=True)
class AgentTool:
    """One tool as served: ``properties``/``required``/``defs`` are JSON Schema pieces of its inputs
    before any configuration; ``writes`` says whether calls go through plan → confirm → execute."""

    name: str
    tier: Tier
    kind: Kind
    title: str
    description: str
    properties: Mapping[str, dict[str, Any]]
    required: tuple[str, ...] = ()
    defs: Mapping[str, Any] = field(default_factory=dict)
    # Inputs that only mean something together: configuring one hides them all, so an agent cannot
    # undo a fixed match_property through `match`, or write fields through `constants` (or a
    # contact's `email` / `phone`) when the configuration fixed `mappings`.
    groups: tuple[frozenset[str], ...] = ()

    def hidden(self, setting: ToolSetting) -> set[str]:
        """The inputs an agent is not shown under ``setting``: configured ones and their groups."""
        hidden = setting.hidden()
        for group in self.groups:
            if group & hidden:
                hidden |= group
        return hidden

    @property
    def writes(self) -> bool:
        return self.tier != "read"

    def schema(self, setting: ToolSetting, *, confirm: bool) -> dict[str, Any]:
        """The input schema an agent is shown under ``setting`` and the server's confirmation mode."""
        hidden = self.hidden(setting)
        properties = {k: copy.deepcopy(v) for k, v in self.properties.items() if k not in hidden}
        if self.writes and confirm:
            properties[CONFIRMATION_TOKEN] = {
                "type": "string",
                "description": "Leave out on the first call: nothing is written and the answer holds the "
                "plan and a confirmation_token. To carry out exactly that plan, call again with the same "
                "arguments plus this token. A token works once and expires.",
            }
        elif self.writes:
            properties[DRY_RUN] = {
                "type": "boolean",
                "default": False,
                "description": "true: report the plan (what would be created, changed or deleted) and "
                "write nothing.",
            }
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        required = [name for name in self.required if name in properties]
        if required:
            schema["required"] = required
        if self.defs:
            schema["$defs"] = copy.deepcopy(dict(self.defs))
        return schema

    def check(
        self, arguments: Mapping[str, Any] | None, setting: ToolSetting, *, confirm: bool
    ) -> dict[str, Any]:
        """``arguments`` checked against the exposed schema, with the configuration's fixed values
        merged in; ``ArgumentError`` names every problem (an input the configuration fixed or disabled
        is an unknown input to the agent, so it cannot be overridden)."""
        arguments = dict(arguments or {})
        validator = Draft202012Validator(self.schema(setting, confirm=confirm))
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if problems:
            lines = [_problem(error) for error in problems[:10]]
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise ArgumentError(f"invalid arguments for {self.name}: " + "; ".join(lines) + more)
        return {**arguments, **copy.deepcopy(setting.fixed())}

    def defaults(self) -> dict[str, Any]:
        """The schema defaults a call runs with for the inputs it leaves out (a disabled input too).
        They are passed on explicitly because the agent-facing defaults are not all the specs' own:
        ``limit`` and ``max_affected`` are capped by the server, record keys map to same-named fields."""
        return {
            name: copy.deepcopy(prop["default"])
            for name, prop in self.properties.items()
            if prop.get("default") is not None
        }


def _problem(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    if error.validator == "additionalProperties" and not path:
        return f"{error.message} (this tool's inputs are listed in its schema)"
    return f"{path or 'arguments'}: {error.message}"
