"""Handlers for ``/task/`` (§3.3, §4.4): list with filters and ``_order_by``; CRUD; bulk PUT.

Without ``_type`` the list holds only ``lead`` tasks, as in Close; ``_type=all`` lists every type
and ``_type__in`` a few. ``_order_by`` accepts ``date`` and ``date_created`` (``-`` for
descending), Close's documented choices; anything else is a 400 naming them. Default order
(undocumented): ``date_created`` ascending, ties by id, which keeps offset pages stable while
a ``date_updated__gte`` sync is paging.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse

from closeflow.emulator._collection import text_value
from closeflow.emulator._errors import field_error
from closeflow.emulator._list_filters import (
    Range,
    boolean,
    date_range,
    in_values,
    matching_ids,
    order_by,
    query_key,
    within,
)
from closeflow.emulator._listing import page_bounds, project, requested_fields
from closeflow.emulator._object_types import TASK_TYPES
from closeflow.emulator._org import Organization
from closeflow.emulator._requests import context_of, item_response, json_body, org_of
from closeflow.emulator._tasks import create_task, date_sort_value, delete_task, update_task

ORDERS = {"date": date_sort_value, "date_created": text_value("date_created")}
_BULK_FIELDS = ("assigned_to", "date", "is_complete")


def _types(params: Mapping[str, str]) -> set[str] | None:
    """The task types asked for; ``None`` means every type."""
    raw = in_values(params, "_type")
    if raw is None:
        return {"lead"}
    if "all" in raw:
        return None
    unknown = raw - set(TASK_TYPES)
    if unknown:
        raise field_error(
            "_type", f"Unknown task type {sorted(unknown)[0]!r}: use all or one of {', '.join(TASK_TYPES)}."
        )
    return raw


def _search(org: Organization, params: Mapping[str, str]) -> list[str]:
    name, value, descending = order_by(params, ORDERS, "date_created")
    types = _types(params)
    ids = in_values(params, "id")
    leads = in_values(params, "lead_id")
    assigned = in_values(params, "assigned_to")
    views = in_values(params, "view")
    complete = boolean(params, "is_complete")
    ranges = {f: date_range(params, f) for f in ("date_created", "date_updated")}
    due = date_range(params, "date")
    records = org.tasks.records

    def keep(task_id: str) -> bool:
        task = records[task_id]
        if types is not None and task["_type"] not in types:
            return False
        if (ids is not None and task_id not in ids) or (leads is not None and task["lead_id"] not in leads):
            return False
        if (assigned is not None and task["assigned_to"] not in assigned) or (
            views is not None and task["view"] not in views
        ):
            return False
        if complete is not None and task["is_complete"] != complete:
            return False
        if not all(within(task[f], bounds) for f, bounds in ranges.items()):
            return False
        return within(date_sort_value(task) or None, due)

    if leads is not None and len(leads) == 1:
        order = sorted((value(t), t["id"]) for t in org.tasks.of_lead(next(iter(leads))))
    else:
        order = org.tasks.ordered(name, value)
    return matching_ids(order, Range(), descending=descending, keep=keep)


async def tasks(request: Request) -> JSONResponse:
    org = org_of(request)
    params = request.query_params
    if request.method == "POST":
        task = create_task(org, await json_body(request), context_of(request))
        return JSONResponse(project(task, requested_fields(params)))
    if request.method == "PUT":
        return await _bulk_update(request, org)
    skip, limit = page_bounds(params, request.app.state.emulator.config, "task")
    ids = org.tasks.cached(("list", query_key(params)), lambda: _search(org, params))
    fields = requested_fields(params)
    data = [project(org.tasks.records[i], fields) for i in ids[skip : skip + limit]]
    return JSONResponse({"data": data, "has_more": skip + limit < len(ids)})


async def _bulk_update(request: Request, org: Organization) -> JSONResponse:
    # Bulk PUT /task/?id__in=…: only assigned_to, date and is_complete (§4.4).
    body = await json_body(request)
    extra = sorted(set(body) - set(_BULK_FIELDS))
    if extra:
        raise field_error(extra[0], f"A bulk task update may only change {', '.join(_BULK_FIELDS)}.")
    params = {k: v for k, v in request.query_params.items()}
    if not {"id", "id__in", "lead_id", "assigned_to", "view"} & set(params):
        raise field_error(
            "id__in", "A bulk task update needs a filter (id__in, lead_id, assigned_to or view)."
        )
    params.setdefault("_type", "all")
    ids = _search(org, params)
    context = context_of(request)
    for task_id in ids:
        update_task(org, task_id, body, context)
    return JSONResponse({"updated": len(ids)})


async def task(request: Request) -> JSONResponse:
    org = org_of(request)
    task_id = request.path_params["task_id"]
    return await item_response(
        request,
        lambda: org.tasks.get(task_id),
        lambda body, context: update_task(org, task_id, body, context),
        lambda context: delete_task(org, task_id, context),
    )
