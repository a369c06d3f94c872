"""Handlers for ``/lead/`` and ``/contact/`` (§4.1, §4.2): list, create, get, update, delete."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from closeflow.emulator._errors import not_found
from closeflow.emulator._legacy_query import parse_legacy_query
from closeflow.emulator._listing import page, page_bounds, project, requested_fields
from closeflow.emulator._org import Organization
from closeflow.emulator._records import (
    create_contact,
    create_lead,
    delete_contact,
    delete_lead,
    render_contact,
    render_lead,
    update_contact,
    update_lead,
)
from closeflow.emulator._requests import context_of, json_body, org_of


async def list_leads(request: Request) -> JSONResponse:
    org = org_of(request)
    params = request.query_params
    skip, limit = page_bounds(params, request.app.state.emulator.config, "lead")
    fields = requested_fields(params)
    query = params.get("query", "").strip()
    ids = _query_ids(org, query) if query else [lead_id for _, lead_id in org.ordered_ids("lead")]
    body = page(ids, skip, limit, lambda lead_id: render_lead(org, org.leads[lead_id]), fields, total=True)
    return JSONResponse(body)


def _query_ids(org: Organization, query: str) -> list[str]:
    # Offset clients page the same query hundreds of times; re-sorting 100k leads per page would be
    # quadratic, so each query's result is cached until the next lead or contact change.
    cached = org.query_cache.get(query)
    if cached is not None and cached[0] == org.version:
        return cached[1]
    compiled = parse_legacy_query(query, org)
    leads = (org.leads[lead_id] for _, lead_id in org.ordered_ids("lead"))
    matching = [lead for lead in leads if compiled.matches(lead)]
    if compiled.sort_key is not None:
        key = compiled.sort_key
        matching.sort(key=lambda lead: (lead[key], lead["id"]), reverse=compiled.descending)
    ids = [lead["id"] for lead in matching]
    if len(org.query_cache) > 16:
        org.query_cache.clear()
    org.query_cache[query] = (org.version, ids)
    return ids


async def create_lead_handler(request: Request) -> JSONResponse:
    org = org_of(request)
    lead = create_lead(org, await json_body(request), context_of(request))
    return _one(request, render_lead(org, lead))


async def get_lead(request: Request) -> JSONResponse:
    org = org_of(request)
    lead = org.leads.get(request.path_params["lead_id"])
    if lead is None:
        raise not_found()
    return _one(request, render_lead(org, lead))


async def update_lead_handler(request: Request) -> JSONResponse:
    org = org_of(request)
    lead = update_lead(org, request.path_params["lead_id"], await json_body(request), context_of(request))
    return _one(request, render_lead(org, lead))


async def delete_lead_handler(request: Request) -> JSONResponse:
    delete_lead(org_of(request), request.path_params["lead_id"], context_of(request))
    return JSONResponse({})


async def list_contacts(request: Request) -> JSONResponse:
    org = org_of(request)
    params = request.query_params
    skip, limit = page_bounds(params, request.app.state.emulator.config, "contact")
    lead_id = params.get("lead_id")
    if lead_id:
        lead = org.leads.get(lead_id)
        ids = list(lead["contact_ids"]) if lead else []
    else:
        ids = [contact_id for _, contact_id in org.ordered_ids("contact")]
    body = page(
        ids, skip, limit, lambda cid: render_contact(org, org.contacts[cid]), requested_fields(params)
    )
    return JSONResponse(body)


async def create_contact_handler(request: Request) -> JSONResponse:
    org = org_of(request)
    contact = create_contact(org, await json_body(request), context_of(request))
    return _one(request, render_contact(org, contact))


async def get_contact(request: Request) -> JSONResponse:
    org = org_of(request)
    contact = org.contacts.get(request.path_params["contact_id"])
    if contact is None:
        raise not_found()
    return _one(request, render_contact(org, contact))


async def update_contact_handler(request: Request) -> JSONResponse:
    org = org_of(request)
    contact = update_contact(
        org, request.path_params["contact_id"], await json_body(request), context_of(request)
    )
    return _one(request, render_contact(org, contact))


async def delete_contact_handler(request: Request) -> JSONResponse:
    delete_contact(org_of(request), request.path_params["contact_id"], context_of(request))
    return JSONResponse({})


def _one(request: Request, record: dict[str, Any]) -> JSONResponse:
    return JSONResponse(project(record, requested_fields(request.query_params)))
