"""Small look-ups the emulator tests share (custom field ids by name, status ids)."""

from __future__ import annotations

from typing import Any

from closeflow.emulator import Emulator


def field_id(emulator: Emulator, object_type: str, name: str) -> str:
    for definition in emulator.org.fields_for(object_type):
        if definition["name"] == name:
            return str(definition["id"])
    raise KeyError(name)


def status(emulator: Emulator, label: str) -> dict[str, Any]:
    found = emulator.org.find_lead_status(label=label)
    assert found is not None
    return found
