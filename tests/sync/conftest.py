"""Fixtures for the sync engine's tests: a real store (SQLite file and a fresh Postgres database
per test), an emulator on a fake clock, and a client that shares that clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from closeflow._clock import FakeClock
from closeflow.sync import Store, open_store
from tests.sync.store.conftest import READ_ROLE, ensure_read_role

POSTGRES_URL = os.environ.get("CLOSEFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_schema() -> Iterator[str]:
    """A store URL in a schema of its own (dropped after the test), or a skip saying why not."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        if os.environ.get("CLOSEFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CLOSEFLOW_REQUIRE_POSTGRES=1 but Postgres is unreachable: {exc}")
        pytest.skip(f"Postgres unreachable ({exc}); set CLOSEFLOW_TEST_POSTGRES to run these tests on it")
    schema = f"closeflow_sync_{uuid.uuid4().hex[:12]}"
    try:
        ensure_read_role(POSTGRES_URL)
        yield f"{POSTGRES_URL}?schema={schema}&read_role={READ_ROLE}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("store") / "closeflow.db")
    else:
        yield from _postgres_schema()


@pytest.fixture
def store(store_target: str) -> Iterator[Store]:
    opened = open_store(store_target)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
