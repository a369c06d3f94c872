"""open_store(create=False): reading commands open an existing store, and a mistyped name is an error
that leaves nothing behind (no empty file, no empty schema)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from closeflow.sync.store import ModelSpec, StoreError, open_store
from tests.sync.store.conftest import POSTGRES_URL, READ_ROLE


def test_sqlite_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"

    with pytest.raises(StoreError, match=r"no store at '.*typo\.db'.*check the path"):
        open_store(str(missing), create=False)

    assert not missing.exists()


def test_sqlite_existing_store_opens_for_reading(tmp_path: Path) -> None:
    path = str(tmp_path / "crm.db")
    open_store(path).close()

    store = open_store(path, create=False)
    try:
        assert store.models() == []
    finally:
        store.close()


def test_postgres_missing_schema_is_refused_and_not_created(pg_schema: str) -> None:
    with pytest.raises(StoreError, match=f"no closeflow store in schema '{pg_schema}'"):
        open_store(POSTGRES_URL, schema=pg_schema, read_role=READ_ROLE, create=False)

    with psycopg.connect(POSTGRES_URL) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (pg_schema,)).fetchall()
    assert found == []


def test_postgres_existing_store_opens_for_reading(pg_schema: str) -> None:
    open_store(POSTGRES_URL, schema=pg_schema).close()
    writer = open_store(POSTGRES_URL, schema=pg_schema)
    writer.ensure_models([ModelSpec("leads")])
    writer.close()

    store = open_store(POSTGRES_URL, schema=pg_schema, read_role=READ_ROLE, create=False)
    try:
        assert [info.name for info in store.models()] == ["leads"]
        assert store.query("SELECT COUNT(*) FROM leads")[1] == [(0,)]
    finally:
        store.close()
