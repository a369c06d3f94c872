"""Deletes, guarded: criteria are required, and above ``max_affected`` nothing is deleted unless forced.

The guard needs the whole count before the first delete, so a delete finds every target first
(ids only; for deletes by input record, one small plan per record) and only then deletes.
A dry run lists the targets and the count, and notes when a real run would refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from closeflow.actions._inputs import chunks
from closeflow.actions._mapping import Mapper, Prepared
from closeflow.actions._matching import lookup
from closeflow.actions._outcome import Outcome
from closeflow.actions._writes import Writer
from closeflow.close import ConfigError, find

if TYPE_CHECKING:
    from closeflow.actions._inputs import Records
    from closeflow.actions._run import BatchRun


class DeleteRefused(ConfigError):
    """More records would be deleted than the spec's ``max_affected`` allows (nothing was deleted)."""

    def __init__(self, object_type: str, count: int, max_affected: int) -> None:
        self.count = count
        self.max_affected = max_affected
        super().__init__(
            f"refusing to delete {count} {object_type}s: more than max_affected={max_affected}. "
            "Nothing was deleted. Check the targets with dry_run, then raise max_affected or set force."
        )


async def _writer(run: BatchRun, fields: list[str]) -> Writer:
    mapper = await Mapper.create(run.client, run.spec, run.registry)
    return Writer(
        client=run.client,
        mapper=mapper,
        ledger=run.ledger,
        batch_id=run.batch_id,
        run_id=run.run_id,
        search_lag=run.search_lag,
        action=run.spec.action,
        dry_run=run.spec.dry_run,
        arrays="merge",
        fields=fields,
        slots=run.slots,
    )


async def delete_where(run: BatchRun) -> AsyncIterator[Outcome]:
    spec = run.spec
    writer = await _writer(run, ["id"])
    targets: list[str] = []
    count = 0
    async for record in find(
        run.client, spec.object_type, where=spec.where, fields=["display_name"], registry=run.registry
    ):
        count += 1
        if spec.dry_run:
            yield Outcome(
                record["id"], None, "planned", "delete", ids=[record["id"]], note=record.get("display_name")
            )
        elif spec.force or count <= spec.max_affected:
            targets.append(str(record["id"]))
    _check_guard(run, count)
    if spec.dry_run:
        return
    for start in range(0, len(targets), run.chunk_size):
        part = [Prepared(row=None, key=record_id) for record_id in targets[start : start + run.chunk_size]]
        for outcome in await _delete_all(run, writer, [(p, [p.key]) for p in part]):
            yield outcome


async def delete_by_match(run: BatchRun, records: Records | None) -> AsyncIterator[Outcome]:
    spec = run.spec
    mapper = await Mapper.create(run.client, spec, run.registry)
    fields = ["id", "date_created", *(name for m in mapper.matchers for name in m.fields)]
    writer = await _writer(run, fields)
    plans: list[tuple[Prepared, list[str]] | Outcome] = []
    async for chunk in chunks(records, run.chunk_size):
        prepared = [await mapper.prepare(record, row) for row, record in chunk]
        entries = (
            {} if spec.dry_run else run.ledger.entries(run.batch_id, spec.action, [p.key for p in prepared])
        )
        wanted: dict[int, dict[str, Any]] = {}
        for p in prepared:
            if p.match is not None:
                wanted.setdefault(p.match[0], {})[p.match[1]] = p.match_query
        found: dict[Any, list[dict[str, Any]]] = {}
        for index, values in wanted.items():
            results = await lookup(run.client, mapper.matchers[index], values, fields)
            found.update({(index, value): hits for value, hits in results.items()})
        for p in prepared:
            entry = entries.get(p.key)
            if p.error is not None:
                plans.append(Outcome(p.key, p.row, "failed", "fail", error=p.error))
            elif entry is not None and entry.done and entry.run_id != run.run_id:
                note = f"already {entry.status} in an earlier run of batch {run.batch_id}"
                plans.append(Outcome(p.key, p.row, "skipped", "skip", ids=list(entry.close_ids), note=note))
            elif p.match is None:
                plans.append(
                    Outcome(p.key, p.row, "failed", "fail", error=f"row {p.row}: nothing to match on")
                )
            else:
                plans.append(_choose(spec, p, found.get(p.match, [])))
    count = len({i for plan in plans if isinstance(plan, tuple) for i in plan[1]})
    _check_guard(run, count)
    for start in range(0, len(plans), run.chunk_size):
        window = plans[start : start + run.chunk_size]
        deletes = [plan for plan in window if isinstance(plan, tuple)]
        done = iter(await _delete_all(run, writer, deletes))
        for plan in window:
            if isinstance(plan, tuple):
                yield next(done)
            elif plan.status == "failed":
                # Failed records are noted so the batch shows them; skipped ones keep earlier entries.
                yield writer.finish(Prepared(row=plan.row, key=plan.key), plan)
            else:
                yield plan


def _choose(
    spec: Any, prepared: Prepared, matches: list[dict[str, Any]]
) -> tuple[Prepared, list[str]] | Outcome:
    ids = [str(m["id"]) for m in matches]
    if not ids:
        status = "failed" if spec.on_none == "fail" else "skipped"
        message = f"row {prepared.row}: no {spec.object_type} matches {prepared.key}"
        if status == "failed":
            return Outcome(prepared.key, prepared.row, "failed", "fail", error=message)
        return Outcome(prepared.key, prepared.row, "skipped", "skip", note=message)
    if len(ids) > 1 and spec.on_many == "fail":
        message = (
            f"row {prepared.row}: {len(ids)} {spec.object_type}s match {prepared.key} ({', '.join(ids)}); "
            "set on_many to all or first"
        )
        return Outcome(prepared.key, prepared.row, "failed", "fail", ids=ids, error=message)
    return prepared, ids[:1] if spec.on_many == "first" else ids


def _check_guard(run: BatchRun, count: int) -> None:
    spec = run.spec
    over = count > spec.max_affected and not spec.force
    if spec.dry_run:
        run.summary.notes.append(f"{count} {spec.object_type}(s) would be deleted")
        if over:
            run.summary.notes.append(
                f"a real run would refuse: {count} > max_affected={spec.max_affected} (set force to allow)"
            )
    elif over:
        raise DeleteRefused(spec.object_type, count, spec.max_affected)


async def _delete_all(
    run: BatchRun, writer: Writer, plans: list[tuple[Prepared, list[str]]]
) -> list[Outcome]:
    async def one(prepared: Prepared, ids: list[str]) -> Outcome:
        outcome = await writer.delete(prepared.key, prepared.row, ids)
        return writer.finish(prepared, outcome)

    return list(await asyncio.gather(*(one(p, ids) for p, ids in plans)))
