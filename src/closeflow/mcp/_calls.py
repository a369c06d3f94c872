"""What a tool call does, per kind of tool: an action (search, or a write planned or executed), a
tool of the plays folder, or a read of the local store. Each returns plain JSON-ready data."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from closeflow._clock import Clock
from closeflow.actions import (
    DeleteRefused,
    Ledger,
    Outcome,
    Summary,
    custom_field_name,
    execute,
    input_keys,
    parse_spec,
    run_action,
    search,
)
from closeflow.close import CloseClient, ConfigError
from closeflow.mcp._tool import AgentTool
from closeflow.plays import RunLedger, node_report, run_tool
from closeflow.sync import MODELS, VIEWS, Store, open_store, planned_views
from closeflow.sync.store import LEDGER_TABLES, json_keys
from closeflow.sync.store._views import view_sql

_VIEW_OF = {model: view for view, model, _object, _columns in VIEWS}
_PROMOTED = {spec.name: spec.promoted for spec in MODELS}
# Outcomes shown per call: an agent needs the failures and a sample, not a page per record.
MAX_OUTCOMES = 100
MAX_CELL_CHARS = 10_000  # one SQL cell in an answer
MAX_ANSWER_CHARS = 1_000_000  # all rows of one query_sql answer


@dataclass
class Resources:
    """What calls need: a Close client, the write ledger (creates at most once), the run ledger,
    the plays catalog (or None) and where the local store is (opened per call: the server is long-
    lived and the store may not exist until the first ``closeflow sync``)."""

    client: CloseClient
    write_ledger: Ledger
    run_ledger: RunLedger
    clock: Clock
    catalog: Any | None = None
    store_target: str | None = None

    def store(self) -> Store:
        return open_store(self.store_target, create=False)


def _outcomes(outcomes: list[Outcome], summary: Summary, ignored: list[str]) -> dict[str, Any]:
    shown = [o for o in outcomes if o.status == "failed"] + [o for o in outcomes if o.status != "failed"]
    answer: dict[str, Any] = {
        "summary": summary.to_dict(),
        "outcomes": [o.to_dict() for o in shown[:MAX_OUTCOMES]],  # failures first; `row` is the position
    }
    if len(shown) > MAX_OUTCOMES:
        answer["outcomes_left_out"] = len(shown) - MAX_OUTCOMES
    if ignored:
        answer["ignored_record_keys"] = (
            f"{', '.join(ignored)}: no input of this call reads these keys, so they were not written. "
            'Custom fields: name the key custom."Field Name", or map it with custom={"Field Name": "key"}; '
            'other keys: mappings={"<Close field>": "key"}.'
        )
    return answer


async def run_action_tool(
    tool: AgentTool,
    arguments: dict[str, Any],
    *,
    plan: bool,
    batch_id: str,
    resources: Resources,
    pinned: list[str] | None = None,
    keys_as_custom: bool = True,
    max_changed: int | None = None,
) -> dict[str, Any]:
    """A search's records, or a write's outcomes (``plan``: nothing is written). ``pinned``: the ids
    a confirmed delete plan showed; exactly those are deleted, whatever matches by now.
    ``keys_as_custom``: record keys written custom."Field Name" fill that field (off when the
    configuration fixed which fields a call writes). ``max_changed``: a plan that would change more
    Close records than this (``on_many=update_all`` can turn one input record into many) is refused."""
    data = {k: v for k, v in arguments.items() if k != "records"}
    if tool.tier == "read":
        limit = int(data["limit"])  # the schema's default fills it
        spec = parse_spec({**data, "action": tool.name, "limit": limit + 1})  # one more tells "there is more"
        found = [record async for record in search(resources.client, spec)]
        answer: dict[str, Any] = {"count": min(len(found), limit), "records": found[:limit]}
        if len(found) > limit:
            answer["more"] = f"more records match than limit={limit}: narrow where, or raise limit"
        return answer
    records = [dict(record) for record in arguments.get("records") or []]
    if keys_as_custom and tool.name != "insert_note" and not tool.name.startswith("delete"):
        data["custom"] = _custom_keys(records, dict(data.get("custom") or {}))
    if pinned is not None:
        data = {k: v for k, v in data.items() if k not in ("where", "match")}
        data["match"] = [{"property": "id", "value": "id"}]
        records = [{"id": record_id} for record_id in pinned]
    spec = parse_spec({**data, "action": tool.name, "dry_run": plan})
    ignored = _ignored_keys(spec, records)
    ledger = None if plan else resources.write_ledger
    if tool.name == "insert_note":
        summary = Summary()
        outcomes = []
        for row, record in enumerate(records, start=1):
            outcome = await execute(resources.client, spec, record, ledger=ledger, batch_id=batch_id)
            outcome.row = row
            summary.add(outcome)
            outcomes.append(outcome)
        return _outcomes(outcomes, summary, ignored)
    if tool.name.startswith("delete") and spec.where is None and not records:
        raise ConfigError("a delete with match rules needs records: the values to match on")
    if tool.name.startswith("delete") and spec.where is not None and records:
        raise ConfigError("a delete by where takes no records; leave records out")
    if not plan and max_changed is not None and getattr(spec, "on_many", None) == "update_all":
        # One input record may match many: check the count on a plan first, as Close is now.
        dry = parse_spec({**data, "action": tool.name, "dry_run": True})
        planned = await run_action(resources.client, dry, records, batch_id=batch_id).collect()
        _check_changed(spec, planned, max_changed)
    run = run_action(
        resources.client,
        spec,
        records if records or spec.where is None else None,
        batch_id=batch_id,
        ledger=ledger,
    )
    try:
        outcomes = await run.collect()
    except DeleteRefused as exc:  # its own advice ("set force") is not open to an agent
        raise ConfigError(_over_max(spec, exc.count)) from None
    answer = _outcomes(outcomes, run.summary, ignored)
    if plan and max_changed is not None:
        _check_changed(spec, outcomes, max_changed)
    if plan and tool.tier == "destructive":
        ids = sorted({i for o in outcomes if o.status == "planned" and o.plan == "delete" for i in o.ids})
        # A dry run reports the deletes without refusing; confirming it could never succeed, so the
        # agent gets the refusal now and no token.
        if len(ids) > spec.max_affected:
            raise ConfigError(_over_max(spec, len(ids)))
        answer[PLANNED_IDS] = ids
    return answer


PLANNED_IDS = "_planned_ids"  # the server keeps these with the token; never shown to the agent


def _custom_keys(records: list[dict[str, Any]], custom: dict[str, str]) -> dict[str, str]:
    """``custom``, plus each record key written as a custom field (``custom."Lead Source"`` or
    ``custom.Lead Source``) mapped to that field, as agents naturally write them."""
    for record in records:
        for key in record:
            name = custom_field_name(str(key))
            if name is not None and name not in custom:
                custom[name] = str(key)
    return custom


def _ignored_keys(spec: Any, records: list[dict[str, Any]]) -> list[str]:
    """Record keys the spec reads from nowhere (an agent's `Industry` meant as a custom field)."""
    used = {key for key, _field, _fills in input_keys(spec)}
    return sorted({str(key) for record in records for key in record} - used)


def _check_changed(spec: Any, planned: list[Outcome], max_changed: int) -> None:
    changed = {i for o in planned if o.status == "planned" and o.plan == "update" for i in o.ids}
    if len(changed) > max_changed:
        raise ConfigError(
            f"refusing: this call would change {len(changed)} {spec.object_type}s, more than the "
            f"{max_changed} this server allows per call; nothing was written. Narrow the match "
            "(on_many=fail or first) or split the records"
        )


def _over_max(spec: Any, count: int) -> str:
    return (
        f"refusing to delete {count} {spec.object_type}s: more than max_affected={spec.max_affected}. "
        "Nothing was deleted; narrow where or the records, or raise max_affected within this server's limit."
    )


async def run_play_tool(
    tool: AgentTool,
    arguments: dict[str, Any],
    *,
    plan: bool,
    resources: Resources,
    max_delete: int | None = None,
    secrets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run a tool of the plays folder (recorded in the run ledger by the engine, source ``mcp``, with
    the call's mode and tier). ``max_delete``: the server's cap on deletes, which a play's own
    ``max_affected`` or ``force`` cannot lift; ``secrets``: scrubbed from all the run stores. A plan
    shows each node's record: what the actions would write, the requests HTTP nodes would send."""
    mode = "plan" if plan else "execute" if tool.writes else "read"
    run, outputs = await run_tool(
        tool.name,
        arguments,
        resources.catalog,
        ledger=resources.run_ledger,
        client=resources.client,
        write_ledger=None if plan else resources.write_ledger,
        clock=resources.clock,
        source="mcp",
        dry_run=plan,
        max_delete=max_delete,
        context_extra={"mcp": {"mode": mode, "tier": tool.tier}},
        scrub_values=secrets,
    )
    answer: dict[str, Any] = {"run_id": run.id, "status": run.status, "outputs": outputs}
    if run.error:
        answer["error"] = run.error
    if plan:
        answer.update(node_report(run, resources.run_ledger))
    return answer


def run_data_tool(tool: AgentTool, arguments: dict[str, Any], resources: Resources) -> dict[str, Any]:
    store = resources.store()
    try:
        if tool.name == "list_models":
            return _list_models(store)
        if tool.name == "describe_model":
            return _describe_model(store, str(arguments["model"]))
        if tool.name == "query_sql":
            return _query(store, str(arguments["sql"]), int(arguments["max_rows"]))
        raise ConfigError(f"no data tool named {tool.name!r}")
    finally:
        store.close()


def _list_models(store: Store) -> dict[str, Any]:
    models = [
        {
            "model": info.name,
            "rows": info.rows,
            "deleted_rows": info.deleted,
            "last_sync": info.last_sync,
            "query": _VIEW_OF.get(info.name, info.name),
        }
        for info in store.models()
    ]
    json_hint = "json_extract(data, '$.field')" if store.dialect == "sqlite" else "data->>'field'"
    return {
        "dialect": store.dialect,
        "models": models,
        "change_log_last_seq": store.last_seq(),
        "notes": "Views (…_view) hold live records only, one column per custom field. change_log holds "
        "every added / updated / removed record by seq. Tables hold every "
        f"record with its whole Close JSON in `data` (read a field with {json_hint}) and deleted_at "
        "set on records deleted in Close.",
    }


def _describe_model(store: Store, model: str) -> dict[str, Any]:
    if model not in {info.name for info in store.models()}:
        raise ConfigError(f"model {model!r} is not in this store yet: run closeflow sync {model}")
    view = _VIEW_OF.get(model)
    if view is None:
        names, _rows = store.query(f"SELECT * FROM {model} LIMIT 0")  # noqa: S608 (model is from the enum)
        return {"model": model, "query": model, "columns": [{"column": name} for name in names]}
    _model, planned = planned_views(store)[view]
    _statements, names = view_sql(store.dialect, model, view, _PROMOTED[model], planned)
    fixed = len(names) - len(planned)
    definitions = _definitions(store)
    columns: list[dict[str, Any]] = [{"column": name, "from": name} for name in names[:fixed]]
    for name, column in zip(names[fixed:], planned, strict=True):
        entry: dict[str, Any] = {"column": name, "type": column.type, "from": column.key}
        definition = definitions.get(column.key.removeprefix("custom."))
        if definition is not None:
            entry.update(custom_field=definition.get("name"), field_type=definition.get("type"))
            if definition.get("choices"):
                entry["choices"] = definition["choices"]
        columns.append(entry)
    return {"model": model, "query": view, "columns": columns}


def _definitions(store: Store) -> dict[str, dict[str, Any]]:
    found = (store.get("custom_fields", i) for i in list(store.live_ids("custom_fields")))
    return {str(d["id"]): d for d in found if d}


def _query(store: Store, sql: str, max_rows: int) -> dict[str, Any]:
    # An agent reads the data models, not the run and write ledgers that may share the database.
    columns, rows = store.query(sql, max_rows=max_rows + 1, hidden=LEDGER_TABLES)
    keys = json_keys(columns)
    kept: list[dict[str, Any]] = []
    size = 0
    for row in rows[:max_rows]:
        record = {key: _json_value(value) for key, value in zip(keys, row, strict=True)}
        size += len(json.dumps(record, ensure_ascii=False))
        if kept and size > MAX_ANSWER_CHARS:
            break
        kept.append(record)
    answer: dict[str, Any] = {"columns": columns, "rows": kept, "row_count": len(kept)}
    if len(kept) < min(len(rows), max_rows):
        answer["truncated"] = (
            f"the rows passed {MAX_ANSWER_CHARS:,} characters after {len(kept)}; select fewer or "
            "narrower columns, or page with LIMIT/OFFSET"
        )
    elif len(rows) > max_rows:
        answer["truncated"] = f"more rows than max_rows={max_rows}; page with LIMIT/OFFSET"
    return answer


def _json_value(value: Any) -> Any:
    """A cell as JSON can carry it: no NaN/Infinity (not JSON), bytes as hex, long text cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        value = "x'" + bytes(value).hex() + "'"
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + f"… ({len(value):,} characters; use substr() for the rest)"
    return value
