"""Insert a note on a lead: how a play or an agent leaves a trace on the lead's timeline (§4.5).

Not one of the ten record actions (notes are activities, not leads or contacts), but held to the
same rule: a note is created at most once per (batch, lead, text). The write ledger records the
intent before the POST; an answer lost in transit is resolved by looking for a note with the same
text on the lead, created since the intent, before anything is sent again. The same text may well
be on the lead already (another batch wrote it a minute ago): a note whose id the ledger records
for another write is never taken for this one's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from closeflow.actions._ledger import Ledger
from closeflow.actions._matching import lead_exists
from closeflow.actions._outcome import Change, Outcome
from closeflow.actions._specs import InsertNote
from closeflow.actions._writes import answer_unknown, created_since
from closeflow.close import CloseClient, CloseError, NotFound, ValidationError

ACTION = "insert_note"
NOTE_PATH = "/activity/note/"


def _key(lead_id: str, text: str) -> str:
    return f"note:{lead_id}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


async def insert_note(
    client: CloseClient,
    spec: InsertNote,
    record: dict[str, Any],
    *,
    ledger: Ledger,
    batch_id: str,
    run_id: str,
) -> Outcome:
    lead_id, text = record.get(spec.lead_id), record.get(spec.note)
    contact_id = record.get(spec.contact_id) if spec.contact_id else None
    if not isinstance(lead_id, str) or not lead_id.startswith("lead_"):
        error = f"{spec.lead_id}: expected a lead id (lead_…), got {lead_id!r}"
        return Outcome("note:?", None, "failed", "fail", error=error)
    if not isinstance(text, str) or not text.strip():
        return Outcome(
            f"note:{lead_id}", None, "failed", "fail", error=f"{spec.note}: the note text is empty"
        )
    key = _key(lead_id, text)
    payload: dict[str, Any] = {"lead_id": lead_id, "note": text}
    if contact_id:
        payload["contact_id"] = contact_id
    changes = [Change(name, None, value) for name, value in payload.items()]
    if spec.dry_run:
        problem = await _refused(client, lead_id, contact_id)
        if problem is not None:
            return Outcome(key, None, "failed", "fail", error=problem)
        return Outcome(key, None, "planned", "create", changes=changes)
    previous = ledger.entries(batch_id, ACTION, [key]).get(key)
    if previous is not None and previous.done:
        ids = list(previous.close_ids)
        return Outcome(key, None, "skipped", "skip", ids=ids, note="already done in this batch")
    since = client.clock.now()
    if previous is not None and previous.pending and previous.intent_at is not None:
        # An earlier attempt died after its intent: the note may exist already.
        since = previous.intent_at
        found = await _find(client, ledger, lead_id, text, since)
        if found:
            return _done(ledger, batch_id, key, run_id, found, client, recovered=True)
    ledger.record_intent(batch_id, key, ACTION, run_id=run_id, row=None, at=since)
    for attempt in (1, 2):
        try:
            created = await client.post(NOTE_PATH, json=payload)
        except CloseError as exc:
            if not answer_unknown(exc):
                errors = exc.field_errors if isinstance(exc, ValidationError) else {}
                ledger.record_outcome(
                    batch_id, key, ACTION, run_id=run_id, row=None, status="failed", close_ids=[],
                    error=str(exc), at=client.clock.now(),
                )  # fmt: skip
                return Outcome(key, None, "failed", "create", error=str(exc), field_errors=errors)
            found = await _find(client, ledger, lead_id, text, since)
            if found:
                return _done(ledger, batch_id, key, run_id, found, client, recovered=True)
            if attempt == 2:
                error = f"{exc}; the note's answer was lost twice: check the lead, then re-run"
                return Outcome(key, None, "failed", "create", error=error)
            continue  # not in Close: the POST was not applied, so sending it again is safe
        return _done(ledger, batch_id, key, run_id, created, client, changes=changes)
    raise AssertionError("unreachable")


async def _refused(client: CloseClient, lead_id: str, contact_id: Any) -> str | None:
    """Why Close would refuse the note, for a dry run to say up front (a real run pays no extra
    request: Close's own 400 says it)."""
    if not await lead_exists(client, lead_id):
        return f"lead {lead_id} does not exist in Close: check the lead id"
    if not contact_id:
        return None
    if not isinstance(contact_id, str) or not contact_id.startswith("cont_"):
        return f"expected a contact id (cont_…), got {contact_id!r}"
    try:
        contact = await client.get(f"/contact/{contact_id}/", params={"_fields": "id,lead_id"})
    except NotFound:
        return f"contact {contact_id} does not exist in Close: check the contact id"
    if contact.get("lead_id") != lead_id:
        return (
            f"contact {contact_id} belongs to lead {contact.get('lead_id')}, not {lead_id}: a note's "
            "contact must be one of its lead's contacts"
        )
    return None


async def _find(
    client: CloseClient, ledger: Ledger, lead_id: str, text: str, since: float
) -> dict[str, Any] | None:
    """The note this key's intent (at ``since``) may have created: newest first, as Close lists them."""
    page = await client.get(NOTE_PATH, params={"lead_id": lead_id, "_limit": 100})
    same = [n for n in page.get("data", []) if n.get("note") == text]
    recent = created_since(same, since)  # with its clock-skew margin
    # The skew margin also lets in an identical note written shortly before the intent; one the
    # ledger already records for another write is that one, not ours.
    taken = ledger.recorded([str(n["id"]) for n in recent]) if recent else set()
    ours = [n for n in recent if str(n["id"]) not in taken]
    return ours[0] if ours else None


def _done(
    ledger: Ledger,
    batch_id: str,
    key: str,
    run_id: str,
    note: dict[str, Any],
    client: CloseClient,
    *,
    recovered: bool = False,
    changes: list[Change] | None = None,
) -> Outcome:
    ids = [str(note["id"])]
    ledger.record_outcome(batch_id, key, ACTION, run_id=run_id, row=None, status="created", close_ids=ids,
                          error=None, at=client.clock.now())  # fmt: skip
    why = "recovered: the note's answer was lost; found on the lead by its text" if recovered else None
    return Outcome(key, None, "created", "create", ids=ids, changes=changes or [], note=why)
