"""The ten Close actions as pydantic specs: what a user configures, checked before any record is read.

The same models become CLI options, play-node configuration and MCP tool schemas, so every field
carries a description that states formats and limits. Specs name *input keys* (a CSV column, a
JSONL key, a value a play computed) and *Close fields*; they never hold records.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

__all__ = [
    "CONTACT_FIELDS",
    "LEAD_FIELDS",
    "ActionSpec",
    "DeleteContacts",
    "DeleteLeads",
    "InsertContact",
    "InsertLead",
    "MatchRule",
    "SearchContacts",
    "SearchLeads",
    "UpdateContacts",
    "UpdateLeads",
    "UpsertContacts",
    "UpsertLeads",
    "WriteSpec",
    "custom_field_name",
    "input_keys",
    "parse_spec",
]

ADDRESS_PARTS = ("label", "address_1", "address_2", "city", "state", "zipcode", "country")
# Standard fields a mapping or constant may write (close-api.md §4.1, §4.2). `status` takes a
# label or an id; `address.<part>` keys build one address from separate input columns.
LEAD_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "url",
    "status",
    "status_id",
    "addresses",
    *(f"address.{part}" for part in ADDRESS_PARTS),
)
CONTACT_FIELDS: tuple[str, ...] = ("name", "title", "emails", "phones", "urls")
# What a match rule may look up, besides custom."Name" (Advanced Filtering can find these, §3.5).
MATCHABLE: dict[str, tuple[str, ...]] = {
    "lead": ("id", "url", "domain", "name", "description"),
    "contact": ("id", "email", "phone", "url", "domain", "name", "title"),
}

_MAPPINGS = (
    'Close standard field -> input key, e.g. {{"name": "full_name"}}. Fields: {fields}. '
    "An input value that is missing or empty leaves the Close field as it is."
)
_CUSTOM = (
    'Custom field name or id (cf_…) -> input key, e.g. {"Lead Source": "source"}. Values are '
    "checked and converted by the field's type: number, date (YYYY-MM-DD), datetime (ISO 8601, "
    "naive means UTC), choices (one of the choices, case-insensitive), multi-value fields (a list "
    "or comma-separated text), user (id, email or full name), contact (cont_… id)."
)
_CONSTANTS = (
    'Fixed values written on every record: Close standard field or custom."Field Name" -> value, '
    'e.g. {"status": "Qualified", "custom.\\"Source\\"": "Event"}. A constant wins over a mapping '
    "of the same field. null unsets a custom field."
)
_KEY = (
    "Input key holding a stable, unique id for each input record (for the write ledger and for "
    "resuming a batch). Default: the first match value (as property=value); else a hash of the "
    "record's content and its row number."
)


def custom_field_name(key: str) -> str | None:
    """``custom."Lead Source"`` / ``custom.Lead Source`` / ``custom.cf_…`` -> the name or id; else None."""
    if not key.startswith("custom."):
        return None
    name = key.removeprefix("custom.").strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return name or None


# Spec fields whose value is one input key (the rest name keys inside mappings, custom and match).
_KEY_FIELDS = ("email", "phone", "associated_lead_id", "key", "lead_id", "note", "contact_id")


def input_keys(spec: Any) -> list[tuple[str, str, str]]:
    """Every input key ``spec`` reads, as ``(key, spec field, what it fills)``: ``("full_name",
    "mappings", "name")``, ``("source", "custom", "Lead Source")``, ``("email", "match", "email")``,
    ``("lead", "associated_lead_id", "")``."""
    found = [(key, "mappings", field) for field, key in getattr(spec, "mappings", {}).items()]
    found += [(key, "custom", name) for name, key in getattr(spec, "custom", {}).items()]
    found += [(rule.value, "match", rule.property) for rule in getattr(spec, "match", [])]
    for name in _KEY_FIELDS:
        key = getattr(spec, name, None)
        if isinstance(key, str) and key:
            found.append((key, name, ""))
    return found


def _check_fields(keys: Any, allowed: tuple[str, ...], what: str, *, custom_ok: bool) -> None:
    for key in keys:
        if custom_ok and custom_field_name(key) is not None:
            continue
        if key not in allowed:
            extra = ', or custom."Field Name"' if custom_ok else ""
            raise ValueError(f'{what}: unknown field "{key}"; use one of {", ".join(allowed)}{extra}')


class MatchRule(BaseModel):
    """One way to find the Close record an input record stands for."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(
        description=(
            "What to look up in Close: id, email / phone (contacts), url (exact, ignoring scheme, "
            "www. and a trailing slash), domain (the url's host), name, title or description, or a "
            'custom field as custom."Field Name" or custom.cf_…. Comparison is exact after '
            "normalising (emails lower-cased, phones as E.164 digits, text case-insensitive)."
        )
    )
    value: str = Field(description='Input key holding the value to look up, e.g. "email".')


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object_type: Literal["lead", "contact"]


