"""Records as the store sees them: canonical JSON, a content hash, and field-level differences.

The hash decides whether a re-sent record changed at all, so unchanged pages write nothing and log
nothing; the diff names exactly which top-level fields changed, for the change log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from closeflow.close import utc_text as close_utc_text
from closeflow.sync.store._types import StoreError


@dataclass(frozen=True)
class Incoming:
    """One upserted record, prepared once per page: its canonical text, hash and promoted values."""

    id: str
    text: str
    hash: str
    promoted: tuple[str | None, ...]

    @cached_property
    def record(self) -> dict[str, Any]:
        """The record as plain JSON values (tuples become lists, …): what the store will give back.

        Decoded only for records that changed; most records of a re-read page are unchanged."""
        return dict(json.loads(self.text))


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the same record always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def utc_text(now: datetime) -> str:
    """ISO 8601 UTC with microseconds; the one timestamp format the store writes (sorts as text)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise StoreError("commit_page(now=…) needs a timezone-aware datetime, e.g. datetime.now(UTC)")
    return close_utc_text(now)


def promoted_text(value: Any) -> str | None:
    """Promoted columns are TEXT: strings as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return canonical_json(value)


def prepare_page(model: str, upserts: Sequence[Mapping[str, Any]], promoted: Sequence[str]) -> list[Incoming]:
    """Validate and canonicalise a page's upserts; the last occurrence of a repeated id wins.

    Raises before anything is written, naming the offending record, so a bad page is never half-stored.
    """
    prepared: dict[str, Incoming] = {}
    for position, raw in enumerate(upserts):
        record_id = raw.get("id") if isinstance(raw, Mapping) else None
        if not isinstance(record_id, str) or not record_id:
            raise StoreError(
                f"{model}: upsert #{position} has no string 'id' (got {type(record_id).__name__}); "
                "every record committed to the store must carry Close's id"
            )
        try:
            text = canonical_json(raw)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"{model} {record_id}: the record is not plain JSON ({exc}); pass Close's decoded JSON as is"
            ) from exc
        values = tuple(promoted_text(raw.get(key)) for key in promoted)
        prepared.pop(record_id, None)  # re-insert so the page order follows the last occurrence
        prepared[record_id] = Incoming(record_id, text, content_hash(text), values)
    return list(prepared.values())


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    # Postgres' jsonb may give 1e20 back as an int; equal numbers are not a change.
    if isinstance(old, int | float) and isinstance(new, int | float):
        return old == new
    return canonical_json(old) == canonical_json(new)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Changed top-level fields and their old and new values; a missing key reads as ``None``."""
    fields = sorted(
        key
        for key in old.keys() | new.keys()
        if key not in old or key not in new or not _same(old[key], new[key])
    )
    return fields, {key: old.get(key) for key in fields}, {key: new.get(key) for key in fields}
