"""Retrying a finished run: a new run of its play on the same record, from the start or from its
failed node with the history before it carried over, writing as the original run.

``carried_over`` is also how the engine continues a failed tool run a resumed parent calls again.
"""

from __future__ import annotations

from closeflow.close import ConfigError
from closeflow.plays._interpreter import COMPLETED
from closeflow.plays._runs import AlreadyRetried, NodeRecord, RunLedger


def carried_over(nodes: list[NodeRecord]) -> list[NodeRecord]:
    """The history a retry from the failed node starts with: every record before the first attempt of
    the last failed node visit, as it was (a handled failure stays failed so the walk takes its
    on_failure branch again), completed ones marked ``skipped`` (reused). No failure: all of them."""
    failures = [i for i, n in enumerate(nodes) if n.status == "failed"]
    if not failures:
        return [NodeRecord(**{**n.__dict__, "status": "skipped"}) for n in nodes]
    first_of_last = failures[-1]
    while first_of_last > 0 and nodes[first_of_last].attempt > 1:
        first_of_last -= 1  # earlier attempts of the same visit
    return [
        NodeRecord(**{**n.__dict__, "status": "skipped"}) if n.status in COMPLETED else n
        for n in nodes[:first_of_last]
    ]


def retry_from(ledger: RunLedger, run_id: str, *, from_failed_node: bool) -> str:
    """A new run of a finished run's play on the same record and trigger (``retry_of`` in its context).

    ``from_failed_node``: the history before the failed node is carried over (completed nodes as
    ``skipped`` with their outputs), only the failed node and what follows run again, and they write
    as the original run (same write-ledger batch ids and Idempotency-Keys), so a create that reached
    Close before the failure is found, not repeated. Otherwise the whole graph runs again under the
    new run's id. A run is retried once: the original records ``retried_by``; retry the retry.
    Run it with ``run_to_end``.
    """
    old = ledger.run(run_id)
    if old is None:
        raise ConfigError(f"no run {run_id!r} in the run ledger; `closeflow runs list` shows the runs")
    if not old.finished:
        raise ConfigError(f"run {run_id} is {old.status}; only finished runs can be retried")
    if old.retried_by is not None:
        raise ConfigError(f"run {run_id} was already retried by run {old.retried_by}; retry that run instead")
    context = {k: v for k, v in old.context.items() if k != "writes_as"}
    reused: list[NodeRecord] = []
    if from_failed_node:
        if not any(n.status == "failed" for n in old.nodes):
            raise ConfigError(
                f"run {run_id} has no failed node to retry from; retry it without --from-failed-node"
            )
        reused = carried_over(old.nodes)
        context["writes_as"] = old.context.get("writes_as") or old.id
    try:
        return ledger.create_run(
            play=old.play,
            source=old.source,  # type: ignore[arg-type]
            record_id=old.record_id,
            change_seq=old.change_seq,
            trigger=old.trigger,
            context={**context, "retry_of": run_id},
            nodes=reused,
            retry_of=run_id,
        )
    except AlreadyRetried as exc:
        raise ConfigError(
            f"run {run_id} was already retried by run {exc.by}; retry that run instead"
        ) from None
