"""Handlers for custom-field definitions (§5): ``/custom_field/<object_type>/`` CRUD, shared-field
associations and ``/custom_field_schema/<object_type>/`` (which, unlike the per-type lists,
includes the shared fields associated with the object)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from closeflow.emulator._custom_values import FIELD_TYPES, MULTI_VALUE_TYPES
from closeflow.emulator._errors import FieldErrors, field_error, not_found
from closeflow.emulator._listing import page, page_bounds, project, requested_fields
from closeflow.emulator._org import CUSTOM_FIELD_OBJECT_TYPES, RECORD_TYPES, Organization
from closeflow.emulator._requests import context_of, json_body, org_of

_EDITABLE = ("name", "description", "choices", "accepts_multiple_values", "editable_with_roles", "required")


def custom_field_definition(
    org: Organization, object_type: str, body: dict[str, Any], user_id: str | None
) -> dict[str, Any]:
    """A validated definition, Close-shaped (§5); raises ``FieldErrors`` naming each bad key."""
    errors = FieldErrors()
    now = org.now()
    definition: dict[str, Any] = {
        "id": org.ids.new("cf_"),
        "name": body.get("name"),
        "type": body.get("type"),
        "description": body.get("description"),
        "accepts_multiple_values": bool(body.get("accepts_multiple_values", False)),
        "choices": body.get("choices"),
        "is_shared": object_type == "shared",
        "editable_with_roles": list(body.get("editable_with_roles") or []),
        "referenced_custom_type_id": body.get("referenced_custom_type_id"),
        "back_reference_is_visible": None,
        "organization_id": org.id,
        "created_by": user_id,
        "updated_by": user_id,
        "date_created": now,
        "date_updated": now,
    }
    if object_type == "activity":
        definition["custom_activity_type_id"] = body.get("custom_activity_type_id")
        definition["required"] = bool(body.get("required", False))
    if object_type == "shared":
        definition["associations"] = _associations(body.get("associations") or [], errors)
    _check(definition, errors)
    if errors.field_errors:
        raise errors
    return definition


def _check(definition: dict[str, Any], errors: FieldErrors) -> None:
    if not isinstance(definition["name"], str) or not definition["name"].strip():
        errors.field_errors["name"] = "This field is required."
    kind = definition["type"]
    if kind not in FIELD_TYPES:
        errors.field_errors["type"] = f"Must be one of: {', '.join(sorted(FIELD_TYPES))}."
        return
    choices = definition["choices"]
    if kind == "choices" and (not isinstance(choices, list) or not choices):
        errors.field_errors["choices"] = "A choices field needs a non-empty list of choices."
    if kind != "choices" and choices is not None:
        errors.field_errors["choices"] = "Only choices fields have choices."
    if definition["accepts_multiple_values"] and kind not in MULTI_VALUE_TYPES:
        errors.field_errors["accepts_multiple_values"] = (
            "Only user, choices, contact and custom_object fields accept multiple values."
        )


def _associations(raw: Any, errors: FieldErrors) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        errors.field_errors["associations"] = "Expected a list."
        return []
    out = []
    for index, item in enumerate(raw):
        association = _association(item)
        if association is None:
            errors.field_errors[f"associations.{index}.object_type"] = "Must be lead, contact or opportunity."
        else:
            out.append(association)
    return out


def _association(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or item.get("object_type") not in RECORD_TYPES:
        return None
    return {
        "object_type": item["object_type"],
        "editable_with_roles": list(item.get("editable_with_roles") or []),
        "required": bool(item.get("required", False)),
    }


def _object_type(request: Request) -> str:
    object_type: str = request.path_params["object_type"]
    if object_type not in CUSTOM_FIELD_OBJECT_TYPES:
        raise not_found()
    return object_type


async def custom_fields(request: Request) -> JSONResponse:
    org = org_of(request)
    object_type = _object_type(request)
    if request.method == "POST":
        definition = custom_field_definition(
            org, object_type, await json_body(request), context_of(request).user_id
        )
        org.custom_fields[object_type][definition["id"]] = definition
        return JSONResponse(definition)
    skip, limit = page_bounds(request.query_params, request.app.state.emulator.config, "custom_field")
    definitions = list(org.custom_fields[object_type].values())
    return JSONResponse(page(definitions, skip, limit, dict, requested_fields(request.query_params)))


async def custom_field(request: Request) -> JSONResponse:
    org = org_of(request)
    object_type = _object_type(request)
    definition = org.custom_fields[object_type].get(request.path_params["field_id"])
    if definition is None:
        raise not_found()
    if request.method == "DELETE":
        del org.custom_fields[object_type][definition["id"]]
        key = f"custom.{definition['id']}"
        # A deleted field's values disappear from every record.
        for records in org.records.values():
            for record in records.values():
                record.pop(key, None)
        org.touched()
        return JSONResponse({})
    if request.method == "PUT":
        body = await json_body(request)
        updated = {**definition, **{k: body[k] for k in _EDITABLE if k in body}}
        if object_type == "shared" and "associations" in body:
            errors = FieldErrors()
            updated["associations"] = _associations(body["associations"], errors)
            if errors.field_errors:
                raise errors
        errors = FieldErrors()
        _check(updated, errors)
        if errors.field_errors:
            raise errors
        updated["date_updated"] = org.now()
        updated["updated_by"] = context_of(request).user_id
        org.custom_fields[object_type][definition["id"]] = updated
        definition = updated
    return JSONResponse(project(definition, requested_fields(request.query_params)))


async def shared_field_association(request: Request) -> Response:
    """``POST …/shared/{id}/association/`` (201) and ``DELETE …/association/{object_type}/`` (204)."""
    org = org_of(request)
    definition = org.custom_fields["shared"].get(request.path_params["field_id"])
    if definition is None:
        raise not_found()
    associations: list[dict[str, Any]] = definition["associations"]
    if request.method == "POST":
        association = _association(await json_body(request))
        if association is None:
            raise field_error("object_type", "Must be lead, contact or opportunity.")
        associations[:] = [a for a in associations if a["object_type"] != association["object_type"]]
        associations.append(association)
        return JSONResponse(association, status_code=201)
    target = request.path_params.get("target", "")
    match = [a for a in associations if a["object_type"] == target]
    if not match:
        raise not_found()
    if request.method == "DELETE":
        associations.remove(match[0])
        return Response(status_code=204)
    if request.method == "PUT":
        body = await json_body(request)
        match[0].update({k: body[k] for k in ("editable_with_roles", "required") if k in body})
    return JSONResponse(match[0])


async def custom_field_schema(request: Request) -> JSONResponse:
    org = org_of(request)
    object_type = request.path_params["object_type"]
    if object_type not in RECORD_TYPES:
        raise not_found()
    fields = org.fields_for(object_type)
    if request.method == "PUT":
        body = await json_body(request)
        wanted = [f.get("id") for f in body.get("fields", []) if isinstance(f, dict)]
        known = {f["id"] for f in fields}
        org.schema_order[object_type] = [str(i) for i in wanted if i in known]
    position = {field_id: index for index, field_id in enumerate(org.schema_order[object_type])}
    # Fields never reordered keep their creation order, after the reordered ones.
    ordered = sorted(fields, key=lambda f: position.get(f["id"], len(position)))
    return JSONResponse({"fields": [dict(f) for f in ordered]})
