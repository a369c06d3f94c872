"""The agent-facing server: which tools are served, how one call runs, and what the run ledger keeps.

A call goes: find the tool → check the arguments against the schema the agent was shown (fixed
inputs merged in) → decide the mode (``read``; for writes ``plan`` or ``execute``, the latter only
with a confirmation token of an earlier plan, or with ``--no-confirm``) → run → record the call in
the run ledger (source ``mcp``: tool, redacted arguments, outcome) → answer. Every failure an agent
can cause or meet comes back as an error *result* the agent can read and correct, never a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mcp_types as types
from mcp.server import Server
from pydantic import ValidationError

from closeflow import __version__
from closeflow.close import CloseError, ConfigError
from closeflow.mcp._calls import PLANNED_IDS, Resources, run_action_tool, run_data_tool, run_play_tool
from closeflow.mcp._catalog import Limits, agent_tools
from closeflow.mcp._config import ServerConfig
from closeflow.mcp._confirm import DEFAULT_TTL, ConfirmationError, Confirmations
from closeflow.mcp._tool import CONFIRMATION_TOKEN, DRY_RUN, TIERS, AgentTool, ArgumentError, Tier
from closeflow.plays import MIN_SECRET_LENGTH, REDACTED, SECRET_NAME, NodeRecord, scrub
from closeflow.sync import StoreError

log = logging.getLogger("closeflow.mcp")
Mode = Literal["read", "plan", "execute"]
# Spec inputs whose names look secret-ish but hold column names, not credentials.
_NOT_SECRET = frozenset({"key"})
INSTRUCTIONS = (
    "closeflow works on one Close CRM organization. Search tools read Close live; list_models, "
    "describe_model and query_sql read the local copy that `closeflow sync` keeps. Tools that write "
    "answer a first call with a plan (what would be created, changed or deleted) and a confirmation "
    "token; nothing is written until the same call is repeated with that token. Show the plan to the "
    "user before confirming when the change matters."
)


@dataclass(frozen=True)
class ServerOptions:
    """``allow``: the tiers served (``read`` by default); ``confirm``: writes need a token from a plan
    first; ``config``: per-tool input settings; ``limits``: caps an agent cannot lift; ``token_ttl``:
    seconds a confirmation token stays valid; ``secrets``: values (the Close API key, the bearer
    token) scrubbed from every answer and everything stored."""

    allow: frozenset[Tier] = frozenset({"read"})
    confirm: bool = True
    config: ServerConfig = field(default_factory=ServerConfig)
    limits: Limits = field(default_factory=Limits)
    token_ttl: float = DEFAULT_TTL
    secrets: Mapping[str, str] = field(default_factory=dict)


def parse_tiers(text: str) -> frozenset[Tier]:
    """``"read,write"`` → the tiers; unknown names are a ``ConfigError``. ``destructive`` implies
    nothing else: each tier is named."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(TIERS))
    if unknown or not names:
        raise ConfigError(f"--allow takes a comma-separated list of {', '.join(TIERS)}; got {text!r}")
    return frozenset(name for name in TIERS if name in names)


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """Arguments as the run ledger keeps them: values under secret-looking keys (token, password,
    api key, authorization…) become ``***``, and any known secret's text is scrubbed anywhere."""

    def walk(item: Any, top: bool) -> Any:
        if isinstance(item, Mapping):
            return {
                key: REDACTED
                if SECRET_NAME.search(str(key)) and not (top and key in _NOT_SECRET)
                else walk(inner, False)
                for key, inner in item.items()
            }
        if isinstance(item, list):
            return [walk(inner, False) for inner in item]
        return item

    return scrub(walk(value, True), secrets)


