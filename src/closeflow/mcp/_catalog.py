"""The tools closeflow serves to agents, generated from what already exists: the action specs
(the same pydantic models the CLI and play nodes use), the tools of a plays folder, and the data
models of the store. Nothing here defines an action a second time; it only decides what an agent is
shown of each one (which fields, which limits) and at which risk tier.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from closeflow.actions import (
    CONTACT_FIELDS,
    LEAD_FIELDS,
    DeleteContacts,
    DeleteLeads,
    InsertContact,
    InsertLead,
    InsertNote,
    SearchContacts,
    SearchLeads,
    UpdateContacts,
    UpdateLeads,
    UpsertContacts,
    UpsertLeads,
)
from closeflow.close import ConfigError
from closeflow.mcp._tool import AgentTool, Tier
from closeflow.sync import MODEL_NAMES

ACTION_SPECS: dict[str, type[BaseModel]] = {
    spec.model_fields["action"].default: spec
    for spec in (
        SearchLeads,
        SearchContacts,
        InsertLead,
        InsertContact,
        UpdateLeads,
        UpdateContacts,
        UpsertLeads,
        UpsertContacts,
        DeleteLeads,
        DeleteContacts,
        InsertNote,
    )
}
# Spec fields an agent never sets: the action and object type are the tool itself, dry runs are the
# server's confirmation flow, `force` would lift a delete's max_affected guard, and `key` and
# `stop_on_invalid` serve resumable file batches (each MCP call is a batch of its own).
_NEVER_EXPOSED = ("action", "object_type", "dry_run", "force", "key", "stop_on_invalid")
_SEARCHES = ("search_leads", "search_contacts")
_DELETES = ("delete_leads", "delete_contacts")


@dataclass(frozen=True)
class Limits:
    """Caps an agent cannot lift: records per write call, search results, SQL rows, deletes."""

    max_records: int = 100
    max_results: int = 100
    default_results: int = 20
    max_rows: int = 200
    default_rows: int = 50
    max_affected: int = 10

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value < 1:
                raise ConfigError(f"{name} must be 1 or more, not {value}")


def action_tier(action: str) -> Tier:
    if action in _SEARCHES:
        return "read"
    return "destructive" if action in _DELETES else "write"


# For agents, each record's keys may simply be named like the Close fields they fill: these are the
# agent-facing defaults of the specs' "input key" fields (a record without the key leaves the field
# as it is, so the defaults never write anything a record does not carry).
def _identity(fields: Iterable[str]) -> dict[str, str]:
    return {name: name for name in fields if not name.startswith("address.") and name != "status_id"}


_AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "lead": {"mappings": _identity(LEAD_FIELDS)},
    "contact": {
        "mappings": _identity(CONTACT_FIELDS),
        "email": "email",
        "phone": "phone",
        "associated_lead_id": "lead_id",
    },
    "note": {"lead_id": "lead_id", "note": "note", "contact_id": "contact_id"},
}

_RECORD_KEYS = {
    "lead": 'name, description, url, status (the status label, e.g. "Qualified"), addresses (a list of '
    "{address_1, city, state, zipcode, country})",
    "contact": "name, title, email and phone (one value each, added to the contact's emails / phones), "
    "emails, phones and urls (a value, a list, or objects with a type), lead_id (the lead the contact "
    "belongs to; without it Close creates a new lead named after the contact)",
    "note": "lead_id (lead_…, required), note (the plain text, required), contact_id (optional cont_… of "
    "the same lead)",
}
_RECORDS = (
    "The input records, one object per Close record to write (at most {max}). By default a key named "
    "like a Close field fills that field: {keys}. A key left out leaves that field as it is."
)
_CUSTOM_RECORDS = (
    ' Custom fields by name: a key custom."Lead Source" (or custom.Lead Source) fills that field, or map '
    'any key with custom={"Lead Source": "source"}. mappings renames other keys, e.g. '
    'mappings={"name": "full_name"}. Keys nothing reads are reported back, not written.'
)
_EXAMPLES: dict[str, str] = {
    "insert_lead": '{"records": [{"name": "Acme Inc", "url": "https://acme.com", "status": "Potential"}]}',
    "insert_contact": '{"records": [{"lead_id": "lead_…", "name": "Ann Lee", "email": "ann@acme.com"}]}',
    "update_leads": '{"records": [{"id": "lead_…", "status": "Qualified"}], "match_property": "id", '
    '"match_value": "id"}',
    "update_contacts": '{"records": [{"email": "ann@acme.com", "title": "CTO"}], "match_property": "email", '
    '"match_value": "email"}',
    "upsert_leads": '{"records": [{"url": "https://acme.com", "name": "Acme Inc"}], "match_property": "url", '
    '"match_value": "url"}',
    "upsert_contacts": '{"records": [{"email": "ann@acme.com", "name": "Ann Lee", "lead_id": "lead_…"}], '
    '"match_property": "email", "match_value": "email"}',
    "delete_leads": '{"where": "name = \\"Test lead\\""}  or  {"records": [{"id": "lead_…"}], '
    '"match": [{"property": "id", "value": "id"}]}',
    "delete_contacts": '{"records": [{"email": "old@acme.com"}], "match": [{"property": "email", '
    '"value": "email"}]}',
    "insert_note": '{"records": [{"lead_id": "lead_…", "note": "Called, asked for pricing."}]}',
    "search_leads": '{"where": "status = \\"Qualified\\" and custom.\\"Tier\\" = \\"A\\"", "fields": '
    '["display_name", "status_label", "url"], "limit": 10}',
    "search_contacts": '{"where": "email contains \\"@acme.com\\"", "fields": ["name", "title", "emails"]}',
}


def _object(action: str) -> str:
    if action == "insert_note":
        return "note"
    return "contact" if "contact" in action else "lead"


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by its definition (our specs nest one level), so
    an agent reads each input where it is and exposing an input never drags along unused ``$defs``."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]), defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    return schema


def action_tool(action: str, limits: Limits) -> AgentTool:
    spec = ACTION_SPECS[action]
    generated = spec.model_json_schema()
    defs = generated.get("$defs", {})
    properties: dict[str, dict[str, Any]] = {
        name: _inline(schema, defs)
        for name, schema in generated["properties"].items()
        if name not in _NEVER_EXPOSED
    }
    for name, prop in properties.items():  # defaults from factories ([] / {}) are not in pydantic's schema
        model_field = spec.model_fields[name]
        if "default" not in prop and model_field.default_factory is not None:
            prop["default"] = model_field.get_default(call_default_factory=True)
    required = [name for name in generated.get("required", []) if name in properties]
    tier = action_tier(action)
    kind = _object(action)
    for name, default in _AGENT_DEFAULTS.get(kind, {}).items():
        if name in properties:
            properties[name].pop("anyOf", None)  # the default is never null, so neither is the input
            properties[name]["type"] = "object" if isinstance(default, dict) else "string"
            properties[name]["default"] = default
            if name in required:
                required.remove(name)
    if action in _SEARCHES:
        properties["limit"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": limits.max_results,
            "default": min(limits.default_results, limits.max_results),
            "description": f"Return at most this many records (1-{limits.max_results}).",
        }
    else:
        keys = _RECORD_KEYS[kind]
        if kind == "contact" and "associated_lead_id" not in properties:  # updates cannot move a contact
            keys = keys.split(", lead_id (")[0]
        records = _RECORDS.format(max=limits.max_records, keys=keys)
        if kind != "note":
            records += _CUSTOM_RECORDS
        properties = {
            "records": {
                "type": "array",
                "items": {"type": "object"},
                "minItems": 1,
                "maxItems": limits.max_records,
                "description": records,
            },
            **properties,
        }
        if action in _DELETES:
            properties["records"]["description"] = (
                "With match rules: the records whose Close matches are deleted "
                f"(at most {limits.max_records}). Leave out with where."
            )
            properties["max_affected"].update(
                maximum=limits.max_affected,
                default=min(limits.max_affected, int(properties["max_affected"].get("default", 10))),
            )
            properties["max_affected"]["description"] = (
                "Refuse the whole call, deleting nothing, if more records would be deleted than this "
                f"(at most {limits.max_affected} on this server)."
            )
        else:
            required.insert(0, "records")
    description = _describe(action, spec, tier)
    groups = tuple(
        frozenset(group & set(properties))
        for group in (
            {"match", "match_property", "match_value"},
            {"mappings", "custom", "constants", "email", "email_type", "phone", "phone_type"},
        )
        if len(group & set(properties)) > 1
    )
    return AgentTool(
        name=action,
        tier=tier,
        kind="action",
        title=action.replace("_", " ").capitalize(),
        description=description,
        properties=properties,
        required=tuple(required),
        groups=groups,
    )


def _describe(action: str, spec: type[BaseModel], tier: Tier) -> str:
    lines = [(spec.__doc__ or action).strip().splitlines()[0]]
    if action in _SEARCHES:
        lines.append(
            "Reads Close live (not the local store). Returns the matching records with the requested "
            "fields; custom fields come back under their names as custom.<Field Name>. Filter with "
            '`where` in closeflow\'s filter text: field = "value", and/or/not, custom."Field Name".'
        )
    elif action == "insert_note":
        lines.append(
            "One note per record. Each record's outcome says created (with the note's id) or failed and why."
        )
    elif action.startswith("insert"):
        lines.append(
            "Always creates a new record per input record (no lookup of existing ones: use the upsert "
            "tool to avoid duplicates); a create whose answer was lost is never sent twice. Each record's "
            "outcome says created (with the new id) or failed and why."
        )
    elif tier == "write":
        lines.append(
            "Existing records are found with batched searches (match rules); emails, phones, urls and "
            "multi-value custom fields are merged, never wiped, unless arrays=replace; values already "
            "equal are not rewritten. Each record's outcome says created / updated (with a field-level "
            "diff) / unchanged / skipped / failed and why."
        )
    else:
        lines.append(
            "Deletes are permanent in Close (a lead takes its contacts, opportunities, tasks and "
            "activities with it). A delete needs `where` or match rules, never deletes everything, and "
            "refuses to run when more than max_affected records would go. Each record's outcome lists "
            "the deleted ids."
        )
    lines.append(f"Example arguments: {_EXAMPLES[action]}")
    return "\n".join(lines)


def play_tool(tool: Any, tier: Tier) -> AgentTool:
    """A tool of the plays folder: its declared inputs become the schema, its declared outputs the
    answer."""
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for name, declared in tool.inputs.items():
        prop: dict[str, Any] = {"type": declared.type}
        if declared.description:
            prop["description"] = declared.description
        if declared.default is not None:
            prop["default"] = declared.default
        elif declared.required:
            required.append(name)
        properties[name] = prop
    outputs = ", ".join(f"{name} ({out.type})" for name, out in tool.outputs.items()) or "none"
    description = (
        f"{tool.description.strip()}\nA closeflow tool ({tool.path}); returns its outputs: {outputs}."
    )
    return AgentTool(
        name=tool.name,
        tier=tier,
        kind="tool",
        title=tool.name.replace("_", " ").capitalize(),
        description=description,
        properties=properties,
        required=tuple(required),
    )


def graph_tier(tool: Any, catalog: Any, seen: frozenset[str] = frozenset()) -> Tier:
    """The highest tier of anything a tool's graph does: a delete action is destructive; any other
    action that writes, or an HTTP request other than GET, is a write; nested tools count too."""
    rank = {"read": 0, "write": 1, "destructive": 2}
    tier: Tier = "read"
    for node in tool.graph.nodes:
        found: Tier = "read"
        if node.type == "action":
            found = action_tier(node.action)
        elif node.type == "http":
            found = "read" if node.method == "GET" else "write"
        elif node.type == "tool" and node.tool not in seen and node.tool in catalog.tools:
            found = graph_tier(catalog.tools[node.tool], catalog, seen | {tool.name})
        if rank[found] > rank[tier]:
            tier = found
    return tier


def data_tools(limits: Limits) -> list[AgentTool]:
    """Read-only tools over the local store that ``closeflow sync`` keeps."""
    models = ", ".join(MODEL_NAMES)
    return [
        AgentTool(
            name="list_models",
            tier="read",
            kind="data",
            title="List data models",
            description=(
                "The data models in the local store that `closeflow sync` keeps from Close ("
                f"{models}): rows, deleted rows, when each was last synced, and the table or view to "
                "query with query_sql. Start here before writing SQL."
            ),
            properties={},
        ),
        AgentTool(
            name="describe_model",
            tier="read",
            kind="data",
            title="Describe a data model",
            description=(
                "The columns of one model's queryable view or table, with types; custom fields appear "
                'as columns named after the field (e.g. "Lead Source"), with their Close id, type and '
                "choices. JSON columns hold arrays or objects as JSON text."
            ),
            properties={
                "model": {"type": "string", "enum": list(MODEL_NAMES), "description": "The model's name."}
            },
            required=("model",),
        ),
        AgentTool(
            name="query_sql",
            tier="read",
            kind="data",
            title="Query the data models with SQL",
            description=(
                "Run one read-only SQL query (SELECT / WITH) against the local store; writes are refused. "
                "Query the views (leads_view, contacts_view, opportunities_view, activities_view: one "
                'column per custom field, named after it — quote such names, e.g. "Lead Source") or '
                "the model tables (each has the whole Close record as JSON in `data`); the change log is "
                "the change_log table (seq, model, record_id, kind added/updated/removed, changed_fields, "
                "before, after, at; fields by Close key, custom ones as custom.cf_… ids that describe_model "
                'maps to names). SQLite reads a misspelt "Column Name" as text rather than failing: use '
                "the names describe_model gives, and compare numbers unquoted. list_models says which SQL "
                "dialect (SQLite or Postgres) the store "
                "speaks. Rows come back as objects; at "
                f"most {limits.max_rows} per call (use LIMIT/OFFSET to page)."
            ),
            properties={
                "sql": {"type": "string", "minLength": 1, "description": "One SELECT or WITH statement."},
                "max_rows": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": limits.max_rows,
                    "default": min(limits.default_rows, limits.max_rows),
                    "description": f"Return at most this many rows (1-{limits.max_rows}).",
                },
            },
            required=("sql",),
        ),
    ]


def agent_tools(limits: Limits, catalog: Any | None) -> list[AgentTool]:
    """Every tool closeflow can serve, before tiers and configuration pick what an agent sees."""
    tools = [action_tool(action, limits) for action in ACTION_SPECS]
    tools += data_tools(limits)
    taken = {tool.name for tool in tools}
    for tool in catalog.tools.values() if catalog is not None else ():
        if tool.name.replace("-", "_") in taken:  # search-leads beside search_leads would mislead an agent
            raise ConfigError(
                f"tool {tool.name!r} in {tool.path} has the name of a built-in closeflow tool; rename it "
                f"(built-in: {', '.join(sorted(taken))})"
            )
        tools.append(play_tool(tool, graph_tier(tool, catalog)))
    return tools
