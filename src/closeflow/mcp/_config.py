"""The ``--config`` file: per tool, which inputs the agent fills and which the server fixes.

```yaml
tools:
  upsert_contacts:
    inputs:
      match_property: {default: email}   # fixed and hidden from the agent
      match_value: {default: email}
      arrays: disabled                   # hidden; the tool's default (merge) applies
      records: auto                      # the agent fills it (what every input is unless said)
  delete_leads:
    enabled: false                       # not served at all
```

The same in TOML: ``[tools.upsert_contacts.inputs]`` / ``match_property = {default = "email"}``.
Everything is checked when the server starts, against the tools it would serve: an unknown tool or
input, a fixed value of the wrong type, or a required input disabled is an error naming the file.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from closeflow.actions import parse_spec
from closeflow.close import ConfigError, FilterError, parse_where
from closeflow.mcp._tool import CONTROL_INPUTS, AgentTool, InputSetting, ToolSetting


class ServerConfig:
    """Tool settings by tool name; a tool the file does not mention is enabled with every input ``auto``."""

    def __init__(
        self, tools: Mapping[str, ToolSetting] | None = None, *, source: str = "configuration"
    ) -> None:
        self.tools = dict(tools or {})
        self.source = source

    def setting(self, name: str) -> ToolSetting:
        return self.tools.get(name) or ToolSetting()

    def check(self, tools: Sequence[AgentTool]) -> None:
        """Every named tool and input exists, fixed values fit their input's schema, no required input
        is disabled, a fixed ``where`` parses and the fixed values leave a spec a call can complete;
        ``ConfigError`` lists every problem of every tool."""
        by_name = {tool.name: tool for tool in tools}
        problems: list[str] = []
        for name, setting in self.tools.items():
            tool = by_name.get(name)
            if tool is None:
                problems.append(f"unknown tool {name!r}{_near(name, by_name)}")
                continue
            found = [
                p
                for input_name, chosen in setting.inputs.items()
                for p in _check_input(tool, input_name, chosen)
            ]
            # A tool's spec is checked once its inputs are sound (an unknown input would only repeat).
            problems += found or _check_spec(tool, setting)
        if problems:
            raise ConfigError(f"{self.source}: " + "; ".join(problems))


def _near(word: str, pool: Any) -> str:
    found = difflib.get_close_matches(word, list(pool), n=3, cutoff=0.6)
    return (
        f" (did you mean {' or '.join(repr(f) for f in found)}?)"
        if found
        else f" (known: {', '.join(sorted(pool))})"
    )


def _check_input(tool: AgentTool, name: str, chosen: InputSetting) -> list[str]:
    where = f"tools.{tool.name}.inputs.{name}"
    if name in CONTROL_INPUTS:
        return [f"{where}: {name} belongs to the server's confirmation flow and cannot be configured"]
    if name not in tool.properties:
        return [f"{where}: {tool.name} has no input {name!r}{_near(name, tool.properties)}"]
    if chosen.mode == "disabled" and name in tool.required:
        return [f"{where}: {name} is required, so it cannot be disabled; give it a default value instead"]
    if chosen.mode == "default":
        errors = list(Draft202012Validator(tool.properties[name]).iter_errors(chosen.value))
        if errors:
            return [f"{where}: the default value {chosen.value!r:.80} does not fit: {errors[0].message}"]
    return []


def _check_spec(tool: AgentTool, setting: ToolSetting) -> list[str]:
    """An action tool's fixed values must leave a spec some call can complete: parsed here with
    stand-ins for what the agent still fills (a match rule), so a configuration that makes every call
    fail stops the server at start instead."""
    if tool.kind != "action":
        return []
    fixed = setting.fixed()
    problems = []
    where = fixed.get("where")
    if isinstance(where, str) and where.strip():
        try:
            parse_where(where)
        except FilterError as exc:
            problems.append(f"tools.{tool.name}.inputs.where: {str(exc).splitlines()[0]}")
    data = {k: v for k, v in {**tool.defaults(), **fixed}.items() if k != "records"}
    agent_matches = "match" in tool.properties and "match" not in tool.hidden(setting)
    if agent_matches and not data.get("match") and not data.get("match_property") and not data.get("where"):
        data["match"] = [{"property": "id", "value": "id"}]
    try:
        parse_spec({**data, "action": tool.name})
    except ValidationError as exc:
        reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors()[:3])
        problems.append(f"tools.{tool.name}: with these settings every call would fail: {reasons}")
    return problems


def _input(where: str, raw: Any) -> InputSetting:
    if raw in ("auto", "disabled"):
        return InputSetting(mode=raw)
    if isinstance(raw, Mapping) and set(raw) == {"default"}:
        return InputSetting(mode="default", value=raw["default"])
    raise ConfigError(f"{where}: expected auto, disabled or {{default: <value>}}, got {raw!r:.80}")


def parse_config(data: Any, *, source: str = "configuration") -> ServerConfig:
    """A ``ServerConfig`` from the file's parsed content (``{"tools": {…}}``)."""
    if data is None:
        return ServerConfig(source=source)
    if not isinstance(data, Mapping) or set(data) - {"tools"}:
        raise ConfigError(f"{source}: the file holds one key, tools: {{<tool name>: {{inputs: …}}}}")
    tools: dict[str, ToolSetting] = {}
    for name, raw in (data.get("tools") or {}).items():
        where = f"{source}: tools.{name}"
        if not isinstance(raw, Mapping) or set(raw) - {"enabled", "inputs"}:
            raise ConfigError(f"{where}: expected {{enabled: true|false, inputs: {{…}}}}")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{where}.enabled: expected true or false, got {enabled!r}")
        inputs_raw = raw.get("inputs") or {}
        if not isinstance(inputs_raw, Mapping):
            raise ConfigError(
                f"{where}.inputs: expected a mapping of input name to auto/disabled/{{default: …}}"
            )
        inputs = {str(k): _input(f"{where}.inputs.{k}", v) for k, v in inputs_raw.items()}
        tools[str(name)] = ToolSetting(enabled=enabled, inputs=inputs)
    return ServerConfig(tools, source=source)


def load_config(path: str | Path) -> ServerConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the MCP configuration {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: name the configuration file .yaml, .yml or .toml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    return parse_config(data, source=str(path))
