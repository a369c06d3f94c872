"""Per-model SQL views with custom fields by *name* (``leads_view``, …), rebuilt when the
custom-field definitions change.

Close keys custom values as ``custom.cf_<id>`` (§5), which nobody can read in SQL. A view gives
each field a column named after it; the store quotes names and makes duplicates unique. The
definitions come from the ``custom_fields`` model the reference streams keep current; a
fingerprint of every view's columns, saved as the ``views`` stream's state, says when to rebuild.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from closeflow.sync._streams import MODELS
from closeflow.sync.store import Store, ViewColumn

VIEWS_STREAM = "views"

# (view, model, custom-field object type, standard columns beyond the model's promoted ones)
VIEWS: tuple[tuple[str, str, str, tuple[ViewColumn, ...]], ...] = (
    ("leads_view", "leads", "lead", (
        ViewColumn("name", "name", "text"),
        ViewColumn("status_label", "status_label", "text"),
        ViewColumn("description", "description", "text"),
        ViewColumn("url", "url", "text"),
        ViewColumn("contact_ids", "contact_ids", "json"),
        ViewColumn("addresses", "addresses", "json"),
    )),
    ("contacts_view", "contacts", "contact", (
        ViewColumn("name", "name", "text"),
        ViewColumn("title", "title", "text"),
        ViewColumn("emails", "emails", "json"),
        ViewColumn("phones", "phones", "json"),
        ViewColumn("urls", "urls", "json"),
    )),
    ("opportunities_view", "opportunities", "opportunity", (
        ViewColumn("status_label", "status_label", "text"),
        ViewColumn("pipeline_id", "pipeline_id", "text"),
        ViewColumn("value", "value", "number"),
        ViewColumn("value_period", "value_period", "text"),
        ViewColumn("value_currency", "value_currency", "text"),
        ViewColumn("confidence", "confidence", "number"),
        ViewColumn("date_won", "date_won", "date"),
        ViewColumn("user_id", "user_id", "text"),
        ViewColumn("contact_id", "contact_id", "text"),
        ViewColumn("note", "note", "text"),
    )),
    ("activities_view", "activities", "activity", (
        ViewColumn("contact_id", "contact_id", "text"),
        ViewColumn("user_id", "user_id", "text"),
        ViewColumn("user_name", "user_name", "text"),
    )),
)  # fmt: skip

ColumnType = Literal["text", "number", "date", "datetime", "boolean", "json"]
_TYPES: dict[str, ColumnType] = {"number": "number", "date": "date", "datetime": "datetime"}


def _column_type(definition: dict[str, Any]) -> ColumnType:
    if definition.get("accepts_multiple_values"):
        return "json"
    return _TYPES.get(str(definition.get("type")), "text")


def _applies_to(definition: dict[str, Any], object_type: str) -> bool:
    if definition.get("object_type") == object_type:
        return True
    if definition.get("object_type") != "shared":
        return False
    associations = definition.get("associations") or []
    return any(isinstance(a, dict) and a.get("object_type") == object_type for a in associations)


def custom_columns(definitions: Sequence[dict[str, Any]], object_type: str) -> list[ViewColumn]:
    """One column per custom field of ``object_type`` (shared ones included), ordered by name
    then id so the store's de-duplication of equal names is deterministic."""
    fields = sorted(
        (d for d in definitions if _applies_to(d, object_type)),
        key=lambda d: (str(d.get("name")), str(d.get("id"))),
    )
    return [ViewColumn(str(d.get("name") or d["id"]), f"custom.{d['id']}", _column_type(d)) for d in fields]


def planned_views(store: Store) -> dict[str, tuple[str, list[ViewColumn]]]:
    """view name -> (model, columns), from the stored custom-field definitions."""
    definitions = [d for i in list(store.live_ids("custom_fields")) if (d := store.get("custom_fields", i))]
    promoted = {spec.name: set(spec.promoted) for spec in MODELS}
    plans: dict[str, tuple[str, list[ViewColumn]]] = {}
    for view, model, object_type, standard in VIEWS:
        columns = [c for c in standard if c.key not in promoted[model]]
        plans[view] = (model, columns + custom_columns(definitions, object_type))
    return plans


def _fingerprint(plans: dict[str, tuple[str, list[ViewColumn]]]) -> str:
    text = json.dumps({v: [m, [asdict(c) for c in cols]] for v, (m, cols) in plans.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def rebuild_views(store: Store, *, now: datetime, force: bool = False) -> list[str]:
    """Rebuild the views whose columns changed (all of them on first use); returns their names."""
    plans = planned_views(store)
    fingerprint = _fingerprint(plans)
    state = store.state(VIEWS_STREAM) or {}
    if not force and state.get("fingerprint") == fingerprint:
        return []
    for view, (model, columns) in plans.items():
        store.rebuild_view(model, view, columns)
    store.save_state(VIEWS_STREAM, {"fingerprint": fingerprint}, now=now)
    return list(plans)
