"""commit_page: every committed page logs exactly the records that were added, updated or removed."""

from __future__ import annotations

from typing import Any

import pytest

from closeflow.sync.store import Change, ModelSpec, Store, StoreError
from tests.sync.store._helpers import Ticks

AT = "2026-12-04T20:11:36.123456+00:00"


def lead(lead_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": lead_id, "display_name": f"Lead {lead_id}", "status_id": "stat_1", **fields}


@pytest.fixture
def leads(store: Store) -> Store:
    store.ensure_models([ModelSpec("leads", promoted=("date_updated", "status_id"))])
    return store


def test_new_records_are_added_with_every_field(leads: Store, tick: Ticks) -> None:
    changes = leads.commit_page("leads", "leads", upserts=[lead("lead_a"), lead("lead_b", x=1)], now=tick())

    assert changes == [
        Change(1, "leads", "lead_a", "added", ["display_name", "id", "status_id"], None, lead("lead_a"), AT),
        Change(
            2,
            "leads",
            "lead_b",
            "added",
            ["display_name", "id", "status_id", "x"],
            None,
            lead("lead_b", x=1),
            AT,
        ),
    ]
    assert leads.get("leads", "lead_b") == lead("lead_b", x=1)
    assert leads.changes() == changes


def test_an_update_lists_only_changed_fields_with_their_old_and_new_values(leads: Store, tick: Ticks) -> None:
    leads.commit_page("leads", "leads", upserts=[lead("lead_a", tags=["x"], gone=1)], now=tick())

    changes = leads.commit_page(
        "leads", "leads", upserts=[lead("lead_a", tags=["x", "y"], status_id="stat_2", new=None)], now=tick()
    )

    assert [(c.seq, c.kind, c.changed_fields, c.before, c.after) for c in changes] == [
        (
            2,
            "updated",
            ["gone", "new", "status_id", "tags"],
            {"gone": 1, "new": None, "status_id": "stat_1", "tags": ["x"]},
            {"gone": None, "new": None, "status_id": "stat_2", "tags": ["x", "y"]},
        )
    ]
    assert leads.get("leads", "lead_a") == lead("lead_a", tags=["x", "y"], status_id="stat_2", new=None)


def test_an_unchanged_page_writes_no_change_rows(leads: Store, tick: Ticks) -> None:
    page = [lead(f"lead_{n}", n=n, nested={"a": [1, 2]}) for n in range(50)]
    leads.commit_page("leads", "leads", upserts=page, now=tick())

    reordered = [
        dict(reversed(list(record.items()))) for record in reversed(page)
    ]  # key order is not content
    assert leads.commit_page("leads", "leads", upserts=reordered, now=tick()) == []
    assert leads.last_seq() == 50
    assert len(leads.changes()) == 50


def test_one_changed_record_in_an_otherwise_unchanged_page_is_the_only_change(
    leads: Store, tick: Ticks
) -> None:
    page = [lead(f"lead_{n}", n=n) for n in range(20)]
    leads.commit_page("leads", "leads", upserts=page, now=tick())
    page[7] = lead("lead_7", n=700)

    changes = leads.commit_page("leads", "leads", upserts=page, now=tick())

    assert [(c.record_id, c.kind, c.changed_fields, c.before, c.after) for c in changes] == [
        ("lead_7", "updated", ["n"], {"n": 7}, {"n": 700})
    ]


def test_removal_tombstones_a_live_record_and_logs_its_last_value(leads: Store, tick: Ticks) -> None:
    leads.commit_page("leads", "leads", upserts=[lead("lead_a"), lead("lead_b")], now=tick())

    changes = leads.commit_page("leads", "leads", removals=["lead_a", "lead_unknown"], now=tick())

    assert [(c.seq, c.record_id, c.kind, c.changed_fields, c.before, c.after) for c in changes] == [
        (3, "lead_a", "removed", [], lead("lead_a"), None)
    ]
    assert list(leads.live_ids("leads")) == ["lead_b"]
    assert leads.get("leads", "lead_a") is None
    assert leads.get("leads", "lead_a", include_deleted=True) == lead("lead_a")
    assert leads.commit_page("leads", "leads", removals=["lead_a"], now=tick()) == []  # already removed


def test_a_removed_record_that_comes_back_is_added_again(leads: Store, tick: Ticks) -> None:
    leads.commit_page("leads", "leads", upserts=[lead("lead_a")], now=tick())
    leads.commit_page("leads", "leads", removals=["lead_a"], now=tick())

    same = leads.commit_page("leads", "leads", upserts=[lead("lead_a")], now=tick())

    assert [(c.seq, c.kind, c.before, c.after) for c in same] == [(3, "added", None, lead("lead_a"))]
    assert list(leads.live_ids("leads")) == ["lead_a"]
    assert leads.models()[0].deleted == 0


def test_seq_is_contiguous_within_a_commit_and_increases_across_commits(leads: Store, tick: Ticks) -> None:
    seqs: list[list[int]] = []
    for round_ in range(4):
        page = [lead(f"lead_{n}", round=round_ if n % 2 else 0) for n in range(30)]
        removals = [f"lead_{n}" for n in range(25, 30)] if round_ == 3 else []
        seqs.append(
            [c.seq for c in leads.commit_page("leads", "leads", upserts=page, removals=removals, now=tick())]
        )

    assert [len(s) for s in seqs] == [30, 15, 15, 20]  # 15 odd ids change each round; round 3 removes 5
    flat = [seq for commit in seqs for seq in commit]
    assert flat == list(range(1, 81))
    assert [c.seq for c in leads.changes()] == flat


def test_a_repeated_id_in_one_page_counts_once_and_the_last_copy_wins(leads: Store, tick: Ticks) -> None:
    changes = leads.commit_page(
        "leads", "leads", upserts=[lead("lead_a", v=1), lead("lead_a", v=2)], now=tick()
    )

    assert [(c.record_id, c.after) for c in changes] == [("lead_a", lead("lead_a", v=2))]


def test_state_is_saved_with_the_page_and_replaced_by_the_next(leads: Store, tick: Ticks) -> None:
    leads.commit_page(
        "leads", "leads", upserts=[lead("lead_a")], state={"after": "2026-01-01", "n": 1}, now=tick()
    )
    leads.commit_page("contacts_of_leads", "leads", state={"cursor": None}, now=tick())
    leads.commit_page("leads", "leads", upserts=[lead("lead_b")], now=tick())  # no state: keeps the last one

    assert leads.state("leads") == {"after": "2026-01-01", "n": 1}
    assert leads.state("never") is None
    leads.commit_page("leads", "leads", state={"after": "2026-02-01"}, now=tick())
    assert leads.all_states() == {"contacts_of_leads": {"cursor": None}, "leads": {"after": "2026-02-01"}}


def test_commit_times_are_utc_iso_8601_with_microseconds(leads: Store) -> None:
    from datetime import datetime, timedelta, timezone

    berlin = datetime(2026, 12, 4, 21, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    [change] = leads.commit_page("leads", "leads", upserts=[lead("lead_a")], now=berlin)

    assert change.at == "2026-12-04T20:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("upserts", "message"),
    [
        ([{"display_name": "no id"}], "upsert #1 has no string 'id'"),
        ([lead("lead_a"), {"id": 7}], "upsert #2 has no string 'id'"),
        ([lead("lead_a", score=float("nan"))], "lead_a: the record is not plain JSON"),
        ([lead("lead_a", when=object())], "lead_a: the record is not plain JSON"),
    ],
)
def test_a_bad_record_refuses_the_whole_page(
    leads: Store, tick: Ticks, upserts: list[Any], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        leads.commit_page("leads", "leads", upserts=[lead("lead_ok"), *upserts], state={"s": 1}, now=tick())

    assert leads.last_seq() == 0
    assert list(leads.live_ids("leads")) == []
    assert leads.state("leads") is None


def test_commit_needs_a_known_model_and_an_aware_time(leads: Store, tick: Ticks) -> None:
    from datetime import datetime

    with pytest.raises(StoreError, match=r"unknown model 'contacts' \(known: leads\); call ensure_models"):
        leads.commit_page("contacts", "contacts", upserts=[lead("cont_a")], now=tick())
    with pytest.raises(StoreError, match="timezone-aware"):
        leads.commit_page("leads", "leads", upserts=[lead("lead_a")], now=datetime(2026, 1, 1))
    with pytest.raises(StoreError, match="removals must be a sequence of record ids"):
        leads.commit_page("leads", "leads", removals="lead_a", now=tick())


def test_models_of_different_names_keep_separate_records_and_one_change_log(
    store: Store, tick: Ticks
) -> None:
    store.ensure_models([ModelSpec("leads"), ModelSpec("contacts", promoted=("lead_id",))])
    store.commit_page("leads", "leads", upserts=[{"id": "same"}], now=tick())
    store.commit_page("contacts", "contacts", upserts=[{"id": "same", "lead_id": "lead_a"}], now=tick())

    assert [(c.seq, c.model) for c in store.changes()] == [(1, "leads"), (2, "contacts")]
    assert store.get("leads", "same") == {"id": "same"}
    assert store.get("contacts", "same") == {"id": "same", "lead_id": "lead_a"}


def test_a_nul_character_never_blocks_a_page_and_resending_it_is_no_change(leads: Store, tick: Ticks) -> None:
    record = lead("lead_nul", note="before\x00after", status_id="st\x00")

    [added] = leads.commit_page("leads", "leads", upserts=[record], now=tick())

    assert added.kind == "added"
    stored = leads.get("leads", "lead_nul")
    assert stored is not None
    # Postgres' jsonb and text cannot hold U+0000: it is stored as U+FFFD there; SQLite keeps it.
    expected = "before\x00after" if leads.dialect == "sqlite" else "before\ufffdafter"
    assert stored["note"] == expected
    assert leads.commit_page("leads", "leads", upserts=[record], now=tick()) == []
