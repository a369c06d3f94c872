"""Segments and triggers, decided locally over the records a sync stored from the emulator."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from closeflow._clock import FakeClock
from closeflow.close import ApiKey, CloseClient, FilterError, parse_where
from closeflow.emulator import Emulator
from closeflow.plays._expressions import Evaluator
from closeflow.plays._segment import change_context, named_custom_fields, segment_matches, trigger_matches
from closeflow.plays._spec import Trigger
from closeflow.sync import Change, Store, open_store, sync


@dataclasses.dataclass
class Synced:
    emulator: Emulator
    client: CloseClient
    store: Store
    custom: dict[str, str]  # custom-field name -> record key

    async def resync(self) -> None:
        await sync(self.client, self.store, models=["leads", "contacts"])


@pytest.fixture
async def synced(clock: FakeClock) -> Any:
    emu = Emulator(clock=clock, seed=11, leads=6)
    store = open_store(":memory:")
    async with CloseClient(
        ApiKey(emu.api_key), base_url=emu.base_url, transport=emu.transport(), clock=clock
    ) as client:
        await sync(client, store, models=["leads", "contacts"])
        _, rows = store.query("SELECT data FROM custom_fields")
        custom = {}
        for (data,) in rows:
            field = json.loads(data)
            if field["object_type"] in ("lead", "shared"):
                custom[field["name"]] = f"custom.{field['id']}"
        yield Synced(emu, client, store, custom)
    store.close()


def leads(synced: Synced) -> list[dict[str, Any]]:
    return [
        record for id in sorted(synced.store.live_ids("leads")) if (record := synced.store.get("leads", id))
    ]


def matching(synced: Synced, where: str, model: str = "leads") -> list[str]:
    records = [synced.store.get(model, id) for id in sorted(synced.store.live_ids(model))]
    return [r["id"] for r in records if r and segment_matches(parse_where(where), r, synced.custom)]


async def test_standard_fields_status_and_in(synced: Synced) -> None:
    records = leads(synced)
    first = records[0]
    by_status = [r["id"] for r in records if r["status_label"] == first["status_label"]]
    assert matching(synced, f'status = "{first["status_label"].upper()}"') == by_status  # case-insensitive
    assert matching(synced, f'status != "{first["status_label"]}"') == [
        r["id"] for r in records if r["id"] not in by_status
    ]
    names = (records[0]["name"], records[1]["name"])
    assert matching(synced, f'name in ("{names[0]}", "{names[1]}")') == sorted(
        [records[0]["id"], records[1]["id"]]
    )
    assert matching(synced, f'id = "{first["id"]}"') == [first["id"]]


async def test_custom_fields_by_name_exists_and_numbers(synced: Synced) -> None:
    records = leads(synced)
    key = synced.custom["Employees"]
    with_count = [r["id"] for r in records if r.get(key) is not None]
    big = [r["id"] for r in records if (r.get(key) or 0) >= 1000]
    assert matching(synced, 'custom."Employees" exists') == with_count
    assert matching(synced, 'custom."Employees" missing') == [
        r["id"] for r in records if r["id"] not in with_count
    ]
    assert matching(synced, 'custom."Employees" >= 1000') == big
    assert matching(synced, 'not custom."Employees" >= 1000 and custom."Employees" exists') == [
        id for id in with_count if id not in big
    ]
    with pytest.raises(FilterError, match='no custom field named "Employes"'):
        matching(synced, 'custom."Employes" exists')


async def test_dates_compare_as_dates(synced: Synced) -> None:
    records = leads(synced)
    middle = sorted(r["date_created"] for r in records)[len(records) // 2]
    expected = [r["id"] for r in records if r["date_created"] >= middle]
    assert matching(synced, f'date_created >= "{middle}"') == expected
    assert matching(synced, 'date_created >= "2000-01-01"') == [r["id"] for r in records]
    assert matching(synced, 'date_created < "2000-01-01T00:00:00Z"') == []


async def test_emails_and_phones_of_contacts(synced: Synced) -> None:
    contacts = [synced.store.get("contacts", id) for id in sorted(synced.store.live_ids("contacts"))]
    contact = next(c for c in contacts if c and c.get("emails") and c.get("phones"))
    email, phone = contact["emails"][0]["email"], contact["phones"][0]["phone"]
    assert contact["id"] in matching(synced, f'email = "{email.upper()}"', "contacts")
    assert matching(synced, f'phone = "{phone}"', "contacts") == [
        c["id"] for c in contacts if c and any(p["phone"] == phone for p in c.get("phones") or [])
    ]
    domain = email.split("@")[1]
    assert contact["id"] in matching(synced, f'email contains "{domain}"', "contacts")
    assert matching(synced, 'email = "nobody@nowhere.invalid"', "contacts") == []


def change(kind: str, **fields: Any) -> Change:
    return Change(
        seq=fields.pop("seq", 1), model=fields.pop("model", "leads"), record_id="lead_1", kind=kind,  # type: ignore[arg-type]
        changed_fields=fields.pop("changed_fields", []), before=fields.pop("before", None),
        after=fields.pop("after", None), at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


EVALUATOR = Evaluator()


def test_on_kinds_and_model_decide_first() -> None:
    trigger = Trigger(model="leads", on=["added"])
    assert trigger_matches(trigger, change("added", after={"id": "lead_1"}), EVALUATOR, {}, {})
    assert not trigger_matches(trigger, change("removed", before={"id": "lead_1"}), EVALUATOR, {}, {})
    assert not trigger_matches(
        trigger, change("added", model="contacts", after={"id": "c"}), EVALUATOR, {}, {}
    )
    every = Trigger(model="leads")
    assert every.on == ["added", "updated", "removed"]


def test_removed_changes_are_matched_on_the_record_before() -> None:
    trigger = Trigger(model="leads", on=["removed"], where='status = "Customer"')
    assert trigger_matches(trigger, change("removed", before={"status_label": "Customer"}), EVALUATOR, {}, {})
    assert not trigger_matches(trigger, change("removed", before={"status_label": "Lost"}), EVALUATOR, {}, {})


def test_changed_fields_filter_updates() -> None:
    trigger = Trigger(model="leads", on=["updated"], changed=["status_label", "custom.Tier"])
    record = {"id": "lead_1", "status_label": "Qualified", "custom.cf_t": "A", "name": "Acme"}
    names = {"Tier": "custom.cf_t"}
    renamed = change("updated", changed_fields=["name"], before={"name": "Old"}, after={"name": "Acme"})
    tiered = change(
        "updated", changed_fields=["custom.cf_t"], before={"custom.cf_t": "B"}, after={"custom.cf_t": "A"}
    )
    assert not trigger_matches(trigger, renamed, EVALUATOR, {}, names, record=record)
    assert trigger_matches(trigger, tiered, EVALUATOR, {}, names, record=record)


def test_when_sees_status_go_from_potential_to_qualified() -> None:
    trigger = Trigger(
        model="leads", on=["updated"], where='status = "Qualified"',
        when="{{ change.before.status_label == 'Potential' and record['custom.Tier'] == vars.tier }}",
    )  # fmt: skip
    record = {"id": "lead_1", "status_label": "Qualified", "custom.cf_t": "A"}
    names = {"Tier": "custom.cf_t"}
    promoted = change(
        "updated",
        changed_fields=["status_label"],
        before={"status_label": "Potential"},
        after={"status_label": "Qualified"},
    )
    from_lost = change(
        "updated",
        changed_fields=["status_label"],
        before={"status_label": "Lost"},
        after={"status_label": "Qualified"},
    )
    assert trigger_matches(trigger, promoted, EVALUATOR, {"tier": "A"}, names, record=record)
    assert not trigger_matches(trigger, promoted, EVALUATOR, {"tier": "B"}, names, record=record)
    assert not trigger_matches(trigger, from_lost, EVALUATOR, {"tier": "A"}, names, record=record)


def test_change_context_fills_unchanged_keys_on_both_sides() -> None:
    record = {"id": "lead_1", "status_label": "Qualified", "name": "Acme"}
    update = change(
        "updated",
        changed_fields=["status_label"],
        before={"status_label": "Potential"},
        after={"status_label": "Qualified"},
    )
    data = change_context(update, record)
    assert data["before"] == {"id": "lead_1", "status_label": "Potential", "name": "Acme"}
    assert data["after"] == record
    assert named_custom_fields({"custom.cf_t": "A"}, {"Tier": "custom.cf_t"}) == {
        "custom.cf_t": "A",
        "custom.Tier": "A",
    }


async def test_a_real_status_change_from_a_sync_triggers(synced: Synced, clock: FakeClock) -> None:
    lead = leads(synced)[0]
    statuses = {s["label"]: s["id"] for s in (await synced.client.get("/status/lead/"))["data"]}
    target = next(label for label in statuses if label != lead["status_label"])
    since = synced.store.last_seq()
    clock.advance(60)
    await synced.client.put(f"/lead/{lead['id']}/", json={"status_id": statuses[target]})
    clock.advance(600)
    await synced.resync()
    changes = [c for c in synced.store.changes(since, model="leads") if c.record_id == lead["id"]]
    assert [c.kind for c in changes] == ["updated"]
    stored = synced.store.get("leads", lead["id"])
    trigger = Trigger(
        model="leads", on=["updated"], where=f'status = "{target}"', changed=["status"],
        when=f"{{{{ change.before.status_label == {lead['status_label']!r} "
        "and change.before.name == record.name }}",
    )  # fmt: skip
    assert trigger_matches(trigger, changes[0], EVALUATOR, {}, synced.custom, record=stored)
    other = trigger.model_copy(update={"where": 'status = "nope"'})
    other.model_post_init(None)
    assert not trigger_matches(other, changes[0], EVALUATOR, {}, synced.custom, record=stored)
