"""Handlers for ``/activity/`` and ``/activity/<type>/`` (§3.3, §4.0, §4.5).

Lists are newest first by ``date_created`` (ties by id, descending) unless ``_order_by`` says
otherwise (``date_created``, ``activity_at``, ``-`` for descending). Filters: ``lead_id`` (a comma
list too), ``lead_id__in``, ``contact_id[__in]``, ``user_id[__in]``, ``id__in``,
``date_created__gt|gte|lt|lte``, ``activity_at__gt|gte|lt|lte``. Activities have no
``date_updated`` filter in Close; the emulator ignores ``date_updated__*`` like any unknown
parameter, so a client that relies on it silently gets everything — as it would from Close.
On ``/activity/`` the §3.3 restrictions are enforced with a 400: ``_type``, ``user_id`` and
``contact_id`` filters and ``activity_at`` ordering need a single ``lead_id``; ``activity_at``
filters need ``activity_at`` ordering. Routes per type come from ``ACTIVITY_TYPES``: a type the
API cannot create, edit or delete simply has no such method (405).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from closeflow.emulator._activities import create_activity, delete_activity, update_activity
from closeflow.emulator._collection import text_value
from closeflow.emulator._errors import field_error
from closeflow.emulator._list_filters import Range, date_range, in_values, order_by, select, within
from closeflow.emulator._listing import page_bounds, project, requested_fields
from closeflow.emulator._object_types import ACTIVITY_BY_NAME, ACTIVITY_BY_PATH, ACTIVITY_TYPES, ActivityType
from closeflow.emulator._org import Organization
from closeflow.emulator._requests import context_of, item_response, json_body, org_of

ORDERS = {"date_created": text_value("date_created"), "activity_at": text_value("activity_at")}
_NAMES = {**{k.name.lower(): k.name for k in ACTIVITY_TYPES}, **{k.path: k.name for k in ACTIVITY_TYPES}}


def _type_of(record: dict[str, Any]) -> str:
    return str(record["_type"])


def _type_names(params: Mapping[str, str]) -> set[str] | None:
    raw = in_values(params, "_type")
    if raw is None:
        return None
    names = set()
    for value in raw:
        name = value if value in ACTIVITY_BY_NAME else _NAMES.get(value.lower())
        if name is None:
            allowed = ", ".join(k.name for k in ACTIVITY_TYPES)
            raise field_error("_type", f"Unknown activity type {value!r}: use one of {allowed}.")
        names.add(name)
    return names


def _check_restrictions(params: Mapping[str, str], leads: set[str] | None, order_name: str) -> None:
    single_lead = leads is not None and len(leads) == 1
    for name in ("_type", "user_id", "contact_id"):
        if (params.get(name) or params.get(f"{name}__in")) and not single_lead:
            raise field_error(name, f"Filtering /activity/ by {name} needs a single lead_id.")
    if order_name == "activity_at" and not single_lead:
        raise field_error("_order_by", "Ordering /activity/ by activity_at needs a single lead_id.")
    if (
        any(params.get(f"activity_at__{op}") for op in ("gt", "gte", "lt", "lte"))
        and order_name != "activity_at"
    ):
        raise field_error("activity_at", "activity_at filters need _order_by=activity_at or -activity_at.")


def list_activities(
    org: Organization, params: Mapping[str, str], skip: int, limit: int, kind: ActivityType | None
) -> dict[str, Any]:
    name, value, descending = order_by(params, ORDERS, "-date_created")
    leads = in_values(params, "lead_id")
    if kind is None:
        _check_restrictions(params, leads, name)
        types = _type_names(params)
    else:
        types = {kind.name}
    contacts, users, ids = (
        in_values(params, "contact_id"),
        in_values(params, "user_id"),
        in_values(params, "id"),
    )
    other = "activity_at" if name == "date_created" else "date_created"
    bounds, other_bounds = date_range(params, name), date_range(params, other)
    records = org.activities.records
    if leads is not None and len(leads) == 1:
        chosen = [
            r for r in org.activities.of_lead(next(iter(leads))) if types is None or r["_type"] in types
        ]
        order = sorted((value(r), r["id"]) for r in chosen)
    elif types is not None and len(types) == 1:
        order = org.activities.ordered(name, value, group=next(iter(types)), group_of=_type_of)
    else:
        order = org.activities.ordered(name, value)
    checks: list[Callable[[dict[str, Any]], bool]] = []
    if types is not None and len(types) > 1:
        checks.append(lambda r: r["_type"] in types)
    if leads is not None and len(leads) > 1:
        checks.append(lambda r: r["lead_id"] in leads)
    if contacts is not None:
        checks.append(lambda r: r["contact_id"] in contacts)
    if users is not None:
        checks.append(lambda r: r["user_id"] in users)
    if ids is not None:
        checks.append(lambda r: r["id"] in ids)
    if other_bounds != Range():
        checks.append(lambda r: within(r[other], other_bounds))
    keep: Callable[[str], bool] | None = None
    if checks:

        def keep(activity_id: str) -> bool:
            record = records[activity_id]
            return all(check(record) for check in checks)

    page_ids, has_more, _ = select(order, bounds, descending=descending, keep=keep, skip=skip, limit=limit)
    fields = requested_fields(params)
    return {"data": [project(records[i], fields) for i in page_ids], "has_more": has_more}


async def all_activities(request: Request) -> JSONResponse:
    params = request.query_params
    skip, limit = page_bounds(params, request.app.state.emulator.config, "activity")
    return JSONResponse(list_activities(org_of(request), params, skip, limit, None))


def activity_routes(base: str) -> list[BaseRoute]:
    """One list route and one item route per activity type, with the methods Close allows."""
    routes: list[BaseRoute] = [Route(base + "/activity/", all_activities, methods=["GET"])]
    for kind in ACTIVITY_TYPES:
        collection_methods = ["GET"] + (["POST"] if kind.creatable else [])
        item_methods = ["GET"] + (["PUT"] if kind.editable else []) + (["DELETE"] if kind.deletable else [])
        routes.append(
            Route(f"{base}/activity/{kind.path}/", _collection_handler(kind), methods=collection_methods)
        )
        routes.append(
            Route(f"{base}/activity/{kind.path}/{{activity_id}}/", _item_handler(kind), methods=item_methods)
        )
    return routes


def _collection_handler(kind: ActivityType) -> Callable[[Request], Any]:
    async def handler(request: Request) -> JSONResponse:
        org = org_of(request)
        params = request.query_params
        if request.method == "POST":
            record = create_activity(org, kind, await json_body(request), context_of(request))
            return JSONResponse(project(record, requested_fields(params)))
        skip, limit = page_bounds(params, request.app.state.emulator.config, f"activity.{kind.path}")
        return JSONResponse(list_activities(org, params, skip, limit, kind))

    return handler


def _item_handler(kind: ActivityType) -> Callable[[Request], Any]:
    async def handler(request: Request) -> JSONResponse:
        org = org_of(request)
        activity_id = request.path_params["activity_id"]

        def found() -> dict[str, Any] | None:
            record = org.activities.get(activity_id)
            return record if record is not None and record["_type"] == kind.name else None

        return await item_response(
            request,
            found,
            lambda body, context: update_activity(org, kind, activity_id, body, context),
            lambda context: delete_activity(org, kind, activity_id, context),
        )

    return handler


__all__ = ["ACTIVITY_BY_PATH", "activity_routes", "list_activities"]
