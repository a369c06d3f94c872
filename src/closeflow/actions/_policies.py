"""What to do with one record given the Close records that match it: the explicit policies.

0 matches: insert and upsert create, update follows ``on_none``; an upsert matched by ``id`` fails
(an id names a record that exists; creating another would not give it that id). 1 match: update
(or nothing, when unchanged). Several: ``on_many`` (update_all | first | fail). A contact upserted
under another lead than its match's: ``lead_mismatch``, since Close cannot move a contact between
leads.
"""

from __future__ import annotations

from typing import Any

from closeflow.actions._mapping import Prepared
from closeflow.actions._outcome import Change, Outcome
from closeflow.actions._writes import RECOVERED, Writer, created_since, failed


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
                prepared.key, prepared.row, "created", "create", ids=[ours[0]["id"]], note=RECOVERED
            )
            return writer.finish(prepared, outcome), [ours[0]]
        unresolved = _unresolved(writer, prepared, prepared.recover_since)
        if unresolved is not None:
            # Not finished: the intent stays in the ledger, so no later run sends the create blindly.
            return failed(prepared, "create", unresolved), current
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
        by_id = prepared.match is not None and writer.mapper.matchers[prepared.match[0]].prop == "id"
        if kind == "upsert" and by_id:
            message = (
                f"row {prepared.row}: no {spec.object_type} has id {prepared.match_query}; an upsert "
                "matched by id never creates (Close gives new records new ids): check the id"
            )
            return writer.finish(prepared, failed(prepared, "fail", message)), current
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


def _unresolved(writer: Writer, prepared: Prepared, since: float) -> str | None:
    """Why a create whose answer was lost cannot be sent again yet; None when it can."""
    if prepared.match is None:
        return (
            f"row {prepared.row}: an earlier run of batch {writer.batch_id} sent this create and lost "
            "the answer, and the record has no match value to look it up by: check Close by hand; "
            "closeflow will not send it again (give the spec a key or match rule to resolve such records)"
        )
    age = writer.client.clock.now() - since
    if age < writer.search_lag:
        return (
            f"row {prepared.row}: the create's answer was lost {age:.0f} s ago and Close's search does "
            f"not show the record yet (it can lag up to a minute): re-run batch {writer.batch_id} "
            f"in {writer.search_lag - age:.0f} s; closeflow looks the record up again before sending anything"
        )
    return None


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