class WriteSpec(_Spec):
    """What every writing action shares."""

    mappings: dict[str, str] = Field(default_factory=dict)
    custom: dict[str, str] = Field(default_factory=dict, description=_CUSTOM)
    constants: dict[str, Any] = Field(default_factory=dict, description=_CONSTANTS)
    key: str | None = Field(default=None, description=_KEY)
    match: list[MatchRule] = Field(
        default_factory=list,
        description="Ordered match rules; for each record the first rule whose input value is present "
        "is used to look the record up in Close (lookups are batched, many values per search).",
    )
    dry_run: bool = Field(
        default=False,
        description="Look records up and report the plan (create / update with a field-level diff / "
        "unchanged / delete) without sending any write.",
    )
    stop_on_invalid: bool = Field(
        default=False,
        description="false: a record with a bad value fails alone and the rest are written. true: the "
        "run stops before writing a chunk that holds a bad record (earlier chunks stay written; "
        "validate the whole input first with closeflow.actions.validate for all-or-nothing).",
    )

    @model_validator(mode="after")
    def _known_fields(self) -> WriteSpec:
        allowed = LEAD_FIELDS if self.object_type == "lead" else CONTACT_FIELDS
        _check_fields(self.mappings, allowed, "mappings", custom_ok=False)
        _check_fields(self.constants, allowed, "constants", custom_ok=True)
        matchable = MATCHABLE[self.object_type]
        _check_fields([r.property for r in self.match], matchable, "match", custom_ok=True)
        return self


class _Matched(WriteSpec):
    """Specs that find existing records: ``match`` (ordered) or the ``match_property`` shorthand."""

    match_property: str | None = Field(
        default=None,
        description="Shorthand for one match rule: the property to look up in Close (as in match: id, "
        'email, phone, url, domain, name, title, description or custom."Field Name").',
    )
    match_value: str | None = Field(
        default=None, description="Shorthand for one match rule: the input key holding the value."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("match_property") or data.get("match_value")):
            prop, value = data.get("match_property"), data.get("match_value")
            if not prop or not value:
                raise ValueError("match_property and match_value go together; give both")
            rules = list(data.get("match") or [])
            data = {**data, "match": [*rules, {"property": prop, "value": value}]}
            data.pop("match_property")
            data.pop("match_value")
        return data

    @model_validator(mode="after")
    def _needs_match(self) -> _Matched:
        if not self.match:
            raise ValueError(
                'give at least one match rule, e.g. match=[{"property": "email", "value": "email"}] '
                "or match_property/match_value"
            )
        return self


def _on_many() -> Any:
    return Field(
        default="fail",
        description="When several Close records match one input record: update_all, first (the oldest "
        "created) or fail (the record fails, naming the matches).",
    )


def _arrays() -> Any:
    return Field(
        default="merge",
        description="emails, phones, urls, addresses and multi-value custom fields: merge appends new "
        "values and keeps every existing one (Close replaces whole arrays on update); replace writes "
        "exactly the input's values.",
    )


def _on_none() -> Any:
    return Field(default="skip", description="When no Close record matches: skip the record or fail it.")


