"""Reading the store back: ids, records, the change log by offset, per-model summaries, persistence."""

from __future__ import annotations

import pytest

from closeflow.sync.store import ModelInfo, ModelSpec, Store, StoreError
from tests.sync.store._helpers import Ticks
from tests.sync.store.conftest import OpenStore


def test_live_ids_stream_in_python_sort_order_across_batches(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("contacts")])
    odd = [
        "cont_Zeta",
        "cont_alpha",
        "cont_Émile",
        "cont_émile",
        "cont_10",
        "cont_9",
        "cont_a b",
        "cont_日本",
    ]
    many = [f"cont_{n:05d}" for n in range(4500)]  # more than two keyset batches
    for start in range(0, len(many), 1000):
        store.commit_page(
            "contacts", "contacts", upserts=[{"id": i} for i in many[start : start + 1000]], now=tick()
        )
    store.commit_page(
        "contacts", "contacts", upserts=[{"id": i} for i in odd], removals=["cont_00007"], now=tick()
    )

    ids = list(store.live_ids("contacts"))

    assert ids == sorted(set(odd + many) - {"cont_00007"})
    assert len(ids) == 4507


def test_changes_page_by_offset_and_filter_by_model(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("leads"), ModelSpec("tasks")])
    for n in range(5):
        store.commit_page("leads", "leads", upserts=[{"id": f"lead_{n}"}], now=tick())
        store.commit_page("tasks", "tasks", upserts=[{"id": f"task_{n}"}], now=tick())

    assert [c.seq for c in store.changes(since=7)] == [8, 9, 10]
    assert [c.seq for c in store.changes(limit=3)] == [1, 2, 3]
    assert [(c.seq, c.record_id) for c in store.changes(since=2, model="tasks", limit=2)] == [
        (4, "task_1"),
        (6, "task_2"),
    ]
    pages, since = [], 0
    while page := store.changes(since=since, model="leads", limit=2):
        pages.append([c.record_id for c in page])
        since = page[-1].seq
    assert pages == [["lead_0", "lead_1"], ["lead_2", "lead_3"], ["lead_4"]]
    assert store.changes(since=10) == []
    with pytest.raises(StoreError, match="limit must be at least 1"):
        store.changes(limit=0)


def test_changes_read_back_equal_what_the_commit_returned(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("leads")])
    record = {
        "id": "lead_a",
        "name": "Ünïcode ✓ \"quoted\" 'single'",
        "nested": {"list": [1, 2.5, None, True]},
    }
    made = store.commit_page("leads", "leads", upserts=[record], now=tick())
    made += store.commit_page("leads", "leads", upserts=[{**record, "name": "B"}], now=tick())
    made += store.commit_page("leads", "leads", removals=["lead_a"], now=tick())

    assert store.changes() == made
    assert [c.as_dict()["kind"] for c in made] == ["added", "updated", "removed"]


def test_models_report_rows_tombstones_last_sync_and_cursors(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("activities", promoted=("_type",)), ModelSpec("users")])
    store.commit_page("activities", "activities", upserts=[{"id": f"acti_{n}"} for n in range(3)], now=tick())
    last = tick()
    store.commit_page("events", "activities", removals=["acti_1"], state={"cursor": "c1"}, now=last)
    store.commit_page("activities", "activities", state={"date_created": "2026-01-01"}, now=last)

    assert store.models() == [
        ModelInfo(
            "activities",
            rows=2,
            deleted=1,
            last_sync="2026-12-04T20:11:37.123456+00:00",
            cursor={"activities": {"date_created": "2026-01-01"}, "events": {"cursor": "c1"}},
        ),
        ModelInfo("users", rows=0, deleted=0, last_sync=None, cursor=None),
    ]


def test_a_reopened_store_has_everything_that_was_committed(open_test_store: OpenStore, tick: Ticks) -> None:
    first = open_test_store()
    first.ensure_models([ModelSpec("leads", promoted=("status_id",))])
    first.commit_page(
        "leads", "leads", upserts=[{"id": "lead_a", "status_id": "s"}], state={"k": 1}, now=tick()
    )
    first.close()

    again = open_test_store()
    again.ensure_models([ModelSpec("leads", promoted=("status_id",))])  # idempotent

    assert again.get("leads", "lead_a") == {"id": "lead_a", "status_id": "s"}
    assert again.state("leads") == {"k": 1}
    assert [c.seq for c in again.commit_page("leads", "leads", upserts=[{"id": "lead_b"}], now=tick())] == [2]


def test_a_model_written_by_another_connection_is_found_without_reopening(
    open_test_store: OpenStore, tick: Ticks
) -> None:
    reader, writer = open_test_store(), open_test_store()
    writer.ensure_models([ModelSpec("pipelines")])
    writer.commit_page("pipelines", "pipelines", upserts=[{"id": "pipe_1"}], now=tick())

    assert reader.get("pipelines", "pipe_1") == {"id": "pipe_1"}


def test_a_new_promoted_key_becomes_a_column_filled_for_existing_rows(store: Store, tick: Ticks) -> None:
    store.ensure_models([ModelSpec("opportunities", promoted=("lead_id",))])
    store.commit_page(
        "opportunities",
        "opportunities",
        upserts=[{"id": "oppo_1", "lead_id": "lead_a", "value": 500}, {"id": "oppo_2", "lead_id": "lead_b"}],
        now=tick(),
    )

    store.ensure_models([ModelSpec("opportunities", promoted=("lead_id", "value", "status_id"))])

    _, rows = store.query('SELECT id, lead_id, "value", status_id FROM opportunities ORDER BY id')
    assert rows == [("oppo_1", "lead_a", "500", None), ("oppo_2", "lead_b", None, None)]
    store.commit_page(
        "opportunities", "opportunities", upserts=[{"id": "oppo_3", "status_id": "st"}], now=tick()
    )
    _, rows = store.query("SELECT status_id FROM opportunities WHERE id = 'oppo_3'")
    assert rows == [("st",)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ModelSpec("Leads"), "model name 'Leads' is not usable as a table"),
        (ModelSpec("change_log"), "model name 'change_log' is not usable as a table"),
        (ModelSpec("leads; drop"), "is not usable as a table"),
        (ModelSpec("leads", promoted=("deleted_at",)), "promoted key 'deleted_at' cannot be a column"),
        (ModelSpec("leads", promoted=("custom.cf_x",)), "promoted key 'custom.cf_x' cannot be a column"),
    ],
)
def test_unusable_model_specs_are_refused_with_the_reason(
    store: Store, spec: ModelSpec, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        store.ensure_models([ModelSpec("fine"), spec])

    assert store.models() == []  # checked before anything is created


def test_reading_an_unknown_model_names_the_known_ones(store: Store) -> None:
    store.ensure_models([ModelSpec("leads")])

    with pytest.raises(StoreError, match=r"unknown model 'lead' \(known: leads\)"):
        list(store.live_ids("lead"))
