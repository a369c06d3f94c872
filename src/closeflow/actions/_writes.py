"""The writes of one record: create (at most once, through the ledger), update, delete.

A create whose answer is lost (``TransportError`` that may have reached Close, or a 5xx) is never
re-sent in the same run: the record is looked up by its match key at once (found: done), and
otherwise the ledger's intent stays in place. Close's search lags writes by 30-60 s (§2.4), so a
miss right away proves nothing; a later run looks again and sends the create only when the intent
is older than the client's ``search_lag`` and Close still has no such record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from closeflow.actions._ledger import Ledger
from closeflow.actions._mapping import Mapper, Prepared
from closeflow.actions._matching import lookup
from closeflow.actions._outcome import Outcome
from closeflow.actions._plan import create_changes, create_payload, update_payload
from closeflow.close import (
    CloseClient,
    CloseError,
    CustomField,
    NotFound,
    ServerError,
    TransportError,
    ValidationError,
)

# A create found by its match key counts as ours when Close dated it no earlier than this before
# the intent (clock skew between this machine and Close).
RECOVERY_SKEW = 120.0
# How old a lost create must be before a miss in Close's search means "never applied": above the
# 30-60 s Close's search index takes to show a new record (§2.4), with a margin.
RECOVERED = "recovered: the create's answer was lost; found in Close by its match key"


def answer_unknown(exc: CloseError) -> bool:
    """True when a POST may have been applied although no success came back."""
    if isinstance(exc, TransportError):
        return exc.reached_server is not False
    return isinstance(exc, ServerError)


def created_since(records: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    out = []
    for record in records:
        try:
            created = datetime.fromisoformat(str(record.get("date_created"))).timestamp()
        except ValueError:
            continue
        if created >= since - RECOVERY_SKEW:
            out.append(record)
    return out


def failed(prepared: Prepared, plan: Any, exc: CloseError | str, ids: list[str] | None = None) -> Outcome:
    if isinstance(exc, str):
        return Outcome(prepared.key, prepared.row, "failed", plan, ids=ids or [], error=exc)
    field_errors = exc.field_errors if isinstance(exc, ValidationError) else {}
    return Outcome(
        prepared.key, prepared.row, "failed", plan, ids=ids or [], error=str(exc), field_errors=field_errors
    )


@dataclass
class Writer:
    """Everything a record's writes need; one per run."""

    client: CloseClient
    mapper: Mapper
    ledger: Ledger
    batch_id: str
    run_id: str
    action: str
    dry_run: bool
    arrays: str
    fields: list[str]
    slots: asyncio.Semaphore
    search_lag: float

    @property
    def path(self) -> str:
        return f"/{self.mapper.object_type}/"

    @property
    def custom_by_key(self) -> Mapping[str, CustomField]:
        return {f"custom.{f.id}": f for f in self.mapper.custom_fields}

    def finish(self, prepared: Prepared, outcome: Outcome) -> Outcome:
        if not self.dry_run:
            self.ledger.record_outcome(
                self.batch_id,
                prepared.key,
                self.action,
                run_id=self.run_id,
                row=prepared.row,
                status=outcome.status,
                close_ids=outcome.ids,
                error=outcome.error,
                at=self.client.clock.now(),
            )
        return outcome

    async def recover(self, prepared: Prepared, since: float) -> list[dict[str, Any]] | None:
        """Records Close created for this one since ``since``; None when there is no key to look by."""
        if prepared.match is None:
            return None
        index, value = prepared.match
        matcher = self.mapper.matchers[index]
        found = await lookup(self.client, matcher, {value: prepared.match_query}, self.fields)
        return created_since(found.get(value, []), since)

    async def create(
        self, prepared: Prepared, lead_id: str | None = None
    ) -> tuple[Outcome, dict[str, Any] | None]:
        payload = create_payload(self.mapper.object_type, prepared, lead_id)
        changes = create_changes(payload, self.custom_by_key)
        if self.dry_run:
            return Outcome(prepared.key, prepared.row, "planned", "create", changes=changes), None
        at = self.client.clock.now()
        self.ledger.record_intent(
            self.batch_id, prepared.key, self.action, run_id=self.run_id, row=prepared.row, at=at
        )
        try:
            async with self.slots:
                created = await self.client.post(self.path, json=payload)
        except CloseError as exc:
            if not answer_unknown(exc):
                return self.finish(prepared, failed(prepared, "create", exc)), None
            found = await self.recover(prepared, at)
            if found:
                outcome = Outcome(
                    prepared.key, prepared.row, "created", "create", ids=[found[0]["id"]], note=RECOVERED
                )
                return self.finish(prepared, outcome), found[0]
            # Leave the intent without an outcome: a miss now may be Close's search lagging behind
            # the create, so only a later run (after the client's search_lag) may conclude it was
            # never applied.
            if found is None:
                why = "there is nothing to look it up by: check Close by hand"
            else:
                why = (
                    f"Close's search does not show it yet: re-run batch {self.batch_id} after "
                    f"{self.search_lag:.0f} s; closeflow looks it up again before sending anything"
                )
            return failed(prepared, "create", f"{exc}; the create's answer was lost and {why}"), None
        outcome = Outcome(
            prepared.key, prepared.row, "created", "create", ids=[created["id"]], changes=changes
        )
        return self.finish(prepared, outcome), created

    async def update(self, prepared: Prepared, current: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:
        payload, changes = update_payload(prepared, current, self.arrays, self.custom_by_key)
        record_id = str(current["id"])
        if not payload:
            return Outcome(prepared.key, prepared.row, "unchanged", "unchanged", ids=[record_id]), current
        if self.dry_run:
            return Outcome(
                prepared.key, prepared.row, "planned", "update", ids=[record_id], changes=changes
            ), current
        try:
            async with self.slots:
                updated = await self.client.put(f"{self.path}{record_id}/", json=payload)
        except CloseError as exc:
            return failed(prepared, "update", exc, [record_id]), current
        outcome = Outcome(prepared.key, prepared.row, "updated", "update", ids=[record_id], changes=changes)
        return outcome, {**current, **{k: updated.get(k, v) for k, v in payload.items()}}

    async def delete(self, key: str, row: int | None, ids: list[str]) -> Outcome:
        if self.dry_run:
            return Outcome(key, row, "planned", "delete", ids=ids)
        gone: list[str] = []
        for record_id in ids:
            try:
                async with self.slots:
                    await self.client.delete(f"{self.path}{record_id}/")
            except NotFound:
                continue  # already gone (another row matched it too): nothing left to delete
            except CloseError as exc:
                return Outcome(key, row, "failed", "delete", ids=ids, error=str(exc))
            gone.append(record_id)
        if not gone:
            return Outcome(key, row, "skipped", "skip", ids=ids, note="already deleted")
        return Outcome(key, row, "deleted", "delete", ids=gone)
