"""A page, its change-log rows and its stream state commit together or not at all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from closeflow.sync.store import ModelSpec, Store, StoreError
from closeflow.sync.store._base import SqlStore
from tests.sync.store._helpers import Ticks
from tests.sync.store.conftest import OpenStore


@pytest.fixture
def seeded(store: Store, tick: Ticks) -> Store:
    store.ensure_models([ModelSpec("leads", promoted=("status_id",))])
    store.commit_page(
        "leads",
        "leads",
        upserts=[{"id": "lead_a", "status_id": "s1"}, {"id": "lead_b", "status_id": "s1"}],
        state={"page": 1},
        now=tick(),
    )
    return store


def _fail_midway(monkeypatch: pytest.MonkeyPatch, store: Store, step: str, how: str) -> None:
    """Make one step of commit_page fail after the earlier steps have already run their SQL."""

    def broken(self: SqlStore, *args: Any) -> None:
        if how == "database":
            self._rows("INSERT INTO no_such_table (x) VALUES (1)")  # a real error from the database
        raise RuntimeError("injected failure")

    monkeypatch.setattr(type(store), step, broken)


@pytest.mark.parametrize(
    ("step", "how"),
    [
        ("_insert_changes", "python"),
        ("_write_state", "python"),
        ("_note_sync", "python"),
        ("_note_sync", "database"),
    ],
)
def test_a_failure_midway_leaves_rows_changes_and_state_as_they_were(
    seeded: Store, tick: Ticks, monkeypatch: pytest.MonkeyPatch, step: str, how: str
) -> None:
    page: dict[str, Any] = {
        "upserts": [{"id": "lead_a", "status_id": "s2"}, {"id": "lead_c", "status_id": "s1"}],
        "removals": ["lead_b"],
        "state": {"page": 2},
    }
    with monkeypatch.context() as patch:
        _fail_midway(patch, seeded, step, how)
        with pytest.raises(StoreError, match="the page for stream 'leads' was not stored") as failure:
            seeded.commit_page("leads", "leads", now=tick(), **page)
    assert "rolled back, nothing written" in str(failure.value)

    assert seeded.get("leads", "lead_a") == {"id": "lead_a", "status_id": "s1"}
    assert seeded.get("leads", "lead_c", include_deleted=True) is None
    assert list(seeded.live_ids("leads")) == ["lead_a", "lead_b"]
    assert seeded.last_seq() == 2
    assert seeded.state("leads") == {"page": 1}
    _, rows = seeded.query("SELECT id, status_id, deleted_at FROM leads ORDER BY id")
    assert rows == [("lead_a", "s1", None), ("lead_b", "s1", None)]

    # The same page retried commits normally, and the log has no gap where the failed attempt was.
    changes = seeded.commit_page("leads", "leads", now=tick(), **page)
    assert [(c.seq, c.record_id, c.kind) for c in changes] == [
        (3, "lead_a", "updated"),
        (4, "lead_c", "added"),
        (5, "lead_b", "removed"),
    ]
    assert seeded.state("leads") == {"page": 2}


def test_a_bad_state_refuses_the_page_before_anything_is_written(seeded: Store, tick: Ticks) -> None:
    with pytest.raises(StoreError, match="stream 'leads': its state is not plain JSON"):
        seeded.commit_page("leads", "leads", upserts=[{"id": "lead_z"}], state={"when": object()}, now=tick())

    assert seeded.get("leads", "lead_z") is None
    assert seeded.last_seq() == 2


def test_a_failed_first_page_of_a_stream_does_not_hide_it_from_models(
    store: Store, tick: Ticks, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ensure_models([ModelSpec("tasks")])
    with monkeypatch.context() as patch:
        _fail_midway(patch, store, "_write_state", "python")
        with pytest.raises(StoreError):
            store.commit_page("tasks", "tasks", upserts=[{"id": "task_1"}], state={"n": 1}, now=tick())

    store.commit_page("tasks", "tasks", upserts=[{"id": "task_1"}], state={"n": 1}, now=tick())

    [info] = store.models()
    assert (info.rows, info.cursor) == (1, {"tasks": {"n": 1}})


def test_two_writers_on_one_store_keep_the_change_log_gap_free(open_test_store: OpenStore) -> None:
    first, second = open_test_store(), open_test_store()
    first.ensure_models([ModelSpec("leads"), ModelSpec("contacts")])
    second.ensure_models([ModelSpec("leads"), ModelSpec("contacts")])
    now = Ticks()()

    def write(store: Store, model: str) -> list[int]:
        seqs = []
        for page in range(15):
            records = [{"id": f"{model}_{page}_{n}"} for n in range(7)]
            seqs += [c.seq for c in store.commit_page(model, model, upserts=records, now=now)]
        return seqs

    with ThreadPoolExecutor(max_workers=2) as pool:
        leads_seqs, contacts_seqs = pool.map(write, (first, second), ("leads", "contacts"))

    assert sorted(leads_seqs + contacts_seqs) == list(range(1, 211))
    assert [c.seq for c in first.changes()] == list(range(1, 211))
    for seqs in (leads_seqs, contacts_seqs):  # each commit's 7 seqs are consecutive
        assert all(seqs[i + 6] - seqs[i] == 6 for i in range(0, len(seqs), 7))
