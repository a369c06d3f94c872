"""What to do with one record given the Close records that match it: the explicit policies.

0 matches: insert and upsert create, update follows ``on_none``. 1 match: update (or nothing, when
unchanged). Several: ``on_many`` (update_all | first | fail). A contact upserted under another
lead than its match's: ``lead_mismatch``, since Close cannot move a contact between leads.
"""

from __future__ import annotations

from typing import Any

from closeflow.actions._mapping import Prepared
from closeflow.actions._outcome import Change, Outcome
from closeflow.actions._writes import Writer, created_since, failed

_RECOVERED = "recovered: created by an earlier run of the batch whose answer was lost"


async def decide(
    spec: Any, writer: Writer, prepared: Prepared, current: list[dict[str, Any]]
) -> tuple[Outcome, list[dict[str, Any]]]:
    """The record's outcome, and the matching records as they stand afterwards (for later rows
    of the chunk with the same match value)."""
    kind = spec.action.split("_")[0]
    if prepared.recover_since is not None:
        ours = created_since(current, prepared.recover_since)
        if ours:
            outcome = Outcome(
                prepared.key, prepared.row, "created", "create", ids=[ours[0]["id"]], note=_RECOVERED
            )
            return writer.finish(prepared, outcome), [ours[0]]
    if kind == "insert":
        return await _create(writer, prepared, current)
    candidates = current
    if kind == "upsert" and prepared.lead_id and current:
        candidates = [c for c in current if c.get("lead_id") == prepared.lead_id]
        if not candidates:
            if spec.lead_mismatch == "fail":
                others = ", ".join(f"{c['id']} (lead {c.get('lead_id')})" for c in current)
                message = (
                    f"row {prepared.row}: the matching contact {others} belongs to another lead than "
                    f"{prepared.lead_id}; Close cannot move contacts: set lead_mismatch to "
                    "create_under_lead or update_in_place"
                )
                return writer.finish(prepared, failed(prepared, "fail", message)), current
            candidates = current if spec.lead_mismatch == "update_in_place" else []
    if not candidates:
        if kind == "upsert":
            outcome, created = await _create(writer, prepared, current)
            return outcome, created
        message = f"row {prepared.row}: no {spec.object_type} matches {prepared.key}"
        if spec.on_none == "fail":
            outcome = failed(prepared, "fail", message)
        else:
            outcome = Outcome(prepared.key, prepared.row, "skipped", "skip", note=message)
        return writer.finish(prepared, outcome), current
    if len(candidates) > 1:
        if spec.on_many == "fail":
            ids = [str(c["id"]) for c in candidates]
            message = (
                f"row {prepared.row}: {len(ids)} {spec.object_type}s match {prepared.key} "
                f"({', '.join(ids)}); set on_many to update_all or first"
            )
            return writer.finish(prepared, failed(prepared, "fail", message, ids)), current
        if spec.on_many == "first":
            candidates = candidates[:1]
    return await _update_all(writer, prepared, candidates, current)


async def _create(
    writer: Writer, prepared: Prepared, current: list[dict[str, Any]]
) -> tuple[Outcome, list[dict[str, Any]]]:
    outcome, created = await writer.create(prepared)
    if created is None:
        return outcome, current
    # Later rows with the same match value see the new record (the search index may lag behind).
    return outcome, [created]


async def _update_all(
    writer: Writer, prepared: Prepared, targets: list[dict[str, Any]], current: list[dict[str, Any]]
) -> tuple[Outcome, list[dict[str, Any]]]:
    outcomes = []
    after = {str(c["id"]): c for c in current}
    for target in targets:
        outcome, updated = await writer.update(prepared, target)
        outcomes.append(outcome)
        after[str(target["id"])] = updated
    outcome = outcomes[0] if len(outcomes) == 1 else _combine(prepared, outcomes)
    return writer.finish(prepared, outcome), list(after.values())


def _combine(prepared: Prepared, outcomes: list[Outcome]) -> Outcome:
    """One outcome for an update of several records (on_many=update_all)."""
    ids = [i for o in outcomes for i in o.ids]
    changes = [Change(f"{o.ids[0]}.{c.field}", c.before, c.after) for o in outcomes for c in o.changes]
    errors = [o.error for o in outcomes if o.error]
    if errors:
        return Outcome(
            prepared.key, prepared.row, "failed", "update", ids=ids, changes=changes, error="; ".join(errors)
        )
    for status, plan in (("planned", "update"), ("updated", "update")):
        if any(o.status == status for o in outcomes):
            return Outcome(prepared.key, prepared.row, status, plan, ids=ids, changes=changes)  # type: ignore[arg-type]
    return Outcome(prepared.key, prepared.row, "unchanged", "unchanged", ids=ids)
