"""Close's official Python client (`closeio` on PyPI), unmodified, against the emulator on a port.

If Close's own client works against the emulator, the emulator speaks Close's dialect: its
envelopes, trailing slashes, auth, error shapes and rate-limit headers.
"""

from __future__ import annotations

import closeio_api
import pytest
from closeio_api import API

from tests.conftest import Served


def _api(served: Served) -> API:
    return API(served.base_url + "/", api_key=served.emulator.api_key, tz_offset="0", max_retries=5)


def test_official_client_creates_reads_updates_and_deletes_a_lead(served_emulator: Served) -> None:
    api = _api(served_emulator)
    created = api.post(
        "lead",
        data={
            "name": "Bluth Company",
            "contacts": [
                {
                    "name": "Gob",
                    "emails": [{"email": "gob@example.com", "type": "office"}],
                    "phones": [{"phone": "8004445555", "type": "office"}],
                }
            ],
        },
    )
    assert created["id"].startswith("lead_")
    assert created["contacts"][0]["phones"][0]["phone"] == "+18004445555"

    fetched = api.get("lead/" + created["id"])
    assert fetched["display_name"] == "Bluth Company"

    updated = api.put("lead/" + created["id"], data={"description": "Best. Show. Ever."})
    assert updated["description"] == "Best. Show. Ever."
    assert updated["name"] == "Bluth Company"  # PUT is partial

    assert api.delete("lead/" + created["id"]) == {}
    with pytest.raises(closeio_api.APIError) as missing:
        api.get("lead/" + created["id"])
    assert missing.value.response.status_code == 404


def test_official_client_pages_through_every_lead(served_emulator: Served) -> None:
    api = _api(served_emulator)
    seen: list[str] = []
    skip = 0
    while True:
        page = api.get("lead", params={"_skip": skip, "_limit": 50, "_fields": "id"})
        seen.extend(row["id"] for row in page["data"])
        skip += len(page["data"])
        if not page["has_more"]:
            break
    truth = {lead["id"] for lead in served_emulator.emulator.org.objects("lead")}
    assert len(seen) == len(set(seen)) == len(truth) == 120
    assert set(seen) == truth


def test_official_client_validation_error_exposes_field_errors(served_emulator: Served) -> None:
    api = _api(served_emulator)
    with pytest.raises(closeio_api.ValidationError) as invalid:
        api.get("lead", params={"_limit": 1000})
    assert "_limit" in invalid.value.field_errors


def test_official_client_backs_off_on_429_and_finishes(served_rate_limited_emulator: Served) -> None:
    api = _api(served_rate_limited_emulator)
    emu = served_rate_limited_emulator.emulator
    results = [api.get("me") for _ in range(10)]
    assert all(r["id"].startswith("user_") for r in results)
    statuses = [r.status for r in emu.request_log if r.path.startswith("/me")]
    assert statuses.count(200) == 10
    assert statuses.count(429) >= 1  # it was throttled, waited as told, and carried on
