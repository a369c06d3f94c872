"""What happened to each input record, and the totals of a batch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["created", "updated", "unchanged", "deleted", "skipped", "failed", "planned"]
Plan = Literal["create", "update", "unchanged", "delete", "skip", "fail"]


@dataclass(frozen=True)
class Change:
    """One field a write changes (or would change, in a dry run)."""

    field: str
    before: Any
    after: Any


@dataclass
class Outcome:
    """One input record's result: ``status`` is what happened, ``plan`` what was decided.

    In a dry run writes are ``planned`` (the ``plan`` says create / update / delete); ``changes``
    is the field-level diff of an update. ``error`` carries Close's message and ``field_errors``
    its per-field messages when Close refused a write.
    """

    key: str
    row: int | None
    status: Status
    plan: Plan
    ids: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    error: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of a ``--report`` file)."""
        out: dict[str, Any] = {"key": self.key, "row": self.row, "status": self.status, "plan": self.plan}
        if self.ids:
            out["ids"] = list(self.ids)
        if self.changes:
            out["changes"] = [{"field": c.field, "before": c.before, "after": c.after} for c in self.changes]
        for name in ("error", "note"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.field_errors:
            out["field_errors"] = dict(self.field_errors)
        return out


@dataclass
class Summary:
    """Running totals of a batch: records by status and by plan, and notes for the user."""

    by_status: Counter[str] = field(default_factory=Counter)
    by_plan: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return sum(self.by_status.values())

    def add(self, outcome: Outcome) -> None:
        self.by_status[outcome.status] += 1
        self.by_plan[outcome.plan] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "by_status": dict(self.by_status),
            "by_plan": dict(self.by_plan),
            "notes": list(self.notes),
        }
