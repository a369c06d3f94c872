"""Request handling every Close client relies on (§1.2, §1.3, §3.1, §11, §12): paths, auth, error bodies."""

from __future__ import annotations

import httpx2

from closeflow.emulator import Emulator


async def test_trailing_slash_is_optional(close: httpx2.AsyncClient) -> None:
    assert (await close.get("/me")).status_code == 200
    assert (await close.get("/me/")).status_code == 200


async def test_double_slash_reaches_the_same_route(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    # The exact URL Airbyte's connector builds (§1.2).
    response = await close.get(emulator.base_url + "//custom_field/lead/")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 9
    assert emulator.request_log[-1].path == "/custom_field/lead/"


async def test_plural_custom_fields_path_aliases_the_singular(close: httpx2.AsyncClient) -> None:
    plural = (await close.get("/custom_fields/lead/")).json()
    singular = (await close.get("/custom_field/lead/")).json()
    assert plural == singular


async def test_missing_or_wrong_api_key_is_401_json(emulator: Emulator) -> None:
    async with httpx2.AsyncClient(transport=emulator.transport(), base_url=emulator.base_url) as anonymous:
        response = await anonymous.get("/me/")
        wrong = await anonymous.get("/me/", auth=("api_wrong", ""))
    assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert wrong.status_code == 401
    assert [entry.status for entry in emulator.request_log] == [401, 401]


async def test_limit_above_the_maximum_is_a_field_error(close: httpx2.AsyncClient) -> None:
    assert (await close.get("/lead/", params={"_limit": 200})).status_code == 200
    response = await close.get("/lead/", params={"_limit": 201})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [],
        "field-errors": {"_limit": "Input should be less than or equal to 200"},
    }


async def test_skip_above_the_cap_names_max_skip(close: httpx2.AsyncClient) -> None:
    response = await close.get("/lead/", params={"_skip": 35_001})
    assert response.status_code == 400
    assert response.json() == {
        "error": "The skip you set is larger than the maximum skip for this resource (max_skip = 35000).\n"
        "Please refine your search query."
    }


async def test_invalid_json_body_is_a_400_with_closes_message(close: httpx2.AsyncClient) -> None:
    response = await close.post("/lead/", content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": "The request contains invalid JSON."})


async def test_json_body_on_get_is_ignored(close: httpx2.AsyncClient) -> None:
    response = await close.request("GET", "/lead/", json={"_limit": 5000})
    assert response.status_code == 200


async def test_unknown_path_and_unknown_id_are_404_json(close: httpx2.AsyncClient) -> None:
    assert (await close.get("/no_such_thing/")).json() == {"error": "Not found"}
    response = await close.get("/lead/lead_missing/")
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


async def test_malformed_email_is_a_field_error_naming_the_item(close: httpx2.AsyncClient) -> None:
    response = await close.post("/contact/", json={"name": "X", "emails": [{"email": "not-an-email"}]})
    assert response.status_code == 400
    assert response.json() == {"errors": [], "field-errors": {"emails.0.email": "Invalid email address."}}


async def test_nested_contact_errors_are_prefixed_with_their_position(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    response = await close.post(
        "/lead/", json={"name": "A", "contacts": [{"name": "ok"}, {"emails": [{"email": "x"}]}]}
    )
    assert response.json() == {
        "errors": [],
        "field-errors": {"contacts.1.emails.0.email": "Invalid email address."},
    }
    assert emulator.org.leads == {}


async def test_unknown_status_is_a_field_error(close: httpx2.AsyncClient) -> None:
    by_label = await close.post("/lead/", json={"status": "Imaginary"})
    by_id = await close.post("/lead/", json={"status_id": "stat_nope"})
    assert by_label.json() == {
        "errors": [],
        "field-errors": {"status": "Lead status 'Imaginary' does not exist."},
    }
    assert by_id.json() == {"errors": [], "field-errors": {"status_id": "Lead status does not exist."}}


async def test_name_of_the_wrong_type_is_a_field_error(close: httpx2.AsyncClient) -> None:
    response = await close.post("/lead/", json={"name": 42})
    assert response.json() == {"errors": [], "field-errors": {"name": "Value must be of basestring type."}}


async def test_request_log_counts_by_method_and_path(close: httpx2.AsyncClient, emulator: Emulator) -> None:
    await close.post("/lead/", json={"name": "A"})
    await close.get("/lead/")
    await close.get("/me/")
    assert emulator.requests() == 3
    assert emulator.requests("GET") == 2
    assert emulator.requests("GET", path_prefix="/lead/") == 1
    assert emulator.requests(path_prefix="/api/v1/lead/") == 2
    assert emulator.request_log[0].path == "/lead/"
    assert emulator.request_log[0].method == "POST"
    assert emulator.request_log[0].status == 200


async def test_api_key_never_appears_in_the_request_log_or_repr(
    close: httpx2.AsyncClient, emulator: Emulator
) -> None:
    await close.get("/me/")
    assert emulator.api_key not in repr(emulator.request_log)
    assert emulator.api_key not in repr(emulator)


async def test_data_search_is_served_by_the_search_engine(close: httpx2.AsyncClient) -> None:
    lead = (await close.post("/lead/", json={"name": "Findme"})).json()
    body = {
        "query": {"type": "and", "queries": [{"type": "object_type", "object_type": "lead"}]},
        "_limit": 10,
    }
    response = await close.post("/data/search/", json=body)
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["data"]] == [lead["id"]]


async def test_data_search_errors_are_close_shaped_400s(close: httpx2.AsyncClient) -> None:
    response = await close.post("/data/search/", json={"query": {"type": "no_such_node"}})
    assert response.status_code == 400
    assert set(response.json()) == {"errors", "field-errors"}
