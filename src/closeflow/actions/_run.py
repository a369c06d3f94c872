"""The batch executor: a spec over a stream of records, chunk by chunk, with per-record outcomes.

Records stream in chunks (100 by default): each chunk is mapped (bad values fail their record),
checked against the ledger (records done in an earlier run of the batch are skipped), looked up
with one search per match property, planned and written with bounded concurrency. Only one chunk
is in memory at a time. Records of a chunk that share a match value are written one after the
other, so two rows for one new email create one contact, not two.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from closeflow.actions._delete import delete_by_match, delete_where
from closeflow.actions._inputs import Records, chunks
from closeflow.actions._ledger import Ledger, SqliteLedger
from closeflow.actions._mapping import Mapper, Prepared
from closeflow.actions._matching import lookup
from closeflow.actions._outcome import Outcome, Summary
from closeflow.actions._plan import fields_for_diff
from closeflow.actions._policies import decide
from closeflow.actions._specs import CONTACT_FIELDS, LEAD_FIELDS
from closeflow.actions._writes import Writer
from closeflow.close import CloseClient, ConfigError, CustomFieldRegistry, NotFound

Progress = Callable[[Outcome, Summary], None]
DEFAULT_CHUNK = 100
DEFAULT_CONCURRENCY = 8


class BatchRun:
    """One run of a spec over records: iterate it for outcomes (in input order); ``summary`` keeps
    the totals. Re-running with the same ``batch_id`` and ledger resumes the batch."""

    def __init__(
        self,
        client: CloseClient,
        spec: Any,
        records: Records | None,
        *,
        batch_id: str | None = None,
        ledger: Ledger | None = None,
        registry: CustomFieldRegistry | None = None,
        progress: Progress | None = None,
        concurrency: int | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        if spec.action.startswith("search"):
            raise ConfigError(f"{spec.action} returns records, not outcomes: use closeflow.actions.search()")
        if not 1 <= chunk_size <= 1000:
            raise ConfigError(f"chunk_size must be between 1 and 1000, not {chunk_size}")
        self.client = client
        self.spec = spec
        self.records = records
        self.batch_id = batch_id or f"batch_{uuid.uuid4().hex[:16]}"
        self.run_id = uuid.uuid4().hex
        self.ledger: Ledger = ledger if ledger is not None else SqliteLedger(":memory:")
        self.registry = registry or CustomFieldRegistry(client)
        self.progress = progress
        self.slots = asyncio.Semaphore(concurrency or DEFAULT_CONCURRENCY)
        self.chunk_size = chunk_size
        self.summary = Summary()

    def __aiter__(self) -> AsyncIterator[Outcome]:
        return self._outcomes()

    async def collect(self) -> list[Outcome]:
        """Every outcome as a list (for small batches and tests; large ones should iterate)."""
        return [outcome async for outcome in self]

    async def _outcomes(self) -> AsyncIterator[Outcome]:
        if self.spec.action.startswith("delete"):
            source = (
                delete_where(self) if self.spec.where is not None else delete_by_match(self, self.records)
            )
        else:
            source = self._writes()
        async for outcome in source:
            self.summary.add(outcome)
            if self.progress is not None:
                self.progress(outcome, self.summary)
            yield outcome

    # -- inserts, updates, upserts ------------------------------------------------------------

    async def _writes(self) -> AsyncIterator[Outcome]:
        spec: Any = self.spec
        mapper = await Mapper.create(self.client, spec, self.registry)
        allowed = LEAD_FIELDS if spec.object_type == "lead" else CONTACT_FIELDS
        written = {"addresses" if k.startswith("address.") else k for k in (*spec.mappings, *spec.constants)}
        written = {"status_id" if k == "status" else k for k in written if k in allowed}
        if spec.object_type == "contact" and getattr(spec, "email", None):
            written.add("emails")
        if spec.object_type == "contact" and getattr(spec, "phone", None):
            written.add("phones")
        matcher_fields = [name for m in mapper.matchers for name in m.fields]
        fields = list(
            dict.fromkeys(fields_for_diff(spec.object_type, written, mapper.custom_fields) + matcher_fields)
        )
        writer = Writer(
            client=self.client,
            mapper=mapper,
            ledger=self.ledger,
            batch_id=self.batch_id,
            run_id=self.run_id,
            action=spec.action,
            dry_run=spec.dry_run,
            arrays=getattr(spec, "arrays", "merge"),
            fields=fields,
            slots=self.slots,
        )
        async for chunk in chunks(self.records, self.chunk_size):
            outcomes, stop = await self._write_chunk(mapper, writer, chunk)
            for outcome in outcomes:
                yield outcome
            if stop:
                self.summary.notes.append(
                    "stopped: a chunk held invalid records (stop_on_invalid); later records were not read"
                )
                return

    async def _write_chunk(
        self, mapper: Mapper, writer: Writer, chunk: list[tuple[int, dict[str, Any]]]
    ) -> tuple[list[Outcome], bool]:
        spec = self.spec
        prepared = [await mapper.prepare(record, row) for row, record in chunk]
        done: dict[int, Outcome] = {}
        for i, p in enumerate(prepared):
            if p.error is not None:
                done[i] = Outcome(p.key, p.row, "failed", "fail", error=p.error)
        if done and spec.stop_on_invalid:
            for i, p in enumerate(prepared):
                done.setdefault(
                    i,
                    Outcome(
                        p.key,
                        p.row,
                        "skipped",
                        "skip",
                        note="not written: stop_on_invalid and the chunk holds invalid records",
                    ),
                )
            return [done[i] for i in range(len(prepared))], True
        matched = not spec.action.startswith("insert")
        known = self._check_ledger(prepared, done)
        for i, p in enumerate(prepared):
            if i not in done and matched and p.match is None:
                inputs = ", ".join(f'"{m.input_key}"' for m in mapper.matchers)
                done[i] = Outcome(
                    p.key,
                    p.row,
                    "failed",
                    "fail",
                    error=f"row {p.row}: nothing to match on (input {inputs} empty)",
                )
        live = [i for i in range(len(prepared)) if i not in done]
        wanted = [i for i in live if matched or prepared[i].recover_since is not None]
        candidates = await self._lookup(mapper, writer, [prepared[i] for i in wanted])
        groups: dict[Any, list[int]] = {}
        for i in live:
            group = ("match", prepared[i].match) if prepared[i].match is not None else ("row", i)
            groups.setdefault(group, []).append(i)

        async def run_group(indices: list[int]) -> list[tuple[int, Outcome]]:
            first = prepared[indices[0]]
            current = candidates.get(first.match, []) if first.match is not None else []
            if not current and indices[0] in known:
                current = await self._fetch(known[indices[0]])
            results = []
            for i in indices:
                outcome, current = await decide(spec, writer, prepared[i], current)
                results.append((i, outcome))
            return results

        for results in await asyncio.gather(*(run_group(g) for g in groups.values())):
            done.update(results)
        return [done[i] for i in range(len(prepared))], False

    def _check_ledger(self, prepared: list[Prepared], done: dict[int, Outcome]) -> dict[int, str]:
        """Skip records done in an earlier run; flag unresolved creates; ids this run created."""
        known: dict[int, str] = {}
        if self.spec.dry_run:
            return known
        keys = [p.key for i, p in enumerate(prepared) if i not in done]
        entries = self.ledger.entries(self.batch_id, self.spec.action, keys)
        for i, p in enumerate(prepared):
            entry = entries.get(p.key)
            if i in done or entry is None:
                continue
            if entry.done and entry.run_id != self.run_id:
                note = f"already {entry.status} in an earlier run of batch {self.batch_id}"
                done[i] = Outcome(p.key, p.row, "skipped", "skip", ids=list(entry.close_ids), note=note)
            elif entry.pending:
                p.recover_since = entry.intent_at
            elif entry.status == "created" and entry.close_ids:
                # A later row with the same key in this run: Close's search index may lag behind
                # a create, so start from the record itself.
                known[i] = entry.close_ids[0]
        return known

    async def _lookup(
        self, mapper: Mapper, writer: Writer, items: list[Prepared]
    ) -> dict[Any, list[dict[str, Any]]]:
        by_rule: dict[int, dict[str, Any]] = {}
        for p in items:
            if p.match is not None:
                index, value = p.match
                by_rule.setdefault(index, {})[value] = p.match_query
        found: dict[Any, list[dict[str, Any]]] = {}
        for index, wanted in by_rule.items():
            results = await lookup(self.client, mapper.matchers[index], wanted, writer.fields)
            found.update({(index, value): records for value, records in results.items()})
        return found

    async def _fetch(self, record_id: str) -> list[dict[str, Any]]:
        try:
            return [await self.client.get(f"/{self.spec.object_type}/{record_id}/")]
        except NotFound:
            return []