class _ContactInputs(BaseModel):
    email: str | None = Field(
        default=None, description="Input key holding one email address (added to emails)."
    )
    email_type: str = Field(default="office", description="Close email type for `email`: office, home, …")
    phone: str | None = Field(
        default=None, description="Input key holding one phone number (added to phones)."
    )
    phone_type: str = Field(default="office", description="Close phone type for `phone`: office, mobile, …")


def _lead_mappings() -> Any:
    return Field(default_factory=dict, description=_MAPPINGS.format(fields=", ".join(LEAD_FIELDS)))


def _contact_mappings() -> Any:
    return Field(
        default_factory=dict,
        description=_MAPPINGS.format(fields=", ".join(CONTACT_FIELDS))
        + " emails/phones/urls take one value, a list, comma-separated text or objects with a type.",
    )


def _associated() -> Any:
    return Field(
        default=None,
        description="Input key holding the Close lead id (lead_…) the contact belongs to. Without it, "
        "Close creates a new lead named after the contact.",
    )


def _insert_match() -> Any:
    return Field(
        default_factory=list,
        description="How to find a just-created record again if Close's answer to the create was lost "
        "(so it is never created twice). Default: url then name (leads); email, phone, name (contacts).",
    )


class InsertLead(WriteSpec):
    """Create one lead per input record."""

    action: Literal["insert_lead"] = "insert_lead"
    object_type: Literal["lead"] = "lead"
    mappings: dict[str, str] = _lead_mappings()
    match: list[MatchRule] = _insert_match()


class InsertContact(WriteSpec, _ContactInputs):
    """Create one contact per input record, under the given lead (or a new one)."""

    action: Literal["insert_contact"] = "insert_contact"
    object_type: Literal["contact"] = "contact"
    mappings: dict[str, str] = _contact_mappings()
    associated_lead_id: str | None = _associated()
    match: list[MatchRule] = _insert_match()


class UpdateLeads(_Matched):
    """Update the leads that match each input record; never creates."""

    action: Literal["update_leads"] = "update_leads"
    object_type: Literal["lead"] = "lead"
    mappings: dict[str, str] = _lead_mappings()
    on_many: Literal["update_all", "first", "fail"] = _on_many()
    on_none: Literal["skip", "fail"] = _on_none()
    arrays: Literal["merge", "replace"] = _arrays()


class UpdateContacts(_Matched, _ContactInputs):
    """Update the contacts that match each input record; never creates."""

    action: Literal["update_contacts"] = "update_contacts"
    object_type: Literal["contact"] = "contact"
    mappings: dict[str, str] = _contact_mappings()
    on_many: Literal["update_all", "first", "fail"] = _on_many()
    on_none: Literal["skip", "fail"] = _on_none()
    arrays: Literal["merge", "replace"] = _arrays()


class UpsertLeads(_Matched):
    """Update the matching lead, or create one when none matches."""

    action: Literal["upsert_leads"] = "upsert_leads"
    object_type: Literal["lead"] = "lead"
    mappings: dict[str, str] = _lead_mappings()
    on_many: Literal["update_all", "first", "fail"] = _on_many()
    arrays: Literal["merge", "replace"] = _arrays()


class UpsertContacts(_Matched, _ContactInputs):
    """Update the matching contact, or create one (under the associated lead) when none matches."""

    action: Literal["upsert_contacts"] = "upsert_contacts"
    object_type: Literal["contact"] = "contact"
    mappings: dict[str, str] = _contact_mappings()
    associated_lead_id: str | None = _associated()
    on_many: Literal["update_all", "first", "fail"] = _on_many()
    arrays: Literal["merge", "replace"] = _arrays()
    lead_mismatch: Literal["create_under_lead", "update_in_place", "fail"] = Field(
        default="fail",
        description="When the matched contact belongs to another lead than the associated lead id "
        "(Close cannot move a contact): create_under_lead creates a new contact under the given "
        "lead, update_in_place updates the contact where it is, fail fails the record.",
    )


