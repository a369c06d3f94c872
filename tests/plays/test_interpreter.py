"""The interpreter is pure: the same history and "now" always give the same next step."""

from __future__ import annotations

from pathlib import Path

from closeflow.plays._interpreter import Execute, Finish, Wait, next_step
from closeflow.plays._ledger import NodeRecord
from tests.plays._fixtures import catalog

PLAY = """
kind: play
name: steps
trigger: {model: leads}
nodes:
  - {id: call, type: http, method: GET, url: "http://x.test", retry: {max_attempts: 3, initial_interval: 2}}
  - {id: pause, type: delay, seconds: 60}
  - {id: done, type: end}
"""


def test_next_step_follows_the_history_without_reading_a_clock(tmp_path: Path) -> None:
    graph = catalog(tmp_path, p=PLAY).plays["steps"].graph
    first = next_step(graph, [], now=100.0)
    assert isinstance(first, Execute) and (first.node.id, first.attempt, first.not_before) == (
        "call",
        1,
        100.0,
    )

    failed = NodeRecord("call", 1, "failed", error="503", error_class="HttpStatus", finished_at=105.0)
    retry = next_step(graph, [failed], now=500.0)
    assert isinstance(retry, Execute) and (retry.attempt, retry.not_before) == (2, 107.0)  # finished + 2 s

    done = NodeRecord("call", 2, "succeeded", output={"status": 200})
    wait = next_step(graph, [failed, done], now=200.0)
    assert isinstance(wait, Wait) and wait.wake_at == 260.0
    resumed = next_step(graph, [failed, done], now=999.0, wake_at=260.0)
    assert isinstance(resumed, Wait) and resumed.wake_at == 260.0  # the recorded wake time wins

    slept = NodeRecord("pause", 1, "succeeded", output={})
    ended = NodeRecord("done", 1, "succeeded", output={"status": "succeeded"})
    assert next_step(graph, [failed, done, slept, ended], now=0.0) == Finish("succeeded")
    assert next_step(graph, [failed, done], now=200.0) == next_step(graph, [failed, done], now=200.0)


def test_a_non_retryable_failure_finishes_the_run_at_once(tmp_path: Path) -> None:
    graph = catalog(tmp_path, p=PLAY).plays["steps"].graph
    refused = NodeRecord("call", 1, "failed", error="404 GET", error_class="HttpStatus", retryable=False)
    step = next_step(graph, [refused], now=0.0)
    assert (
        isinstance(step, Finish)
        and step.status == "failed"
        and "after 1 attempt: 404 GET" in (step.error or "")
    )


def test_a_history_that_no_longer_fits_the_graph_fails_with_a_fix(tmp_path: Path) -> None:
    graph = catalog(tmp_path, p=PLAY).plays["steps"].graph
    stale = [NodeRecord("renamed", 1, "succeeded", output={})]
    try:
        next_step(graph, stale, now=0.0)
    except Exception as exc:
        assert "play file changed" in str(exc) and "retry the run" in str(exc)
    else:
        raise AssertionError("a stale history must not be replayed")
