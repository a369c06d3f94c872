"""What the sync tests compare: the emulator's truth per model, the store's content, the changes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx2

from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.sync import Change, Store, SyncResult, sync
from closeflow.sync._streams import CONTACT_FIELDS, CUSTOM_FIELD_TYPES, LEAD_FIELDS

Records = dict[str, dict[str, Any]]
RECORD_MODELS = ("leads", "contacts", "opportunities", "tasks", "activities")


def client_of(emu: Emulator) -> CloseClient:
    return CloseClient(emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=emu.clock)


async def run_sync(emu: Emulator, store: Store, **options: Any) -> SyncResult:
    async with client_of(emu) as client:
        result = await sync(client, store, **options)
    assert result.failed == [], [(s.stream, s.error) for s in result.failed]
    return result


def _searched(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A lead/contact as /data/search/ returns it when every field is requested."""
    row = {name: record.get(name) for name in fields if name != "custom"}
    row["display_name"] = record.get("display_name") or record.get("name")
    row.update({k: v for k, v in record.items() if k.startswith("custom.")})
    return row


def truth(emu: Emulator, model: str) -> Records:
    org = emu.org
    if model == "leads":
        return {i: _searched(r, LEAD_FIELDS) for i, r in org.leads.items()}
    if model == "contacts":
        return {i: _searched(r, CONTACT_FIELDS) for i, r in org.contacts.items()}
    singular = {"opportunities": "opportunity", "tasks": "task", "activities": "activity"}[model]
    return {i: dict(r) for i, r in org.records[singular].items()}


def custom_field_truth(emu: Emulator) -> Records:
    return {
        field_id: {**definition, "object_type": kind}
        for kind in CUSTOM_FIELD_TYPES
        for field_id, definition in emu.org.custom_fields[kind].items()
    }


async def listed(emu: Emulator, path: str) -> Records:
    """A reference list as the emulator serves it."""
    async with httpx2.AsyncClient(
        transport=emu.transport(), base_url=emu.base_url, auth=(emu.api_key, "")
    ) as http:
        body = (await http.get(path, params={"_limit": 1000})).json()
    return {r["id"]: r for r in body["data"]}


def stored(store: Store, model: str) -> Records:
    out: Records = {}
    for record_id in list(store.live_ids(model)):
        record = store.get(model, record_id)
        assert record is not None
        out[record_id] = record
    return out


def assert_store_matches(emu: Emulator, store: Store) -> None:
    for model in RECORD_MODELS:
        expected, actual = truth(emu, model), stored(store, model)
        assert set(actual) == set(expected), f"{model}: ids differ"
        for record_id, record in expected.items():
            assert actual[record_id] == record, f"{model} {record_id} differs"
    assert stored(store, "custom_fields") == custom_field_truth(emu)


def new_changes(store: Store, since: int) -> list[Change]:
    return store.changes(since)


def kinds(changes: list[Change]) -> Counter[tuple[str, str]]:
    return Counter((c.model, c.kind) for c in changes)


def by_record(changes: list[Change]) -> dict[str, Change]:
    out: dict[str, Change] = {}
    for change in changes:
        assert change.record_id not in out, f"two changes for {change.record_id}"
        out[change.record_id] = change
    return out