class AgentServer:
    """The tools served under ``options`` and the calls to them; ``mcp_server()`` speaks MCP."""

    def __init__(self, resources: Resources, options: ServerOptions | None = None) -> None:
        self.resources = resources
        self.options = options or ServerOptions()
        every = agent_tools(self.options.limits, resources.catalog)
        self.options.config.check(every)
        self.tools: dict[str, AgentTool] = {
            tool.name: tool
            for tool in every
            if tool.tier in self.options.allow and self.options.config.setting(tool.name).enabled
        }
        self.confirmations = Confirmations(resources.clock, ttl=self.options.token_ttl)
        # Only values long enough to scrub without mangling ordinary text (see plays._secrets).
        self.secrets = {k: v for k, v in self.options.secrets.items() if len(v) >= MIN_SECRET_LENGTH}

    # -- listing ------------------------------------------------------------------------------

    def listed(self) -> list[types.Tool]:
        return [self._describe(tool) for tool in self.tools.values()]

    def _describe(self, tool: AgentTool) -> types.Tool:
        description = tool.description
        if tool.writes and self.options.confirm:
            description += (
                "\nTwo steps: call without confirmation_token to get the plan and a token (nothing is "
                "written); call again with the same arguments and the token to carry it out."
            )
        return types.Tool(
            name=tool.name,
            title=tool.title,
            description=description,
            input_schema=tool.schema(self.options.config.setting(tool.name), confirm=self.options.confirm),
            annotations=types.ToolAnnotations(
                title=tool.title,
                read_only_hint=not tool.writes,
                destructive_hint=tool.tier == "destructive",
                idempotent_hint=not tool.writes,
                open_world_hint=tool.kind != "data",
            ),
        )

    # -- calls --------------------------------------------------------------------------------

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> tuple[bool, dict[str, Any]]:
        """``(ok, answer)`` for one call; never raises for anything an agent or Close can cause."""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            answer = {"error": f"no tool named {name[:100]!r} on this server (tools: {known})"}
            run_id = uuid.uuid4().hex
            self._record(run_id, name[:100], "unknown", dict(arguments or {}), "read", False, answer)
            return False, {**answer, "run_id": run_id}
        setting = self.options.config.setting(name)
        mode = _intended_mode(tool, arguments or {}, confirm=self.options.confirm)  # what a failure records
        run_id = uuid.uuid4().hex
        checked: dict[str, Any] = dict(arguments or {})
        try:
            checked = tool.check(arguments, setting, confirm=self.options.confirm)
            mode, pinned = self._mode(tool, checked)
            answer = await self._run(tool, checked, mode, run_id, pinned)
            ok = answer.pop("_failed", None) is None
        except (ArgumentError, ConfirmationError, ConfigError, CloseError, StoreError) as exc:
            ok, answer = False, {"error": str(exc)}
        except ValidationError as exc:
            ok, answer = False, {"error": _validation_message(tool.name, exc)}
        except Exception as exc:  # an agent must get an answer; the traceback goes to the log
            log.exception("tool %s failed unexpectedly", name)
            ok, answer = (
                False,
                {"error": f"{name} failed unexpectedly ({type(exc).__name__}); see the server log"},
            )
        answer = scrub(answer, self.secrets)
        if tool.kind != "tool" or "run_id" not in answer:  # a tool that ran recorded its own run
            if CONFIRMATION_TOKEN in (arguments or {}):  # _mode took it out; the record says it came
                checked[CONFIRMATION_TOKEN] = REDACTED
            # Answers keep their keys (an outcome's "key" is not a secret); a pending token is not kept.
            stored = {**answer, CONFIRMATION_TOKEN: REDACTED} if CONFIRMATION_TOKEN in answer else answer
            self._record(run_id, tool.name, tool.tier, checked, mode, ok, stored)
            answer.setdefault("run_id", run_id)
        return ok, answer

    def _mode(self, tool: AgentTool, arguments: dict[str, Any]) -> tuple[Mode, Any]:
        """The call's mode, with the control inputs taken out of ``arguments``, and what a redeemed
        token's plan pinned (a delete's ids)."""
        mode = _intended_mode(tool, arguments, confirm=self.options.confirm)
        arguments.pop(DRY_RUN, None)
        token = arguments.pop(CONFIRMATION_TOKEN, None)
        if token is None:
            return mode, None
        return mode, self.confirmations.redeem(str(token), tool.name, _canonical(tool, arguments))

    async def _run(
        self, tool: AgentTool, arguments: dict[str, Any], mode: Mode, run_id: str, pinned: Any
    ) -> dict[str, Any]:
        plan = mode == "plan"
        # The schema's defaults filled in: what the call runs with and what a token is bound to (the
        # ledger keeps the call as the agent made it).
        filled = _canonical(tool, arguments)
        if tool.kind == "data":
            # In a thread: a query may take up to the store's statement timeout, and other calls go on.
            return await asyncio.to_thread(run_data_tool, tool, filled, self.resources)
        if tool.kind == "tool":
            answer = await run_play_tool(
                tool,
                filled,
                plan=plan,
                resources=self.resources,
                max_delete=self.options.limits.max_affected,
                secrets=self.secrets,
            )
            if answer["status"] == "failed":
                answer["_failed"] = True
        else:
            answer = await run_action_tool(
                tool,
                filled,
                plan=plan,
                batch_id=f"mcp-{run_id}",
                resources=self.resources,
                pinned=pinned,
                keys_as_custom="custom" not in tool.hidden(self.options.config.setting(tool.name)),
                max_changed=self.options.limits.max_records,
            )
            summary = answer.get("summary", {})  # searches have none
            if (
                summary.get("by_status", {}).get("failed")
                and summary["by_status"]["failed"] == summary["processed"]
            ):
                answer["_failed"] = True  # every record failed: the agent must not read it as done
        answer["mode"] = "dry run" if plan else "executed" if tool.writes else "read"
        planned_ids = answer.pop(PLANNED_IDS, None)
        if plan and self.options.confirm and "_failed" not in answer:
            self._offer_token(tool, filled, answer, planned_ids)
        return answer

    def _offer_token(
        self, tool: AgentTool, arguments: dict[str, Any], answer: dict[str, Any], pinned: Any
    ) -> None:
        by_status = answer.get("summary", {}).get("by_status", {})
        if tool.kind == "action" and not by_status.get("planned"):
            answer["next_step"] = "nothing to write: no record would be created, changed or deleted"
            return
        answer["confirmation_token"] = self.confirmations.issue(tool.name, arguments, pinned)
        answer["expires_in_seconds"] = int(self.options.token_ttl)
        failing = (
            f" {by_status['failed']} record(s) would fail (see outcomes) and are not written."
            if by_status.get("failed")
            else ""
        )
        exactly = (
            " A confirmed delete deletes exactly the records planned here." if pinned is not None else ""
        )
        answer["next_step"] = (
            f"nothing was written.{failing} To carry out this plan, call {tool.name} again with the same "
            f"arguments plus confirmation_token (it works once).{exactly}"
        )

    def _record(
        self,
        run_id: str,
        name: str,
        tier: str,
        arguments: dict[str, Any],
        mode: Mode,
        ok: bool,
        answer: dict[str, Any],
    ) -> None:
        """One run per call in the run ledger, source ``mcp``; the stored input is redacted."""
        ledger = self.resources.run_ledger
        stored_input = redact(arguments, self.secrets)
        now = self.resources.clock.now()
        try:
            ledger.create_run(
                play=name,
                source="mcp",
                record_id=None,
                change_seq=None,
                trigger=None,
                context={"input": stored_input, "mode": mode, "tier": tier},
                run_id=run_id,
            )
            ledger.record_node(
                run_id,
                NodeRecord(
                    node_id="call",
                    attempt=1,
                    status="succeeded" if ok else "failed",
                    input=stored_input,
                    output=answer if ok else None,
                    error=None if ok else str(answer.get("error")),
                    started_at=now,
                    finished_at=now,
                ),
            )
            if ok:
                ledger.set_output(run_id, {"mode": mode, **_digest(answer)})
            ledger.set_status(
                run_id, "succeeded" if ok else "failed", error=None if ok else str(answer.get("error"))
            )
        except Exception:  # the answer matters more than its record; the log says what went wrong
            log.exception("could not record the call of %s in the run ledger", name)

    # -- MCP ----------------------------------------------------------------------------------

    def mcp_server(self) -> Server[Any]:
        """An MCP server (the SDK's low-level ``Server``) serving these tools."""

        async def list_tools(
            _ctx: Any, _params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.listed())

        async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            ok, answer = await self.call(params.name, params.arguments)
            text = json.dumps(answer, ensure_ascii=False, default=str)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)],
                structured_content=json.loads(json.dumps(answer, default=str)),
                is_error=not ok,
            )

        return Server(
            "closeflow",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )


