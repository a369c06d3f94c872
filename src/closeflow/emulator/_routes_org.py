"""Handlers for the organization's people and settings (§4.6): ``/me/``, ``/user/``,
``/organization/{id}/``, ``/status/lead/``, ``/status/opportunity/``, ``/pipeline/``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from closeflow.emulator._errors import ApiError, FieldErrors, field_error, not_found
from closeflow.emulator._listing import page, page_bounds, project, requested_fields
from closeflow.emulator._org import Organization
from closeflow.emulator._requests import context_of, json_body, org_of

STATUS_TYPES = ("active", "won", "lost")


async def me(request: Request) -> JSONResponse:
    org = org_of(request)
    user_id = context_of(request).user_id or org.owner_id
    user = org.users[user_id]
    body = {
        **user,
        "organizations": [{"id": org.id, "name": org.name, "currency": org.currency}],
        "memberships": [_membership(org, user)],
        "email_accounts": [],
        "phone_numbers": [],
    }
    return JSONResponse(project(body, requested_fields(request.query_params)))


async def list_users(request: Request) -> JSONResponse:
    org = org_of(request)
    skip, limit = page_bounds(request.query_params, request.app.state.emulator.config, "user")
    users = list(org.users.values())
    return JSONResponse(page(users, skip, limit, dict, requested_fields(request.query_params)))


async def get_user(request: Request) -> JSONResponse:
    user = org_of(request).users.get(request.path_params["user_id"])
    if user is None:
        raise not_found()
    return JSONResponse(project(user, requested_fields(request.query_params)))


def _membership(org: Organization, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "mem_" + user["id"][len("user_") :],
        "organization_id": org.id,
        "user_id": user["id"],
        "user_email": user["email"],
        "user_first_name": user["first_name"],
        "user_last_name": user["last_name"],
        "user_full_name": org.user_name(user["id"]),
        "role_id": "admin" if user["id"] == org.owner_id else "user",
        "date_created": user["date_created"],
        "date_updated": user["date_updated"],
    }


def organization_body(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "currency": org.currency,
        "memberships": [_membership(org, user) for user in org.users.values()],
        "inactive_memberships": [],
        "lead_statuses": [dict(s) for s in org.lead_statuses],
        "opportunity_statuses": list(org.opportunity_statuses()),
        "pipelines": [dict(p) for p in org.pipelines],
        "date_created": org.date_created,
        "date_updated": org.date_created,
    }


async def get_organization(request: Request) -> JSONResponse:
    org = org_of(request)
    if request.path_params["organization_id"] != org.id:
        raise not_found()
    if request.method == "PUT":
        body = await json_body(request)
        for key in ("name", "currency"):
            if isinstance(body.get(key), str):
                setattr(org, key, body[key])
        if isinstance(body.get("lead_statuses"), list):
            wanted = [s.get("id") if isinstance(s, dict) else s for s in body["lead_statuses"]]
            by_id = {s["id"]: s for s in org.lead_statuses}
            reordered = [by_id.pop(i) for i in wanted if i in by_id]
            org.lead_statuses = reordered + list(by_id.values())
    return JSONResponse(project(organization_body(org), requested_fields(request.query_params)))


# -- lead statuses -------------------------------------------------------------------------------


async def lead_statuses(request: Request) -> JSONResponse:
    org = org_of(request)
    if request.method == "POST":
        label = _label(await json_body(request))
        status = {"id": org.ids.new("stat_"), "label": label, "organization_id": org.id}
        org.lead_statuses.append(status)
        return JSONResponse(status)
    return JSONResponse({"data": [dict(s) for s in org.lead_statuses], "has_more": False})


async def lead_status(request: Request) -> JSONResponse:
    org = org_of(request)
    status = org.find_lead_status(status_id=request.path_params["status_id"])
    if status is None:
        raise not_found()
    if request.method == "DELETE":
        if any(lead["status_id"] == status["id"] for lead in org.leads.values()):
            raise ApiError(400, {"error": "This status is used by leads; move them to another status first."})
        org.lead_statuses.remove(status)
        return JSONResponse({})
    status["label"] = _label(await json_body(request))
    # Leads carry `status_label` denormalised, as Close's responses do.
    for lead in org.leads.values():
        if lead["status_id"] == status["id"]:
            lead["status_label"] = status["label"]
    org.touched()
    return JSONResponse(dict(status))


def _label(body: dict[str, Any]) -> str:
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        raise field_error("label", "This field is required.")
    return label.strip()


# -- opportunity statuses and pipelines ----------------------------------------------------------


async def opportunity_statuses(request: Request) -> JSONResponse:
    org = org_of(request)
    if request.method == "POST":
        body = await json_body(request)
        label = _label(body)
        kind = body.get("type", body.get("status_type", "active"))
        if kind not in STATUS_TYPES:
            raise field_error("type", "Must be one of: active, won, lost.")
        pipeline = _pipeline(
            org, body.get("pipeline_id") or (org.pipelines[0]["id"] if org.pipelines else "")
        )
        status = {"id": org.ids.new("stat_"), "label": label, "type": kind}
        pipeline["statuses"].append(status)
        return JSONResponse({**status, "pipeline_id": pipeline["id"], "organization_id": org.id})
    return JSONResponse({"data": list(org.opportunity_statuses()), "has_more": False})


async def opportunity_status(request: Request) -> JSONResponse:
    org = org_of(request)
    status_id = request.path_params["status_id"]
    for pipeline in org.pipelines:
        for status in pipeline["statuses"]:
            if status["id"] == status_id:
                if request.method == "DELETE":
                    pipeline["statuses"].remove(status)
                    return JSONResponse({})
                status["label"] = _label(await json_body(request))
                return JSONResponse({**status, "pipeline_id": pipeline["id"], "organization_id": org.id})
    raise not_found()


def _pipeline(org: Organization, pipeline_id: str) -> dict[str, Any]:
    for pipeline in org.pipelines:
        if pipeline["id"] == pipeline_id:
            return pipeline
    raise field_error("pipeline_id", "Pipeline does not exist.")


def new_pipeline(
    org: Organization, name: str, statuses: list[dict[str, Any]], user_id: str | None
) -> dict[str, Any]:
    # Pipelines are a newer object: Close gives them naive dates (§2.2) and short ids.
    now = org.now().removesuffix("+00:00")
    return {
        "id": org.ids.new("pipe_"),
        "name": name,
        "organization_id": org.id,
        "statuses": [{"id": org.ids.new("stat_"), "label": s["label"], "type": s["type"]} for s in statuses],
        "created_by": user_id,
        "updated_by": user_id,
        "date_created": now,
        "date_updated": now,
    }


def _pipeline_statuses(body: dict[str, Any]) -> list[dict[str, Any]]:
    statuses = body.get("statuses", [])
    errors = FieldErrors()
    if not isinstance(statuses, list):
        raise field_error("statuses", "Expected a list.")
    for index, status in enumerate(statuses):
        if not isinstance(status, dict) or not isinstance(status.get("label"), str):
            errors.field_errors[f"statuses.{index}.label"] = "This field is required."
        elif status.get("type", "active") not in STATUS_TYPES:
            errors.field_errors[f"statuses.{index}.type"] = "Must be one of: active, won, lost."
    if errors.field_errors:
        raise errors
    return [{"id": s.get("id"), "label": s["label"], "type": s.get("type", "active")} for s in statuses]


async def pipelines(request: Request) -> JSONResponse:
    org = org_of(request)
    if request.method == "POST":
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise field_error("name", "This field is required.")
        pipeline = new_pipeline(org, name, _pipeline_statuses(body), context_of(request).user_id)
        org.pipelines.append(pipeline)
        return JSONResponse(pipeline, status_code=201)
    return JSONResponse({"data": [dict(p) for p in org.pipelines], "has_more": False})


async def pipeline(request: Request) -> Response:
    org = org_of(request)
    found = next((p for p in org.pipelines if p["id"] == request.path_params["pipeline_id"]), None)
    if found is None:
        raise not_found()
    if request.method == "DELETE":
        org.pipelines.remove(found)
        return Response(status_code=204)
    if request.method == "PUT":
        body = await json_body(request)
        if isinstance(body.get("name"), str):
            found["name"] = body["name"]
        if "statuses" in body:
            existing = {s["id"]: s for p in org.pipelines for s in p["statuses"]}
            statuses = []
            for status in _pipeline_statuses(body):
                # Known ids move (or stay); statuses without an id are new.
                kept = existing.get(status["id"]) if status["id"] else None
                statuses.append(
                    kept or {"id": org.ids.new("stat_"), "label": status["label"], "type": status["type"]}
                )
            for other in org.pipelines:
                other["statuses"] = [s for s in other["statuses"] if s not in statuses]
            found["statuses"] = statuses
        found["date_updated"] = org.now().removesuffix("+00:00")
    return JSONResponse(dict(found))
