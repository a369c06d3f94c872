"""A plain-dict SearchSource for the search tests (no Organization involved)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DictSource:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {"lead": {}, "contact": {}, "opportunity": {}}
        self.fields: dict[str, dict[str, Any]] = {}
        self.scans = 0

    def add(self, object_type: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records[object_type][record["id"]] = record
        return record

    def objects(self, object_type: str) -> Iterable[dict[str, Any]]:
        self.scans += 1
        return list(self.records[object_type].values())

    def get(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        return self.records[object_type].get(object_id)

    def children(self, lead_id: str, object_type: str) -> Iterable[dict[str, Any]]:
        return [r for r in self.records[object_type].values() if r.get("lead_id") == lead_id]

    def custom_field(self, field_id: str) -> dict[str, Any] | None:
        return self.fields.get(field_id)


def date(day: int, hour: int = 0) -> str:
    return f"2025-01-{day:02d}T{hour:02d}:00:00.000000+00:00"


def bluth_source() -> DictSource:
    """Three leads, four contacts, two opportunities, two custom fields."""
    s = DictSource()
    s.fields["cf_segment"] = {
        "id": "cf_segment",
        "name": "Segment",
        "type": "choices",
        "accepts_multiple_values": True,
        "choices": ["SMB", "Enterprise"],
    }
    s.fields["cf_seats"] = {
        "id": "cf_seats",
        "name": "Seats",
        "type": "number",
        "accepts_multiple_values": False,
        "choices": None,
    }
    s.add(
        "lead",
        {
            "id": "lead_a",
            "name": "Bluth Company",
            "display_name": "Bluth Company",
            "description": "Frozen banana stand",
            "url": "https://bluth.example",
            "status_id": "stat_potential",
            "date_created": date(1),
            "date_updated": date(5),
            "created_by": "user_me",
            "is_vip": True,
            "addresses": [{"city": "Newport Beach", "state": "CA", "country": "US"}],
            "custom.cf_segment": ["SMB", "Enterprise"],
            "custom.cf_seats": 12,
        },
    )
    s.add(
        "lead",
        {
            "id": "lead_b",
            "name": "Sitwell Enterprises",
            "display_name": "Sitwell Enterprises",
            "description": None,
            "status_id": "stat_won",
            "date_created": date(2),
            "date_updated": date(3),
            "created_by": "user_other",
            "is_vip": False,
            "addresses": [],
            "custom.cf_segment": ["SMB"],
            "custom.cf_seats": 250,
        },
    )
    s.add(
        "lead",
        {
            "id": "lead_c",
            "name": "",
            "display_name": "Untitled",
            "status_id": "stat_potential",
            "date_created": date(2),
            "date_updated": date(9),
            "created_by": None,
            "addresses": [],
        },
    )
    s.add(
        "contact",
        {
            "id": "cont_gob",
            "lead_id": "lead_a",
            "name": "Gob Bluth",
            "title": "Sr. Vice President",
            "date_created": date(1, 1),
            "emails": [{"email": "gob@example.com", "type": "office"}],
            "phones": [{"phone": "+18004445555", "type": "office"}],
            "urls": [],
        },
    )
    s.add(
        "contact",
        {
            "id": "cont_michael",
            "lead_id": "lead_a",
            "name": "Michael Bluth",
            "title": "President",
            "date_created": date(1, 2),
            "emails": [
                {"email": "michael@example.com", "type": "office"},
                {"email": "mb@home.example", "type": "home"},
            ],
            "phones": [],
            "urls": [{"url": "https://michael.example", "type": "url"}],
        },
    )
    s.add(
        "contact",
        {
            "id": "cont_lucille",
            "lead_id": "lead_b",
            "name": "Lucille Austero",
            "title": None,
            "date_created": date(2, 1),
            "emails": [],
            "phones": [{"phone": "+14155550100"}],
            "urls": [],
        },
    )
    s.add(
        "contact",
        {
            "id": "cont_bob",
            "lead_id": "lead_c",
            "name": "Bob Loblaw",
            "title": "Attorney",
            "date_created": date(3),
            "emails": [],
            "phones": [],
            "urls": [],
        },
    )
    s.add(
        "opportunity",
        {
            "id": "oppo_1",
            "lead_id": "lead_a",
            "value": 50_000,
            "status_id": "stat_active",
            "date_created": date(4),
            "user_id": "user_me",
            "note": "banana deal",
        },
    )
    s.add(
        "opportunity",
        {
            "id": "oppo_2",
            "lead_id": "lead_b",
            "value": 900,
            "status_id": "stat_lost",
            "date_created": date(6),
            "user_id": "user_other",
            "note": None,
        },
    )
    return s
