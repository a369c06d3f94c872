"""The batch executor: a spec over a stream of records, chunk by chunk, with per-record outcomes.

Records stream in chunks (100 by default): each chunk is mapped (bad values fail their record),
checked against the ledger (records done in an earlier run of the batch are skipped), looked up
with one search per match property, planned and written with bounded concurrency. Only one chunk
is in memory at a time. Records of a chunk that may touch the same Close record (they carry a
common match value, or their lookups found a common record) are written one after the other,
each seeing the writes before it: two rows for one new email create one contact, and two rows
adding a phone each to one contact keep both phones.
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
from closeflow.actions._matching import lookup, missing_leads
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
        search_lag: float | None = None,
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
        self._owns_ledger = ledger is None  # a caller's ledger outlives the run; ours does not
        self.registry = registry or CustomFieldRegistry(client)
        self.progress = progress
        self.slots = asyncio.Semaphore(concurrency or DEFAULT_CONCURRENCY)
        self.chunk_size = chunk_size
        self.search_lag = client.search_lag if search_lag is None else search_lag
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
        try:
            async for outcome in source:
                self.summary.add(outcome)
                if self.progress is not None:
                    self.progress(outcome, self.summary)
                yield outcome
        finally:
            if self._owns_ledger:
                self.ledger.close()

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
            search_lag=self.search_lag,
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
        groups = _groups(prepared, live, candidates)

        async def run_group(indices: list[int]) -> list[tuple[int, Outcome]]:
            latest: dict[str, dict[str, Any]] = {}  # record id -> as this group's writes left it
            created: dict[tuple[int, str], dict[str, Any]] = {}  # match value -> record made here
            results = []
            for i in indices:
                p = prepared[i]
                found = list(candidates.get(p.match, [])) if p.match is not None else []
                if p.match in created:
                    found.append(created[p.match])  # the search index may not show it yet
                current = list({str(r["id"]): latest.get(str(r["id"]), r) for r in found}.values())
                if not current and i in known:
                    current = await self._fetch(known[i])
                outcome, after = await decide(spec, writer, p, current)
                latest.update({str(r["id"]): r for r in after})
                if outcome.status == "created" and after:
                    created.update(dict.fromkeys(p.matches, after[0]))
                results.append((i, outcome))
            return results

        for results in await asyncio.gather(*(run_group(g) for g in groups)):
            done.update(results)
        if spec.dry_run:
            await self._check_leads(prepared, done)
        return [done[i] for i in range(len(prepared))], False

    def _check_ledger(self, prepared: list[Prepared], done: dict[int, Outcome]) -> dict[int, str]:
        """Skip records done in an earlier run; flag unresolved creates; ids this run created."""
        known: dict[int, str] = {}
        if self.spec.dry_run:
            return known
        keys = [k for i, p in enumerate(prepared) if i not in done for k in (p.key, p.first_key) if k]
        entries = self.ledger.entries(self.batch_id, self.spec.action, keys)
        for i, p in enumerate(prepared):
            if i in done:
                continue
            entry = entries.get(p.key)
            first = entries.get(p.first_key) if p.first_key else None
            if entry is None:
                if first is not None and first.status == "created" and first.close_ids:
                    # An earlier record of this input with the same key created it (in this run or
                    # another); Close's search index may lag behind, so start from the record itself.
                    known[i] = first.close_ids[0]
                continue
            if entry.done and entry.run_id != self.run_id:
                note = f"already {entry.status} in an earlier run of batch {self.batch_id}"
                done[i] = Outcome(p.key, p.row, "skipped", "skip", ids=list(entry.close_ids), note=note)
            elif entry.pending:
                p.recover_since = entry.intent_at
        return known

    async def _check_leads(self, prepared: list[Prepared], done: dict[int, Outcome]) -> None:
        """Fail a dry run's planned contact creates under a lead Close does not have, as the real
        run's create would fail. Only dry runs ask: a real run gets Close's own answer for free."""
        planned = [i for i in sorted(done) if (done[i].status, done[i].plan) == ("planned", "create")]
        creates = [i for i in planned if prepared[i].lead_id]
        lead_ids = dict.fromkeys(str(prepared[i].lead_id) for i in creates)
        missing = await missing_leads(self.client, self.registry, lead_ids)
        for i in creates:
            p = prepared[i]
            if p.lead_id in missing:
                error = f"row {p.row}: lead {p.lead_id} does not exist in Close: check the lead id"
                done[i] = Outcome(p.key, p.row, "failed", "fail", error=error)

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


def _groups(
    prepared: list[Prepared], live: list[int], candidates: dict[Any, list[dict[str, Any]]]
) -> list[list[int]]:
    """The records (indices, in input order) that may touch the same Close record, grouped.

    Two records belong together when they carry a common match value (whichever rule found them;
    a record one of them creates holds all its values) or when their lookups found a common record
    (one contact, two of its emails). Groups run concurrently; a group's records one by one.
    """
    parent = {i: i for i in live}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[Any, int] = {}
    for i in live:
        p = prepared[i]
        found = candidates.get(p.match, []) if p.match is not None else []
        for mark in [*(("value", m) for m in p.matches), *(("id", str(r["id"])) for r in found)]:
            if mark in owner:
                parent[root(i)] = root(owner[mark])
            else:
                owner[mark] = i
    groups: dict[int, list[int]] = {}
    for i in live:
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())
