"""The organization's people and settings (§4.6) and custom-field definitions (§5)."""

from __future__ import annotations

import httpx2

from closeflow.emulator import Emulator


async def test_me_names_the_caller_and_their_organization(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    me = (await close.get("/me/")).json()
    assert me["id"] == emulator.org.owner_id
    assert me["organizations"][0]["id"] == emulator.org.id
    assert me["memberships"][0]["role_id"] == "admin"
    assert {"first_name", "last_name", "email", "date_created", "date_updated"} <= set(me)


async def test_users_list_carries_org_ids_as_strings(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    users = (await close.get("/user/")).json()
    assert 3 <= len(users["data"]) <= 5
    assert users["data"][0]["organizations"] == [emulator.org.id]
    one = (await close.get(f"/user/{users['data'][0]['id']}/")).json()
    assert one == users["data"][0]


async def test_organization_lists_statuses_and_pipelines(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    org = (await close.get(f"/organization/{emulator.org.id}/")).json()
    assert [s["label"] for s in org["lead_statuses"]] == ["Potential", "Bad Fit", "Qualified", "Customer"]
    assert {s["type"] for s in org["opportunity_statuses"]} == {"active", "won", "lost"}
    only = (await close.get(f"/organization/{emulator.org.id}/", params={"_fields": "id,name"})).json()
    assert set(only) == {"id", "name"}


async def test_renaming_a_lead_status_relabels_its_leads(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json={"status": "Potential"})).json()
    created = (await close.post("/status/lead/", json={"label": "Nurture"})).json()
    assert created["id"].startswith("stat_")
    renamed = (await close.put(f"/status/lead/{lead['status_id']}/", json={"label": "Prospect"})).json()
    assert renamed["label"] == "Prospect"
    assert (await close.get(f"/lead/{lead['id']}/")).json()["status_label"] == "Prospect"
    refused = await close.delete(f"/status/lead/{lead['status_id']}/")
    assert refused.status_code == 400
    assert (await close.delete(f"/status/lead/{created['id']}/")).json() == {}


async def test_pipeline_create_is_201_and_delete_is_204(close: httpx2.AsyncClient) -> None:
    body = {
        "name": "Renewals",
        "statuses": [{"label": "Open", "type": "active"}, {"label": "Renewed", "type": "won"}],
    }
    created = await close.post("/pipeline/", json=body)
    assert created.status_code == 201
    pipeline = created.json()
    assert pipeline["id"].startswith("pipe_") and len(pipeline["id"]) == 5 + 22
    statuses = (await close.get("/status/opportunity/")).json()["data"]
    assert {"Open", "Renewed"} <= {s["label"] for s in statuses if s["pipeline_id"] == pipeline["id"]}
    deleted = await close.delete(f"/pipeline/{pipeline['id']}/")
    assert deleted.status_code == 204


async def test_custom_field_crud_with_type_checks(close: httpx2.AsyncClient) -> None:
    created = (
        await close.post(
            "/custom_field/lead/", json={"name": "Tier", "type": "choices", "choices": ["Gold", "Silver"]}
        )
    ).json()
    assert created["id"].startswith("cf_")
    assert created["accepts_multiple_values"] is False
    assert created["is_shared"] is False
    updated = (await close.put(f"/custom_field/lead/{created['id']}/", json={"choices": ["Gold"]})).json()
    assert updated["choices"] == ["Gold"]
    assert (await close.get(f"/custom_field/lead/{created['id']}/")).json()["choices"] == ["Gold"]
    assert (await close.delete(f"/custom_field/lead/{created['id']}/")).json() == {}
    assert (await close.get(f"/custom_field/lead/{created['id']}/")).status_code == 404


async def test_custom_field_definitions_are_validated(close: httpx2.AsyncClient) -> None:
    no_choices = await close.post("/custom_field/lead/", json={"name": "Tier", "type": "choices"})
    bad_multi = await close.post(
        "/custom_field/contact/", json={"name": "N", "type": "number", "accepts_multiple_values": True}
    )
    bad_type = await close.post("/custom_field/lead/", json={"name": "N", "type": "colour"})
    assert list(no_choices.json()["field-errors"]) == ["choices"]
    assert list(bad_multi.json()["field-errors"]) == ["accepts_multiple_values"]
    assert list(bad_type.json()["field-errors"]) == ["type"]


async def test_schema_includes_shared_fields_that_the_type_list_omits(close: httpx2.AsyncClient) -> None:
    listed = {f["name"] for f in (await close.get("/custom_field/lead/")).json()["data"]}
    schema = {f["name"] for f in (await close.get("/custom_field_schema/lead/")).json()["fields"]}
    assert "Region" not in listed
    assert schema == listed | {"Region"}


async def test_shared_field_association_controls_where_it_appears(close: httpx2.AsyncClient) -> None:
    shared = (
        await close.post(
            "/custom_field/shared/",
            json={"name": "Partner", "type": "text", "associations": [{"object_type": "contact"}]},
        )
    ).json()
    assert shared["is_shared"] is True
    names = lambda body: {f["name"] for f in body["fields"]}  # noqa: E731
    assert "Partner" not in names((await close.get("/custom_field_schema/opportunity/")).json())
    added = await close.post(
        f"/custom_field/shared/{shared['id']}/association/", json={"object_type": "opportunity"}
    )
    assert added.status_code == 201
    assert "Partner" in names((await close.get("/custom_field_schema/opportunity/")).json())
    removed = await close.delete(f"/custom_field/shared/{shared['id']}/association/opportunity/")
    assert removed.status_code == 204
    assert "Partner" not in names((await close.get("/custom_field_schema/opportunity/")).json())


async def test_schema_put_reorders_fields(close: httpx2.AsyncClient) -> None:
    fields = (await close.get("/custom_field_schema/contact/")).json()["fields"]
    reordered = [{"id": f["id"]} for f in reversed(fields)]
    answer = (await close.put("/custom_field_schema/contact/", json={"fields": reordered})).json()
    assert [f["id"] for f in answer["fields"]] == [f["id"] for f in reversed(fields)]
