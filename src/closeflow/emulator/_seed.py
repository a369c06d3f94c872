"""A deterministic, realistic organization for tests, demos and benchmarks.

Opportunities, tasks and activities are added by ``_seed_children.py`` (ratios documented there).

``seed_org(org, seed, leads)`` gives the same users, statuses, custom fields, leads and ids for
the same seed. Records are built as finished dicts and stored directly (no per-record validation
path), so 100k leads with contacts take seconds. Dates spread over the year before the clock's
now; about a third of the leads share ``date_updated`` values with many others (as a bulk edit
leaves them), which is exactly where keyset pagination needs its id tiebreak.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable
from typing import Any, TypeVar

from closeflow.emulator._dice import Dice
from closeflow.emulator._ids import iso_utc
from closeflow.emulator._org import Organization
from closeflow.emulator._records import HTML_URL
from closeflow.emulator._routes_custom_fields import custom_field_definition
from closeflow.emulator._routes_org import new_pipeline
from closeflow.emulator._seed_children import opportunity_fields, seed_children

T = TypeVar("T")
YEAR = 365 * 86_400.0
FIRST_NAMES = [
    "Ada",
    "Gob",
    "Lucille",
    "Maeby",
    "Tobias",
    "Lindsay",
    "George",
    "Buster",
    "Kitty",
    "Ann",
    "Oscar",
]
LAST_NAMES = [
    "Bluth",
    "Fünke",
    "Sitwell",
    "Veal",
    "Austero",
    "Lovelace",
    "Hopper",
    "Turing",
    "Nakamura",
    "Osei",
]
COMPANY_WORDS = [
    "Acme",
    "Bluth",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
]
COMPANY_SUFFIXES = ["Company", "Inc", "Labs", "Group", "Holdings", "Systems", "Partners", "GmbH", "Ltd"]
CITIES = [
    ("San Francisco", "CA", "US"),
    ("Austin", "TX", "US"),
    ("London", None, "GB"),
    ("Berlin", None, "DE"),
]
INDUSTRIES = ["Software", "Retail", "Manufacturing", "Healthcare", "Finance"]
SOURCES = ["Inbound", "Outbound", "Referral", "Event", "Partner"]
LEAD_STATUSES = ["Potential", "Bad Fit", "Qualified", "Customer"]
OPPORTUNITY_STATUSES = [("Active", "active"), ("Demo Scheduled", "active"), ("Won", "won"), ("Lost", "lost")]
FIELD_SPECS: list[dict[str, Any]] = [
    {"name": "Industry", "type": "text"},
    {"name": "Employees", "type": "number"},
    {"name": "Contract Start", "type": "date"},
    {"name": "Last Demo", "type": "datetime"},
    {"name": "Source", "type": "choices", "choices": SOURCES},
    {
        "name": "Products",
        "type": "choices",
        "choices": ["CRM", "Dialer", "Inbox", "API"],
        "accepts_multiple_values": True,
    },
    {"name": "Owner", "type": "user"},
    {"name": "Champion", "type": "contact"},
    {"name": "Legacy ID", "type": "hidden"},
]


def seed_org(org: Organization, seed: int, leads: int) -> None:
    # Millions of new dicts would trigger the cyclic GC over and over (half the time at 100k leads);
    # seeded records hold no cycles, so collection waits until the org is built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _seed(org, seed, leads)
    finally:
        if was_enabled:
            gc.enable()


def _seed(org: Organization, seed: int, leads: int) -> None:
    rng = Dice(seed)
    now = org.clock.now()
    _users(org, rng, now)
    owner = org.owner_id
    org.lead_statuses = [
        {"id": org.ids.new("stat_"), "label": label, "organization_id": org.id} for label in LEAD_STATUSES
    ]
    statuses = [{"label": label, "type": kind} for label, kind in OPPORTUNITY_STATUSES]
    org.pipelines = [new_pipeline(org, "Sales", statuses, owner)]
    fields = {object_type: _fields(org, object_type, owner) for object_type in ("lead", "contact")}
    shared = custom_field_definition(
        org,
        "shared",
        {
            "name": "Region",
            "type": "choices",
            "choices": ["EMEA", "AMER", "APAC"],
            "associations": [{"object_type": "lead"}, {"object_type": "contact"}],
        },
        owner,
    )
    org.custom_fields["shared"][shared["id"]] = shared
    fields["lead"].append(shared)
    fields["contact"].append(shared)
    if leads:
        _leads(org, rng, now, leads, fields)
    # Children come after the leads, from their own random stream: a seed's leads stay the same.
    opportunity_fields(org, owner)
    seed_children(org, seed)
    org.invalidate_orders()


def _users(org: Organization, rng: Dice, now: float) -> None:
    for index in range(rng.between(3, 5)):
        first, last = FIRST_NAMES[index], rng.pick(LAST_NAMES)
        created = iso_utc(now - YEAR - rng.uniform(0, YEAR))
        user_id = org.ids.new("user_")
        org.users[user_id] = {
            "id": user_id,
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{index}@example.com",
            "image": None,
            "organizations": [org.id],
            "last_used_timezone": "America/Los_Angeles",
            "email_verified_at": created,
            "google_profile_image_url": None,
            "date_created": created,
            "date_updated": created,
        }


def _fields(org: Organization, object_type: str, owner: str) -> list[dict[str, Any]]:
    out = []
    for spec in FIELD_SPECS:
        definition = custom_field_definition(org, object_type, spec, owner)
        org.custom_fields[object_type][definition["id"]] = definition
        out.append(definition)
    return out


def _leads(
    org: Organization, rng: Dice, now: float, count: int, fields: dict[str, list[dict[str, Any]]]
) -> None:
    user_ids = list(org.users)
    user_names = {uid: org.user_name(uid) for uid in user_ids}
    # Bulk edits: a few dozen instants shared by many leads' date_updated.
    lead_makers = _value_makers(rng, fields["lead"], user_ids)
    contact_makers = _value_makers(rng, fields["contact"], user_ids)
    batches = sorted(now - rng.uniform(0, YEAR) for _ in range(40))
    statuses = org.lead_statuses
    for _ in range(count):
        created_ts = round(now - rng.uniform(0, YEAR), 3)
        updated_ts = created_ts + rng.uniform(0, now - created_ts)
        if rng.random() < 0.35:
            first_later = bisect.bisect_left(batches, created_ts)
            if first_later < len(batches):
                updated_ts = rng.pick(batches[first_later:])
        created, updated = iso_utc(created_ts), iso_utc(updated_ts)
        author, editor = rng.pick(user_ids), rng.pick(user_ids)
        status = rng.pick(statuses)
        name = f"{rng.pick(COMPANY_WORDS)} {rng.pick(COMPANY_WORDS)} {rng.pick(COMPANY_SUFFIXES)}"
        lead_id = org.ids.new("lead_")
        lead: dict[str, Any] = {
            "id": lead_id,
            "name": name,
            "display_name": name,
            "description": rng.pick([None, "Met at a conference.", "Inbound demo request."]),
            "url": f"https://{name.split()[0].lower()}{rng.between(1, 9999)}.example.com",
            "status_id": status["id"],
            "status_label": status["label"],
            "addresses": [_address(rng) for _ in range(rng.between(0, 2))],
            "contact_ids": [],
            "opportunities": [],
            "tasks": [],
            "integration_links": [],
            "html_url": HTML_URL.format(lead_id),
            "organization_id": org.id,
            "created_by": author,
            "created_by_name": user_names[author],
            "updated_by": editor,
            "updated_by_name": user_names[editor],
            "date_created": created,
            "date_updated": updated,
        }
        for _ in range(rng.between(1, 4)):
            contact = _contact(org, rng, lead_id, author, editor, created, updated, name)
            contact.update(_custom_values(rng, contact_makers, []))
            org.records["contact"][contact["id"]] = contact
            lead["contact_ids"].append(contact["id"])
        lead.update(_custom_values(rng, lead_makers, lead["contact_ids"]))
        org.records["lead"][lead_id] = lead


def _contact(
    org: Organization,
    rng: Dice,
    lead_id: str,
    author: str,
    editor: str,
    created: str,
    updated: str,
    company: str,
) -> dict[str, Any]:
    first, last = rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)
    domain = company.split()[0].lower() + ".example.com"
    digits = f"{rng.between(201, 989)}{rng.between(200, 999)}{rng.between(0, 9999):04d}"
    phones = [
        {
            "phone": "+1" + digits,
            "phone_formatted": f"+1 {digits[:3]}-{digits[3:6]}-{digits[6:]}",
            "country": "US",
            "type": rng.pick(["office", "mobile"]),
        }
    ]
    return {
        "id": org.ids.new("cont_"),
        "lead_id": lead_id,
        "organization_id": org.id,
        "name": f"{first} {last}",
        "title": rng.pick([None, "CEO", "VP Sales", "Engineer", "Buyer"]),
        "display_name": f"{first} {last}",
        "emails": [
            {
                "email": f"{first.lower()}.{rng.between(1, 99_999)}@{domain}",
                "type": "office",
                "is_unsubscribed": False,
            }
        ],
        "phones": phones if rng.random() < 0.8 else [],
        "urls": [{"url": f"https://{domain}/{first.lower()}", "type": "url"}] if rng.random() < 0.3 else [],
        "integration_links": [],
        "created_by": author,
        "updated_by": editor,
        "date_created": created,
        "date_updated": updated,
    }


def _address(rng: Dice) -> dict[str, Any]:
    city, state, country = rng.pick(CITIES)
    return {
        "label": rng.pick(["business", "mailing"]),
        "address_1": f"{rng.between(1, 999)} Market St",
        "address_2": None,
        "city": city,
        "state": state,
        "zipcode": f"{rng.between(10000, 99999)}",
        "country": country,
    }


ValueMaker = Callable[[list[str]], Any]


def _value_makers(
    rng: Dice, fields: list[dict[str, Any]], user_ids: list[str]
) -> list[tuple[str, ValueMaker]]:
    """One value generator per field, chosen once: seeding calls them millions of times."""
    dates = [f"202{y}-{m:02d}-{d:02d}" for y in (3, 4, 5) for m in range(1, 13) for d in range(1, 29)]
    stamps = [
        f"2025-{m:02d}-{d:02d}T{h:02d}:00:00+00:00"
        for m in range(1, 13)
        for d in range(1, 29)
        for h in (9, 15)
    ]
    makers: list[tuple[str, ValueMaker]] = []
    for definition in fields:
        kind, choices = definition["type"], definition.get("choices") or []
        maker: ValueMaker
        if kind == "text" and definition["name"] == "Industry":
            maker = lambda _: rng.pick(INDUSTRIES)  # noqa: E731
        elif kind in ("text", "hidden"):
            maker = lambda _: f"L-{rng.between(1, 10**6)}"  # noqa: E731
        elif kind == "number":
            maker = lambda _: rng.between(1, 5000)  # noqa: E731
        elif kind == "date":
            maker = lambda _: rng.pick(dates)  # noqa: E731
        elif kind == "datetime":
            maker = lambda _: rng.pick(stamps)  # noqa: E731
        elif kind == "choices" and definition["accepts_multiple_values"]:
            maker = lambda _, c=choices: rng.sample(c, rng.between(1, 2))  # type: ignore[misc]  # noqa: E731
        elif kind == "choices":
            maker = lambda _, c=choices: rng.pick(c)  # type: ignore[misc]  # noqa: E731
        elif kind == "user":
            maker = lambda _: rng.pick(user_ids)  # noqa: E731
        elif kind == "contact":
            maker = lambda contact_ids: rng.pick(contact_ids) if contact_ids else None  # noqa: E731
        else:
            continue
        makers.append((f"custom.{definition['id']}", maker))
    return makers


def _custom_values(rng: Dice, makers: list[tuple[str, ValueMaker]], contact_ids: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    random = rng.random
    for key, maker in makers:
        if random() < 0.3:
            continue  # real orgs leave many fields empty
        value = maker(contact_ids)
        if value is not None:
            values[key] = value
    return values
