"""Handlers for ``/opportunity/`` (§3.3, §4.3): list with filters, aggregates and ``_order_by``; CRUD.

Default order (Close documents none): ``date_created`` ascending, ties by id. Filters Close lists
but the emulator does not model (``query``, ``lead_saved_search_id``, ``_group_by``) are ignored,
as Close ignores unknown parameters. Aggregates cover every match, not just the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from closeflow.emulator._collection import number_value, text_value
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
from closeflow.emulator._opportunities import (
    VALUE_PERIODS,
    create_opportunity,
    delete_opportunity,
    update_opportunity,
)
from closeflow.emulator._org import Organization
from closeflow.emulator._requests import context_of, item_response, json_body, org_of

ORDERS = {
    "date_created": text_value("date_created"),
    "date_updated": text_value("date_updated"),
    "date_won": text_value("date_won"),
    "user_name": text_value("user_name"),
    "confidence": number_value("confidence"),
    "value": number_value("value"),
    "annualized_value": number_value("annualized_value"),
    "annualized_expected_value": number_value("annualized_expected_value"),
}
_SETS = {
    "user_id": "user_id",
    "status_id": "status_id",
    "status_type": "status_type",
    "status_label": "status_label",
    "status": "status_label",
    "value_period": "value_period",
    "lead_id": "lead_id",
}


def _search(org: Organization, params: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    name, value, descending = order_by(params, ORDERS, "date_created")
    sets = {field: in_values(params, param) for param, field in _SETS.items()}
    wanted = {field: values for field, values in sets.items() if values is not None}
    stalled = boolean(params, "is_stalled")
    ranges = {field: date_range(params, field) for field in ("date_created", "date_updated")}
    won = date_range(params, "date_won", form="date")
    records = org.opportunities.records

    def keep(opportunity_id: str) -> bool:
        record = records[opportunity_id]
        if any(record.get(field) not in values for field, values in wanted.items()):
            return False
        if stalled is not None and record["is_stalled"] != stalled:
            return False
        if not all(within(record[field], bounds) for field, bounds in ranges.items()):
            return False
        return within(record["date_won"], won)

    lead_ids = wanted.get("lead_id")
    if lead_ids is not None and len(lead_ids) == 1:
        # One lead's opportunities: sort the few instead of walking the whole order.
        few = [(value(r), r["id"]) for r in org.opportunities.of_lead(next(iter(lead_ids)))]
        order = sorted(few)
    else:
        order = org.opportunities.ordered(name, value)
    ids = matching_ids(order, Range(), descending=descending, keep=keep)
    return ids, _aggregates([records[i] for i in ids])


def _aggregates(matches: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"total_results": len(matches)}
    counts = dict.fromkeys(VALUE_PERIODS, 0)
    totals = dict.fromkeys(VALUE_PERIODS, 0)
    expected = dict.fromkeys(VALUE_PERIODS, 0)
    annualized = expected_annualized = 0
    for record in matches:
        period = record["value_period"]
        counts[period] += 1
        totals[period] += record["value"] or 0
        expected[period] += record["expected_value"] or 0
        annualized += record["annualized_value"] or 0
        expected_annualized += record["annualized_expected_value"] or 0
    out["count_by_value_period"] = counts
    for period in VALUE_PERIODS:
        out[f"total_value_{period}"] = totals[period]
        out[f"expected_value_{period}"] = expected[period]
    out["total_value_annualized"] = annualized
    out["expected_value_annualized"] = expected_annualized
    return out


async def list_opportunities(request: Request) -> JSONResponse:
    org = org_of(request)
    params = request.query_params
    skip, limit = page_bounds(params, request.app.state.emulator.config, "opportunity")
    ids, aggregates = org.opportunities.cached(("list", query_key(params)), lambda: _search(org, params))
    fields = requested_fields(params)
    records = org.opportunities.records
    body: dict[str, Any] = {
        "data": [project(records[i], fields) for i in ids[skip : skip + limit]],
        "has_more": skip + limit < len(ids),
    }
    body.update(aggregates)
    return JSONResponse(body)


async def create_opportunity_handler(request: Request) -> JSONResponse:
    record = create_opportunity(org_of(request), await json_body(request), context_of(request))
    return JSONResponse(project(record, requested_fields(request.query_params)))


async def opportunity(request: Request) -> JSONResponse:
    org = org_of(request)
    opportunity_id = request.path_params["opportunity_id"]
    return await item_response(
        request,
        lambda: org.opportunities.get(opportunity_id),
        lambda body, context: update_opportunity(org, opportunity_id, body, context),
        lambda context: delete_opportunity(org, opportunity_id, context),
    )
