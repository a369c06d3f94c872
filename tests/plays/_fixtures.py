"""Shared helpers for the engine's tests: plays written as YAML, a client and ledgers on the emulator."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from closeflow.actions import SqliteLedger
from closeflow.plays import open_run_ledger
from closeflow.plays._ledger_sql import SqlRunLedger
from closeflow.plays._spec import Catalog, load_folder

POSTGRES_URL = os.environ.get("CLOSEFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def catalog(folder: Path, **files: str) -> Catalog:
    """A catalog from YAML texts given as ``name=text`` (each becomes ``name.yaml``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_folder(folder)


def postgres_schema_url() -> Iterator[str]:
    """A Postgres URL in a schema of its own (dropped afterwards), or a skip saying why not."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        if os.environ.get("CLOSEFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CLOSEFLOW_REQUIRE_POSTGRES=1 but Postgres is unreachable: {exc}")
        pytest.skip(f"Postgres unreachable ({exc}); set CLOSEFLOW_TEST_POSTGRES to run the ledger on it")
    schema = f"closeflow_plays_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def ledgers(tmp_path: Path, clock: Any) -> tuple[SqlRunLedger, SqliteLedger]:
    db = tmp_path / "closeflow.db"
    return open_run_ledger(str(db), clock=clock), SqliteLedger(db)


def executed(run: Any) -> list[str]:
    """The node ids a run executed (attempts included), leaving out outputs reused by a replay."""
    return [n.node_id for n in run.nodes if n.status != "skipped"]
