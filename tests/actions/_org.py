"""Setting up and reading back the emulated organization, through Close's own API where it matters."""

from __future__ import annotations

from typing import Any

from closeflow.close import CloseClient
from closeflow.emulator import Emulator


async def new_lead(client: CloseClient, **fields: Any) -> dict[str, Any]:
    return await client.post("/lead/", json={"name": "Acme", **fields})


async def new_contact(client: CloseClient, lead_id: str, email: str, **fields: Any) -> dict[str, Any]:
    body = {"lead_id": lead_id, "emails": [{"email": email, "type": "office"}], **fields}
    return await client.post("/contact/", json=body)


def contacts_with_email(emulator: Emulator, email: str) -> list[dict[str, Any]]:
    return [
        c
        for c in emulator.org.contacts.values()
        if any(e["email"].lower() == email.lower() for e in c["emails"])
    ]


def leads_named(emulator: Emulator, name: str) -> list[dict[str, Any]]:
    return [lead for lead in emulator.org.leads.values() if lead["name"] == name]


def field_id(emulator: Emulator, object_type: str, name: str) -> str:
    for definition in emulator.org.fields_for(object_type):
        if definition["name"] == name:
            return str(definition["id"])
    raise KeyError(name)


class Requests:
    """Counts requests the emulator received after a mark (set-up requests excluded)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.start = len(emulator.request_log)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for entry in self.emulator.request_log[self.start :]
            if (method is None or entry.method == method) and (path is None or entry.path.startswith(path))
        )
