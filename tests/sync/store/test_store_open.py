"""open_store(): where a store lives, and what happens when it cannot be opened."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from closeflow.sync.store import ModelSpec, StoreError, open_store
from closeflow.sync.store._postgres import redact_url
from tests.sync.store._helpers import Ticks
from tests.sync.store.conftest import POSTGRES_URL, READ_ROLE


def test_no_target_means_closeflow_db_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store()
    store.close()

    assert (tmp_path / "closeflow.db").is_file()


def test_sqlite_urls_and_paths_with_odd_characters_open_the_same_file(tmp_path: Path, tick: Ticks) -> None:
    path = tmp_path / "a folder" / "my store #1?.db"
    path.parent.mkdir()
    first = open_store(f"sqlite:///{path}")
    first.ensure_models([ModelSpec("leads")])
    first.commit_page("leads", "leads", upserts=[{"id": "lead_a"}], now=tick())
    first.close()

    again = open_store(str(path))
    assert again.dialect == "sqlite"
    assert again.query("SELECT id FROM leads")[1] == [("lead_a",)]
    again.close()


def test_a_memory_store_works_including_its_query_path(tick: Ticks) -> None:
    store = open_store(":memory:")
    store.ensure_models([ModelSpec("leads")])
    store.commit_page("leads", "leads", upserts=[{"id": "lead_a"}], now=tick())

    assert store.query("SELECT id FROM leads")[1] == [("lead_a",)]
    with pytest.raises(StoreError, match="read-only"):
        store.query("DELETE FROM leads")
    store.close()


@pytest.mark.parametrize(
    ("target", "schema", "message"),
    [
        ("mysql://host/db", None, "unsupported store URL scheme 'mysql'"),
        ("closeflow.db", "crm", "schema= applies to Postgres only; a SQLite store is one file"),
        ("/no/such/folder/closeflow.db", None, "the folder /no/such/folder does not exist"),
    ],
)
def test_unusable_targets_are_refused_with_the_reason(target: str, schema: str | None, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(target, schema=schema)


def test_a_newer_schema_version_is_refused_rather_than_misread(tmp_path: Path) -> None:
    path = str(tmp_path / "future.db")
    open_store(path).close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")

    with pytest.raises(StoreError, match="schema version 99, written by a newer closeflow"):
        open_store(path)


def test_connection_failures_never_show_the_password() -> None:
    url = "postgresql://alice:s3cret-pw@127.0.0.1:1/db?password=also-s3cret"

    with pytest.raises(StoreError) as failure:
        open_store(url)

    text = str(failure.value) + repr(failure.value)
    assert "cannot connect to Postgres at postgresql://alice:***@127.0.0.1:1/db?password=***" in text
    assert "s3cret" not in text
    assert failure.value.__suppress_context__  # the driver's own error is not chained into tracebacks


def test_redact_url_keeps_everything_but_secrets() -> None:
    assert (
        redact_url("postgres://bob@db:5432/crm?sslmode=require")
        == "postgres://bob@db:5432/crm?sslmode=require"
    )
    assert redact_url("postgresql://bob:pw@db/crm") == "postgresql://bob:***@db/crm"


@pytest.fixture
def two_schemas() -> Iterator[tuple[str, str]]:
    from tests.sync.store.conftest import require_postgres  # also creates READ_ROLE

    require_postgres()
    names = (f"closeflow_test_{uuid.uuid4().hex[:12]}", f"closeflow_test_{uuid.uuid4().hex[:12]}")
    yield names
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def test_postgres_schemas_are_picked_by_parameter_or_url_and_kept_apart(
    two_schemas: tuple[str, str], tick: Ticks
) -> None:
    one, two = two_schemas
    by_parameter = open_store(POSTGRES_URL, schema=one)
    separator = "&" if "?" in POSTGRES_URL else "?"
    by_url = open_store(f"{POSTGRES_URL}{separator}schema={two}&read_role={READ_ROLE}")
    for store in (by_parameter, by_url):
        store.ensure_models([ModelSpec("leads")])
    by_parameter.commit_page("leads", "leads", upserts=[{"id": "lead_one"}], now=tick())
    by_url.commit_page("leads", "leads", upserts=[{"id": "lead_two"}], now=tick())

    assert list(by_parameter.live_ids("leads")) == ["lead_one"]
    assert by_url.query("SELECT id FROM leads")[1] == [("lead_two",)]
    assert [c.seq for c in by_url.changes()] == [1]  # each schema has its own change log
    assert "s3cret" not in repr(by_url) and two in repr(by_url)
    with psycopg.connect(POSTGRES_URL) as conn:
        tables = conn.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'leads' AND table_schema = ANY(%s)",
            (list(two_schemas),),
        ).fetchall()
    assert sorted(schema for (schema,) in tables) == sorted(two_schemas)
    by_parameter.close()
    by_url.close()


def test_postgres_tests_can_be_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI sets CLOSEFLOW_REQUIRE_POSTGRES=1: an unreachable Postgres must then fail, not skip."""
    from tests.sync.store import conftest

    monkeypatch.setattr(conftest, "_postgres_problem", lambda: "Postgres at x is unreachable")
    monkeypatch.setenv("CLOSEFLOW_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="CLOSEFLOW_REQUIRE_POSTGRES=1 but Postgres at x"):
        conftest.require_postgres()
    monkeypatch.delenv("CLOSEFLOW_REQUIRE_POSTGRES")
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        conftest.require_postgres()
    assert os.environ.get("CLOSEFLOW_REQUIRE_POSTGRES") is None