class _Search(_Spec):
    where: str | None = Field(
        default=None,
        description='Filter text, e.g. status = "Qualified" and custom."Tier" = "A". Operators: = != < <= '
        "> >= contains starts_with in exists missing; and / or / not; custom fields as "
        'custom."Field Name". Empty: every record.',
    )
    sort: str | None = Field(
        default=None,
        description="Field to sort by, - first for descending (-date_updated). Default date_updated "
        "ascending, which streams any number of records; other sorts stop at Close's 10,000 "
        "and need a limit.",
    )
    limit: int | None = Field(default=None, ge=1, description="Return at most this many records.")
    fields: list[str] = Field(
        default_factory=lambda: ["display_name"],
        description='Fields to return (id is always included); custom fields as custom."Field Name".',
    )

    @field_validator("where")
    @classmethod
    def _blank_is_everything(cls, where: str | None) -> str | None:
        return where if where is None or where.strip() else None


class SearchLeads(_Search):
    """Find leads with a filter."""

    action: Literal["search_leads"] = "search_leads"
    object_type: Literal["lead"] = "lead"


class SearchContacts(_Search):
    """Find contacts with a filter."""

    action: Literal["search_contacts"] = "search_contacts"
    object_type: Literal["contact"] = "contact"


class _Delete(_Spec):
    where: str | None = Field(
        default=None,
        description="Filter text selecting the records to delete (as in search). Either where or "
        "match (with input records) is required.",
    )
    match: list[MatchRule] = Field(
        default_factory=list,
        description="Delete the records matching each input record (as in update). Either where or "
        "match is required.",
    )
    key: str | None = Field(default=None, description=_KEY)
    on_many: Literal["all", "first", "fail"] = Field(
        default="fail",
        description="When several Close records match one input record: delete all, the first "
        "(oldest created) or fail.",
    )
    on_none: Literal["skip", "fail"] = _on_none()
    max_affected: int = Field(
        default=10,
        ge=0,
        description="Refuse (before deleting anything) when more records would be deleted, unless "
        "force is set. A dry run shows the count.",
    )
    force: bool = Field(default=False, description="Delete even above max_affected.")
    dry_run: bool = Field(default=False, description="Report what would be deleted; delete nothing.")

    @field_validator("where")
    @classmethod
    def _not_blank(cls, where: str | None) -> str | None:
        if where is not None and not where.strip():
            raise ValueError("where is empty; a delete needs criteria (deleting everything is refused)")
        return where

    @model_validator(mode="after")
    def _criteria(self) -> _Delete:
        if self.where is None and not self.match:
            raise ValueError("a delete needs criteria: give where (filter text) or match rules")
        if self.where is not None and self.match:
            raise ValueError("give where or match, not both")
        _check_fields([r.property for r in self.match], MATCHABLE[self.object_type], "match", custom_ok=True)
        return self


class DeleteLeads(_Delete):
    """Delete leads (and, as Close does, their contacts, opportunities, tasks and activities)."""

    action: Literal["delete_leads"] = "delete_leads"
    object_type: Literal["lead"] = "lead"


class DeleteContacts(_Delete):
    """Delete contacts."""

    action: Literal["delete_contacts"] = "delete_contacts"
    object_type: Literal["contact"] = "contact"


class InsertNote(BaseModel):
    """Add a plain-text note to a lead's timeline in Close (a Note activity)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["insert_note"] = "insert_note"
    lead_id: str = Field(description="Input key holding the Close lead id (lead_…) the note goes on.")
    note: str = Field(description="Input key holding the note's plain text (Close shows it on the lead).")
    contact_id: str | None = Field(
        None, description="Input key holding a contact id (cont_…) of the same lead to attach the note to."
    )
    dry_run: bool = Field(False, description="Plan the note and send nothing.")


ActionSpec = Annotated[
    InsertLead
    | InsertContact
    | UpdateLeads
    | UpdateContacts
    | UpsertLeads
    | UpsertContacts
    | SearchLeads
    | SearchContacts
    | DeleteLeads
    | DeleteContacts
    | InsertNote,
    Field(discriminator="action"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ActionSpec)


def parse_spec(data: dict[str, Any]) -> Any:
    """The spec for ``{"action": "upsert_contacts", …}`` (pydantic's ValidationError says what is wrong)."""
    return _ADAPTER.validate_python(data)
