"""The deprecated ``GET /lead/?query=…`` search language, in the forms real clients send (§3.4).

Supported terms (space-separated, ANDed): ``*``; ``sort:updated`` / ``sort:created`` /
``sort:date_updated`` / ``sort:date_created`` (ascending; a leading ``-`` sorts descending —
Close's direction is unconfirmed); ``date_updated``/``date_created`` compared with
``>= > <= < =`` to any ISO form (quoted or not, date-only = midnight UTC); ``name:"…"``
(case-insensitive substring), ``status:"…"`` (label), ``id:lead_…``, ``email:…``,
``custom.NAME:"…"`` or ``custom.cf_…:"…"`` (equality, any element of a multi-value field);
``has:X`` and counts ``X:N`` / ``X>N`` … for X in ``_COUNTS`` (``times_communicated`` = calls +
emails + SMS); ``slice:N/M`` (the N-th of M stable slices by id hash, 1-based); and a related-
activity group such as ``call( date >= "2021-01-01" date < "2021-02-01")`` — leads with at least
one such activity whose ``date_created`` satisfies every date term inside.
Anything else is a 400 naming the term, rather than a silently wrong result.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from closeflow.emulator._errors import bad_request
from closeflow.emulator._ids import iso_utc, parse_datetime
from closeflow.emulator._org import Organization

Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(
    r"""\s*(?:
        (?P<star>\*)
      | (?P<group>\w+)\(\s*(?P<inner>[^()]*)\)
      | (?P<field>[\w.\-]+)\s*(?P<op>>=|<=|>|<|=|:)\s*(?P<value>"[^"]*"|[^\s"()]+)
    )""",
    re.VERBOSE,
)
# Things a lead "has", counted: contact data, children, and activities by `_type`.
_ACTIVITY_COUNTS = {
    "calls": ("Call",),
    "notes": ("Note",),
    "emails": ("Email",),
    "sms": ("SMS",),
    "meetings": ("Meeting",),
    "times_communicated": ("Call", "Email", "SMS"),
}
_CHILDREN = {"opportunities": "opportunity", "tasks": "task"}
_GROUPS = {"call": "Call", "note": "Note", "email": "Email", "sms": "SMS", "meeting": "Meeting"}
_COUNTS = (
    "phone_numbers",
    "email_addresses",
    "contacts",
    "addresses",
    "url",
    "opportunities",
    "tasks",
    *_ACTIVITY_COUNTS,
)
_SORT_KEYS = {
    "updated": "date_updated",
    "created": "date_created",
    "date_updated": "date_updated",
    "date_created": "date_created",
}
_DATE_FIELDS = ("date_updated", "date_created")


@dataclass
class LegacyQuery:
    predicates: list[Predicate] = field(default_factory=list)
    sort_key: str | None = None
    descending: bool = False

    def matches(self, lead: dict[str, Any]) -> bool:
        return all(predicate(lead) for predicate in self.predicates)


def parse_legacy_query(text: str, org: Organization) -> LegacyQuery:
    query = LegacyQuery()
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or match.end() == position:
            raise bad_request(f"Unsupported search query near {text[position : position + 40]!r}.")
        position = match.end()
        if match.group("star"):
            continue
        if match.group("group"):
            query.predicates.append(_group_predicate(match.group("group"), match.group("inner"), org))
            continue
        name, op, value = match.group("field"), match.group("op"), match.group("value").strip('"')
        if name == "sort" and op == ":":
            query.descending = value.startswith("-")
            key = _SORT_KEYS.get(value.lstrip("-"))
            if key is None:
                raise bad_request(f"Unsupported sort {value!r} in search query.")
            query.sort_key = key
        elif name == "slice" and op == ":":
            query.predicates.append(_slice_predicate(value))
        elif name == "has" and op == ":":
            if value not in _COUNTS:
                raise bad_request(f"Unsupported has:{value} in search query; known: {', '.join(_COUNTS)}.")
            query.predicates.append(_count_predicate(value, ">", "0", org))
        elif name in _COUNTS:
            query.predicates.append(_count_predicate(name, op, value, org))
        elif name in _DATE_FIELDS:
            query.predicates.append(_date_predicate(name, op, value))
        elif op == ":":
            query.predicates.append(_field_predicate(name, value, org))
        else:
            raise bad_request(f"Unsupported comparison {match.group(0).strip()!r} in search query.")
    return query


def _date_predicate(name: str, op: str, value: str) -> Predicate:
    try:
        bound = iso_utc(parse_datetime(value).timestamp())
    except ValueError:
        raise bad_request(f"Invalid date {value!r} in search query.") from None
    # Stored dates share one fixed format (UTC, microseconds, +00:00), so strings compare like times.
    compare: dict[str, Callable[[str], bool]] = {
        ">=": lambda v: v >= bound,
        ">": lambda v: v > bound,
        "<=": lambda v: v <= bound,
        "<": lambda v: v < bound,
        "=": lambda v: v[:10] == bound[:10] if len(value) == 10 else v == bound,
        ":": lambda v: v[:10] == bound[:10],
    }
    check = compare[op]
    return lambda lead: check(lead[name])


def _field_predicate(name: str, value: str, org: Organization) -> Predicate:
    wanted = value.lower()
    if name == "name":
        return lambda lead: wanted in (lead.get("name") or "").lower()
    if name == "status":
        return lambda lead: (lead.get("status_label") or "").lower() == wanted
    if name in ("id", "lead_id"):
        return lambda lead: lead["id"] == value
    if name == "email":

        def has_email(lead: dict[str, Any]) -> bool:
            contacts = org.children(lead["id"], "contact")
            return any(e["email"].lower() == wanted for c in contacts for e in c.get("emails", []))

        return has_email
    if name.startswith("custom."):
        ref = name[len("custom.") :]
        definition = next((f for f in org.fields_for("lead") if ref in (f["id"], f["name"])), None)
        if definition is None:
            raise bad_request(f"Unknown custom field {ref!r} in search query.")
        key = f"custom.{definition['id']}"

        def custom_equals(lead: dict[str, Any]) -> bool:
            stored = lead.get(key)
            values = stored if isinstance(stored, list) else [stored]
            return any(v is not None and _text(v) == wanted for v in values)

        return custom_equals
    raise bad_request(f"Unsupported search term {name + ':' + value!r}.")


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower()


def _count(org: Organization, lead: dict[str, Any], what: str) -> int:
    if what in _ACTIVITY_COUNTS:
        kinds = _ACTIVITY_COUNTS[what]
        return sum(1 for a in org.children(lead["id"], "activity") if a.get("_type") in kinds)
    if what in ("opportunities", "tasks"):
        return len(
            list(org.children(lead["id"], what.removesuffix("s").replace("opportunitie", "opportunity")))
        )
    if what == "addresses":
        return len(lead.get("addresses") or [])
    if what == "url":
        return 1 if lead.get("url") else 0
    contacts = list(org.children(lead["id"], "contact"))
    key = {"phone_numbers": "phones", "email_addresses": "emails"}.get(what)
    return len(contacts) if key is None else sum(len(c.get(key) or []) for c in contacts)


def _count_predicate(name: str, op: str, value: str, org: Organization) -> Predicate:
    try:
        bound = int(value)
    except ValueError:
        raise bad_request(f"{name} needs a whole number in search query, not {value!r}.") from None
    compare: dict[str, Callable[[int], bool]] = {
        ":": lambda n: n == bound,
        "=": lambda n: n == bound,
        ">": lambda n: n > bound,
        ">=": lambda n: n >= bound,
        "<": lambda n: n < bound,
        "<=": lambda n: n <= bound,
    }
    check = compare[op]
    return lambda lead: check(_count(org, lead, name))


def _slice_predicate(value: str) -> Predicate:
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise bad_request(f"slice needs N/M with 1 <= N <= M in search query, not {value!r}.")
    index, parts = int(match.group(1)) - 1, int(match.group(2))
    return lambda lead: zlib.crc32(lead["id"].encode()) % parts == index


def _group_predicate(group: str, inner: str, org: Organization) -> Predicate:
    kind = _GROUPS.get(group)
    if kind is None:
        raise bad_request(f"Unsupported group {group}( … ) in search query; known: {', '.join(_GROUPS)}.")
    # Each `date` term inside the group is a date_created condition on the activity itself.
    checks: list[Predicate] = []
    for match in _TERM.finditer(inner):
        if match.group("field") != "date" or match.group("op") == ":":
            raise bad_request(f"Unsupported term {match.group(0).strip()!r} inside {group}( … ).")
        checks.append(_date_predicate("date_created", match.group("op"), match.group("value").strip('"')))

    def has_matching_activity(lead: dict[str, Any]) -> bool:
        return any(
            a.get("_type") == kind and all(check(a) for check in checks)
            for a in org.children(lead["id"], "activity")
        )

    return has_matching_activity
