"""The client against injected emulator faults: what is retried, what is never re-sent, and how
deep offset paging fails where keyset paging does not."""

from __future__ import annotations

import pytest

from closeflow._clock import FakeClock
from closeflow.close import CloseClient, ServerError, TransportError, Unauthorized, ValidationError
from closeflow.emulator import Emulator, EmulatorConfig


def _client(emu: Emulator, clock: FakeClock, key: str | None = None) -> CloseClient:
    return CloseClient(key or emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock)


async def test_get_is_retried_through_injected_503s_and_succeeds() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5, leads=3)
    lead_id = next(iter(emu.org.leads))
    emu.faults.fail_next(2, status=503, method="GET")
    async with _client(emu, clock) as client:
        lead = await client.get(f"/lead/{lead_id}/")
    assert lead["id"] == lead_id
    statuses = [entry.status for entry in emu.request_log if entry.path.startswith("/lead/")]
    assert statuses == [503, 503, 200]


async def test_post_answered_503_is_not_sent_again() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5)
    emu.faults.fail_next(1, status=503, method="POST")
    async with _client(emu, clock) as client:
        with pytest.raises(ServerError) as failure:
            await client.post("/lead/", json={"name": "Once Only"})
    assert failure.value.status == 503
    assert emu.requests("POST", "/lead/") == 1


async def test_post_whose_reply_was_lost_is_not_blindly_resent_and_creates_one_lead() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5)
    emu.faults.drop_next(1, after_processing=True, method="POST")
    async with _client(emu, clock) as client:
        with pytest.raises(TransportError) as failure:
            await client.post("/lead/", json={"name": "Reply Lost"})
    assert failure.value.reached_server is True
    assert [lead["name"] for lead in emu.org.objects("lead")] == ["Reply Lost"]


async def test_post_dropped_before_reaching_close_is_retried_and_creates_one_lead() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5)
    emu.faults.drop_next(1, after_processing=False, method="POST")
    async with _client(emu, clock) as client:
        created = await client.post("/lead/", json={"name": "Never Arrived"})
    assert [lead["id"] for lead in emu.org.objects("lead")] == [created["id"]]


async def test_offset_paging_stops_at_the_skip_cap_while_keyset_reads_three_times_past_it() -> None:
    clock = FakeClock()
    config = EmulatorConfig(skip_caps={"lead": 50, "contact": 50, "default": 50}, search_max_results=50)
    emu = Emulator(config=config, clock=clock, seed=9, leads=150)
    async with _client(emu, clock) as client:
        with pytest.raises(ValidationError) as capped:
            _ = [lead async for lead in client.paginate("/lead/", {"_fields": "id"}, page_size=25)]
        assert "max_skip = 50" in str(capped.value)
        walked = [lead["id"] async for lead in client.keyset("lead", page_size=25)]
    assert len(walked) == len(set(walked)) == 150
    assert set(walked) == set(emu.org.leads)


async def test_a_wrong_api_key_is_a_clear_unauthorized_that_hides_the_key() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5)
    async with _client(emu, clock, key="api_not_the_right_one") as client:
        with pytest.raises(Unauthorized) as denied:
            await client.me()
    assert denied.value.status == 401
    assert "api_not_the_right_one" not in str(denied.value) + repr(denied.value)


async def test_a_lead_edited_mid_walk_does_not_make_the_keyset_walk_skip_records() -> None:
    clock = FakeClock()
    emu = Emulator(config=EmulatorConfig(search_max_results=10), clock=clock, seed=7, leads=50)
    in_order = sorted(emu.org.objects("lead"), key=lambda lead: (lead["date_updated"], lead["id"]))
    last_of_first_walk = in_order[9]["id"]
    seen: list[str] = []
    async with _client(emu, clock) as client:
        async for lead in client.keyset("lead", page_size=5):
            seen.append(lead["id"])
            if len(seen) == 1:  # a record later in this walk changes before its page is fetched
                clock.advance(5)
                await client.put(f"/lead/{last_of_first_walk}/", json={"description": "edited mid-walk"})
    assert set(seen) == set(emu.org.leads)
    repeated = {lead_id for lead_id in seen if seen.count(lead_id) > 1}
    assert repeated <= {last_of_first_walk}  # only the edited lead may come back, with its new version


async def test_a_search_page_answered_503_is_retried_because_search_changes_nothing() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5, leads=30)
    emu.faults.fail_next(1, status=503, method="POST", path_pattern="/data/search/")
    async with _client(emu, clock) as client:
        walked = [lead["id"] async for lead in client.keyset("lead", page_size=10)]
    assert sorted(walked) == sorted(emu.org.leads)
    assert next(e.status for e in emu.request_log if e.path == "/data/search/") == 503


async def test_a_delete_whose_reply_was_lost_is_retried_and_reported_as_done() -> None:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5, leads=2)
    lead_id = next(iter(emu.org.leads))
    emu.faults.drop_next(1, after_processing=True, method="DELETE")
    async with _client(emu, clock) as client:
        assert await client.delete(f"/lead/{lead_id}/") == {}
    assert lead_id not in emu.org.leads
    assert emu.requests("DELETE") == 2
