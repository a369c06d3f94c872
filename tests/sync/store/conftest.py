"""A ``store`` fixture parametrized over SQLite (a file in tmp_path) and the machine's real Postgres
(a fresh schema per test, dropped afterwards), so every store test states behaviour both backends keep.

Postgres comes from ``CLOSEFLOW_TEST_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432/test).
When it cannot be reached the Postgres half skips with the reason, unless CLOSEFLOW_REQUIRE_POSTGRES=1
(CI), where it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import cache

import psycopg
import pytest

from closeflow.sync.store import Store, open_store
from closeflow.sync.store._postgres import redact_url
from tests.sync.store._helpers import Ticks

POSTGRES_URL = os.environ.get("CLOSEFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# The tests connect as a superuser, whose query path must read as a read-only role (made here).
READ_ROLE = "closeflow_test_reader"

OpenStore = Callable[[], Store]


@cache
def _postgres_problem() -> str | None:
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        return f"Postgres at {redact_url(POSTGRES_URL)} is unreachable ({exc}); set CLOSEFLOW_TEST_POSTGRES"
    return None


def require_postgres() -> str:
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CLOSEFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CLOSEFLOW_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    ensure_read_role(POSTGRES_URL)
    return POSTGRES_URL


@cache
def ensure_read_role(url: str) -> None:
    """Create the cluster-wide read-only role the query path reads as (kept: other runs share it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READ_ROLE,)).fetchone() is None:
            with suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                conn.execute(f'CREATE ROLE "{READ_ROLE}" NOLOGIN')


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A unique, empty Postgres schema, dropped (with everything in it) after the test."""
    url = require_postgres()
    schema = f"closeflow_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def open_test_store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[OpenStore]:
    """Opens (or re-opens) the same store, as a new process would; every store opened is closed after."""
    opened: list[Store] = []
    if request.param == "sqlite":
        path = os.path.join(tmp_path, "closeflow.db")

        def open_it() -> Store:
            opened.append(open_store(path))
            return opened[-1]

    else:
        schema = request.getfixturevalue("pg_schema")

        def open_it() -> Store:
            opened.append(open_store(POSTGRES_URL, schema=schema, read_role=READ_ROLE))
            return opened[-1]

    yield open_it
    for store in opened:
        store.close()


@pytest.fixture
def store(open_test_store: OpenStore) -> Store:
    return open_test_store()


@pytest.fixture
def tick() -> Ticks:
    return Ticks()
