"""Model views: live records only, one typed column per field, any human name made safe and unique."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from closeflow.sync.store import ModelSpec, Store, StoreError, ViewColumn
from closeflow.sync.store._names import unique_names
from tests.sync.store._helpers import Ticks

LONG = "A custom field whose name goes on and on well past what Postgres keeps"  # 70 bytes


def _plain(value: Any) -> Any:
    """One spelling for both backends' native values (SQLite text/1/0, Postgres date/numeric/jsonb)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


@pytest.fixture
def leads(store: Store, tick: Ticks) -> Store:
    store.ensure_models([ModelSpec("leads", promoted=("status_id",))])
    store.commit_page(
        "leads",
        "leads",
        upserts=[
            {
                "id": "lead_1",
                "status_id": "s",
                "display_name": "Acme",
                "custom.cf_src": "Web",
                "custom.cf_n": 12,
            },
            {"id": "lead_2", "display_name": "Gone"},
        ],
        now=tick(),
    )
    store.commit_page("leads", "leads", removals=["lead_2"], now=tick())
    return store


def test_awkward_names_become_distinct_quoted_columns(leads: Store) -> None:
    names = [
        "Lead Source",
        "lead source",
        "id",
        "status_id",
        'Owner\'s "Tier"',
        "select",
        "Größe",
        "  spaced\tname\n",
        "",
        "Is VIP?",
        "50% done",
        LONG,
        LONG + " (copy)",
        "日本語の名前",
    ]
    leads.rebuild_view("leads", "leads_view", [ViewColumn(name, "custom.cf_src", "text") for name in names])

    columns, rows = leads.query('SELECT * FROM "leads_view"')

    long_cut = LONG[:63]
    assert columns == [
        "id",
        "status_id",
        "Lead Source",
        "lead source_2",
        "id_2",
        "status_id_2",
        'Owner\'s "Tier"',
        "select",
        "Größe",
        "spaced name",
        "column",
        "Is VIP?",
        "50% done",
        long_cut,
        long_cut[:61] + "_2",
        "日本語の名前",
    ]
    assert rows == [("lead_1", "s", *["Web"] * 14)]  # lead_2 is a tombstone: not in the view
    assert all(len(name.encode()) <= 63 for name in columns)


def test_unique_names_are_deterministic_and_respect_byte_limits() -> None:
    wanted = ["Größe", "GRÖSSE", "größe", "é" * 40, "é" * 40]
    first = unique_names(wanted, ["id"])

    assert first == unique_names(wanted, ["id"])
    # Case-folded, "Größe" and "GRÖSSE" are one name (SQLite would call some such pairs duplicates).
    assert first[:3] == ["Größe", "GRÖSSE_2", "größe_3"]
    assert first[3] == "é" * 31 and first[4] == "é" * 30 + "_2"


def test_values_are_typed_and_bad_values_become_null(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("opportunities")])
    good = {
        "id": "oppo_good",
        "n": 1.5,
        "d": "2026-01-15",
        "t": "2026-01-15T10:00:00.123000+02:00",
        "b": True,
        "j": {"a": [1, 2]},
        "s": "text",
    }
    odd = {
        "id": "oppo_odd",
        "n": 7,
        "d": "2026-01-15T23:30:00+00:00",
        "t": "2026-01-15T10:00:00",
        "b": False,
        "s": 5,
    }
    bad = {
        "id": "oppo_bad",
        "n": "12 thousand",
        "d": "2026-02-30",
        "t": "yesterday",
        "b": "yes",
        "j": None,
        "s": True,
    }
    worse = {
        "id": "oppo_worse",
        "n": True,
        "d": 20260115,
        "t": "2026-13-01T00:00:00Z",
        "b": 1,
        "j": "str",
        "s": None,
    }
    store.commit_page("opportunities", "opportunities", upserts=[good, odd, bad, worse], now=tick())
    columns = [
        ViewColumn("Amount", "n", "number"),
        ViewColumn("Close date", "d", "date"),
        ViewColumn("Updated", "t", "datetime"),
        ViewColumn("Won?", "b", "boolean"),
        ViewColumn("Extra", "j", "json"),
        ViewColumn("Note", "s", "text"),
        ViewColumn("Missing", "nowhere", "number"),
    ]
    store.rebuild_view("opportunities", "opportunities_view", columns)

    _, rows = store.query("SELECT * FROM opportunities_view ORDER BY id")
    plain = [tuple(_plain(value) for value in row) for row in rows]
    if store.dialect == "sqlite":  # SQLite hands JSON back as text; psycopg decodes jsonb itself
        plain = [(*row[:5], None if row[5] is None else json.loads(row[5]), *row[6:]) for row in plain]

    assert plain == [
        ("oppo_bad", None, None, None, None, None, "true", None),
        ("oppo_good", 1.5, "2026-01-15", "2026-01-15T08:00:00.123Z", True, {"a": [1, 2]}, "text", None),
        ("oppo_odd", 7, "2026-01-15", "2026-01-15T10:00:00.000Z", False, None, "5", None),
        ("oppo_worse", None, None, None, None, "str", None, None),
    ]


def test_numbers_dates_and_booleans_compare_as_their_types(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("leads")])
    store.commit_page(
        "leads",
        "leads",
        upserts=[{"id": f"lead_{n}", "n": n, "d": f"2026-01-{n:02d}", "b": n % 2 == 0} for n in (2, 9, 10)],
        now=tick(),
    )
    store.rebuild_view(
        "leads",
        "v",
        [ViewColumn("n", "n", "number"), ViewColumn("d", "d", "date"), ViewColumn("b", "b", "boolean")],
    )

    _, by_number = store.query("SELECT id FROM v WHERE n > 5 ORDER BY n")
    _, by_date = store.query("SELECT id FROM v ORDER BY d DESC")
    _, count = store.query("SELECT COUNT(*) FROM v WHERE b = (1 = 1)")

    assert by_number == [("lead_9",), ("lead_10",)]
    assert by_date == [("lead_10",), ("lead_9",), ("lead_2",)]
    assert count == [(2,)]


def test_rebuilding_replaces_the_columns(leads: Store) -> None:
    leads.rebuild_view("leads", "leads_view", [ViewColumn("Source", "custom.cf_src", "text")])
    leads.rebuild_view("leads", "leads_view", [ViewColumn("Count", "custom.cf_n", "number")])

    columns, rows = leads.query("SELECT * FROM leads_view")

    assert columns == ["id", "status_id", "Count"]
    assert [(row[0], _plain(row[2])) for row in rows] == [("lead_1", 12)]


def test_a_view_cannot_take_the_name_of_a_table(leads: Store) -> None:
    for name in ("leads", "change_log", "LEADS"):
        with pytest.raises(StoreError, match=f"view name '{name}' is already a table of the store"):
            leads.rebuild_view("leads", name, [])
    with pytest.raises(StoreError, match="must be printable, without surrounding spaces"):
        leads.rebuild_view("leads", " leads_view", [])
    with pytest.raises(StoreError, match="unknown model 'nope'"):
        leads.rebuild_view("nope", "nope_view", [])

    assert leads.get("leads", "lead_1") is not None  # the table is untouched