def _canonical(tool: AgentTool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments with the tool's defaults filled in: what a call runs with, and what a token is
    bound to (so spelling out a default does not make a confirmation differ from its plan)."""
    return {**tool.defaults(), **arguments}


def _intended_mode(tool: AgentTool, arguments: Mapping[str, Any], *, confirm: bool) -> Mode:
    """What a call asks for: a read, a plan, or (with a token, or without confirmation) an execute."""
    if not tool.writes:
        return "read"
    if confirm:
        return "execute" if arguments.get(CONFIRMATION_TOKEN) is not None else "plan"
    return "plan" if arguments.get(DRY_RUN) else "execute"


def _digest(answer: dict[str, Any]) -> dict[str, Any]:
    """What ``runs list`` / ``runs show`` need of an answer without a page of records."""
    keys = ("summary", "count", "row_count", "status", "outputs", "confirmation_token")
    found = {key: answer[key] for key in keys if key in answer}
    if "confirmation_token" in found:
        found["confirmation_token"] = REDACTED
    return found


def _validation_message(tool: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        loc = [
            str(p)
            for p in error.get("loc", ())
            if str(p) != tool and not str(p).startswith(("function-", "tagged-"))
        ]
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return f"invalid arguments for {tool}: " + "; ".join(parts)
