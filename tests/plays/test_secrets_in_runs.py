"""Secrets come from the environment at run time and never reach the run ledger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx2
import pytest

from closeflow._clock import FakeClock
from closeflow.plays._engine import run_to_end
from closeflow.plays._ledger import NodeRecord
from tests.plays._fixtures import catalog, ledgers

TOKEN = "sk_live_0123456789abcdef"

PLAY = """
kind: play
name: hook-with-secret
trigger: {model: leads}
secrets: {hook_token: {env: CLOSEFLOW_TEST_HOOK_TOKEN}}
nodes:
  - id: notify
    type: http
    method: POST
    url: "https://hooks.example.com/in/{{ secrets.hook_token }}"
    headers: {X-Hook-Auth: "Bearer {{ secrets.hook_token }}"}
    json: {token_echo: "{{ secrets.hook_token }}", lead: {path: "record.id"}}
    expect_status: [200]
"""


async def test_a_secret_reaches_the_receiver_but_no_stored_row(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOSEFLOW_TEST_HOOK_TOKEN", TOKEN)
    seen: list[httpx2.Request] = []

    def receive(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"echo": json.loads(request.content)["token_echo"]})

    plays = catalog(tmp_path / "plays", a=PLAY)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="hook-with-secret", source="play", record_id="lead_1", change_seq=1, trigger=None,
        context={"record": {"id": "lead_1"}},
    )  # fmt: skip
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(receive)) as http:
        run = await run_to_end(
            run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock, http=http
        )

    assert run.status == "succeeded", run.error
    assert seen[0].headers["X-Hook-Auth"] == f"Bearer {TOKEN}" and TOKEN in str(seen[0].url)
    dump = "\n".join(
        line for line in sqlite3.connect(tmp_path / "closeflow.db").iterdump() if "play_run" in line
    )
    assert "play_run" in dump and TOKEN not in dump


async def test_a_missing_secret_fails_the_run_naming_the_variable(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLOSEFLOW_TEST_HOOK_TOKEN", raising=False)
    plays = catalog(tmp_path / "plays", a=PLAY)
    ledger, writes = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="hook-with-secret", source="play", record_id="lead_1", change_seq=1, trigger=None,
        context={"record": {"id": "lead_1"}},
    )  # fmt: skip
    with pytest.raises(Exception, match="CLOSEFLOW_TEST_HOOK_TOKEN"):
        await run_to_end(run_id, plays, ledger=ledger, client=None, write_ledger=writes, clock=clock)


def test_a_node_output_over_the_size_cap_is_not_stored_whole(tmp_path: Path, clock: FakeClock) -> None:
    ledger, _ = ledgers(tmp_path, clock)
    run_id = ledger.create_run(
        play="p", source="play", record_id="lead_1", change_seq=1, trigger=None, context={}
    )
    huge = {"rows": ["y" * 1000] * 2000}  # about 2 MB of JSON, e.g. an HTTP answer or a JMESPath blow-up
    ledger.record_node(run_id, NodeRecord(node_id="n", attempt=1, status="succeeded", output=huge))
    stored = ledger.run(run_id)
    assert stored is not None
    assert "size cap" in stored.nodes[0].output["error"]
