"""The custom-field registry: Close custom fields by name or id, and their values by type.

Users name custom fields ("Lead Source"); Close's API speaks ids (``custom.cf_…``). The registry
reads each object's field schema once, resolves names and ids, and turns user-supplied values into
what Close accepts for the field's type, so a bad value fails here with a specific message instead
of as an opaque 400 half-way through a batch.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from ._errors import ConfigError, NotFound
from ._values import parse_moment, parse_number

__all__ = [
    "AmbiguousCustomField",
    "CustomField",
    "CustomFieldRegistry",
    "CustomFieldValueError",
    "UnknownCustomField",
    "coerce_scalar",
    "single_valued",
    "value_key",
]

# Close ids are `cf_…`; older fields keep type-specific prefixes such as `lcf_` (close-api.md §2.1).
_FIELD_ID = re.compile(r"^[a-z]*cf_[A-Za-z0-9]+$")
_TEXT_TYPES = frozenset({"text", "textarea", "hidden"})
_PAGE = 100


class _Fetcher(Protocol):
    async def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CustomField:
    id: str
    name: str
    type: str
    object_type: str
    accepts_multiple_values: bool = False
    choices: tuple[str, ...] = ()
    is_shared: bool = False

    @classmethod
    def from_close(cls, raw: Mapping[str, Any], object_type: str) -> CustomField:
        return cls(
            id=str(raw["id"]),
            name=str(raw.get("name") or raw["id"]),
            type=str(raw.get("type") or "text"),
            object_type=object_type,
            accepts_multiple_values=bool(raw.get("accepts_multiple_values")),
            choices=tuple(str(c) for c in raw.get("choices") or ()),
            is_shared=bool(raw.get("is_shared")),
        )


def value_key(field: CustomField) -> str:
    """The flat key Close uses for the field's value on records and in writes."""
    return f"custom.{field.id}"


class UnknownCustomField(ConfigError, LookupError):
    """No custom field of that name or id on the object type (after one reload).

    A ``ConfigError``: the fix is in the user's mapping, play or ``--where`` text, not a retry.
    """

    def __init__(self, object_type: str, name_or_id: str, suggestions: list[str]) -> None:
        self.object_type = object_type
        self.name_or_id = name_or_id
        self.suggestions = suggestions
        message = f'unknown {object_type} custom field "{name_or_id}"'
        if suggestions:
            message += "; did you mean " + " or ".join(f'"{s}"' for s in suggestions) + "?"
        super().__init__(message)


class AmbiguousCustomField(ConfigError, LookupError):
    """Several fields answer to one name (differing only by case, or a shared and a local field)."""

    def __init__(self, object_type: str, name: str, candidates: list[CustomField]) -> None:
        self.object_type = object_type
        self.name = name
        self.candidates = candidates
        listed = ", ".join(f'"{f.name}" ({f.id})' for f in candidates)
        super().__init__(
            f'{object_type} custom field "{name}" is ambiguous: {listed}; use the field id instead'
        )


class CustomFieldValueError(ConfigError, ValueError):
    """A value that the field's type cannot hold."""

    def __init__(self, field: CustomField, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        what = f'{field.object_type} custom field "{field.name}" ({field.type})'
        super().__init__(f"{what} cannot take {_show(value)}: {reason}")


def _show(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return repr(value)


def _near(word: str, candidates: Iterable[str]) -> list[str]:
    pool = {c.casefold(): c for c in candidates}
    return [pool[m] for m in difflib.get_close_matches(word.casefold(), list(pool), n=3, cutoff=0.6)]


class CustomFieldRegistry:
    """Custom fields of some Close object types, loaded from Close and looked up by name or id."""

    def __init__(
        self, client: _Fetcher, *, object_types: Iterable[str] = ("lead", "contact", "opportunity")
    ) -> None:
        self._client = client
        self.object_types = tuple(object_types)
        self._fields: dict[str, list[CustomField]] = {}
        self._users: list[dict[str, Any]] | None = None

    # -- loading ----------------------------------------------------------------------------

    async def load(self) -> None:
        """(Re)read the fields of every object type."""
        fields: dict[str, list[CustomField]] = {}
        for object_type in self.object_types:
            fields[object_type] = [
                CustomField.from_close(raw, object_type) for raw in await self._read(object_type)
            ]
        self._fields = fields

    async def _read(self, object_type: str) -> list[dict[str, Any]]:
        try:
            # The schema lists every field usable on the object, shared ones included.
            schema = await self._client.get(f"/custom_field_schema/{object_type}/")
            return list(schema.get("fields") or [])
        except NotFound:
            pass
        # Older deployments: the per-type list omits shared fields, so add the shared fields
        # associated with this object type.
        own = await self._all_pages(f"/custom_field/{object_type}/")
        try:
            shared = await self._all_pages("/custom_field/shared/")
        except NotFound:
            shared = []
        for raw in shared:
            if any(a.get("object_type") == object_type for a in raw.get("associations") or ()):
                own.append({**raw, "is_shared": True})
        return own

    async def _all_pages(self, path: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = await self._client.get(path, {"_skip": len(rows), "_limit": _PAGE})
            data = list(page.get("data") or [])
            rows.extend(data)
            if not data or not page.get("has_more"):
                return rows

    def fields(self, object_type: str) -> list[CustomField]:
        """The loaded fields of an object type, in Close's display order."""
        self._check_type(object_type)
        return list(self._fields.get(object_type, []))

    def _check_type(self, object_type: str) -> None:
        if object_type not in self.object_types:
            known = ", ".join(self.object_types)
            raise ConfigError(f'custom fields of "{object_type}" are not loaded (known: {known})')

    # -- resolving ----------------------------------------------------------------------------

    async def resolve(self, object_type: str, name_or_id: str) -> CustomField:
        """The field called ``name_or_id`` (id, exact name, then case-insensitive name).

        An unknown name reloads the fields once, since fields may have been added in Close since
        the registry loaded (not when this call did the first load); a second miss raises
        ``UnknownCustomField``.
        """
        self._check_type(object_type)
        fresh = not self._fields
        if fresh:
            await self.load()
        found = self._find(object_type, name_or_id)
        if found is None and not fresh:
            await self.load()
            found = self._find(object_type, name_or_id)
        if found is None:
            names = [f.name for f in self._fields.get(object_type, [])]
            raise UnknownCustomField(object_type, name_or_id, _near(name_or_id, names))
        return found

    def _find(self, object_type: str, name_or_id: str) -> CustomField | None:
        fields = self._fields.get(object_type, [])
        if _FIELD_ID.match(name_or_id):
            for field in fields:
                if field.id == name_or_id:
                    return field
        for matches in (
            [f for f in fields if f.name == name_or_id],
            [f for f in fields if f.name.casefold() == name_or_id.casefold()],
        ):
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise AmbiguousCustomField(object_type, name_or_id, matches)
        return None

    def by_name(self, object_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """A record's ``custom.cf_…`` values keyed by field name (unknown ids keep their id)."""
        self._check_type(object_type)
        names = {value_key(f): f.name for f in self._fields.get(object_type, [])}
        return {
            names.get(key, key.removeprefix("custom.")): value
            for key, value in record.items()
            if key.startswith("custom.")
        }

    # -- values -------------------------------------------------------------------------------

    async def coerce(self, field: CustomField, value: Any) -> Any:
        """``value`` as Close accepts it for ``field``, or ``CustomFieldValueError``.

        Async because a user field may need the org's users (read once, on first need).
        ``None`` stays ``None`` (unset). Multi-value fields take a list or a comma-separated
        string and return a list.
        """
        if value is None:
            return None
        if field.accepts_multiple_values:
            items = _split(field, value)
            return [await self._coerce_one(field, item) for item in items]
        if isinstance(value, list | tuple | set):
            raise CustomFieldValueError(field, value, "the field holds one value, not a list")
        return await self._coerce_one(field, value)

    async def _coerce_one(self, field: CustomField, value: Any) -> Any:
        if field.type == "user":
            return await self._user_id(field, value)
        return coerce_scalar(field, value)

    async def _user_id(self, field: CustomField, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise CustomFieldValueError(field, value, "expected a user id, email or full name")
        try:
            return await self.user_id(value)
        except LookupError as exc:
            raise CustomFieldValueError(field, value, str(exc)) from None

    async def user_id(self, id_email_or_name: str) -> str:
        """The id of the user given by id, email or full name; ``LookupError`` says why not."""
        text = id_email_or_name.strip()
        if text.startswith("user_"):
            return text  # Close validates ids on write; no need to read the user list for them.
        users = await self.users()
        by_email = [u for u in users if str(u.get("email") or "").casefold() == text.casefold()]
        by_name = [u for u in users if _full_name(u).casefold() == text.casefold()]
        matches = by_email or by_name
        if len(matches) == 1:
            return str(matches[0]["id"])
        if matches:
            ids = ", ".join(str(u["id"]) for u in matches)
            raise LookupError(f"several users match ({ids}); use the user id")
        near = _near(text, [_full_name(u) for u in users] + [str(u.get("email") or "") for u in users])
        hint = "; did you mean " + " or ".join(f'"{n}"' for n in near) + "?" if near else ""
        raise LookupError(f"no user has that email or name{hint}")

    async def users(self) -> list[dict[str, Any]]:
        """The organization's users (``GET /user/``), read on first use."""
        if self._users is None:
            self._users = await self._all_pages("/user/")
        return self._users


def _full_name(user: Mapping[str, Any]) -> str:
    return " ".join(str(user.get(k) or "").strip() for k in ("first_name", "last_name")).strip()


def _split(field: CustomField, value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    raise CustomFieldValueError(field, value, "expected a list or a comma-separated string")


def coerce_scalar(field: CustomField, value: Any) -> Any:
    """One value of a non-user field, converted for Close (no I/O)."""
    kind = field.type
    if kind in _TEXT_TYPES:
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise CustomFieldValueError(field, value, "expected text")
        return value if isinstance(value, str) else str(value)
    if kind == "number":
        return _number(field, value)
    if kind == "date":
        return _date(field, value)
    if kind == "datetime":
        return _datetime(field, value)
    if kind == "choices":
        return _choice(field, value)
    if kind == "contact":
        if not isinstance(value, str) or not value.strip().startswith("cont_"):
            raise CustomFieldValueError(field, value, "expected a contact id (cont_…)")
        return value.strip()
    # custom_object and types Close adds later: pass ids and values through unchanged.
    return value


def _number(field: CustomField, value: Any) -> int | float:
    try:
        return parse_number(value)
    except ValueError as exc:
        raise CustomFieldValueError(field, value, str(exc)) from None


def _parse_moment(field: CustomField, value: Any) -> date | datetime:
    try:
        return parse_moment(value)
    except ValueError:
        raise CustomFieldValueError(field, value, "expected an ISO 8601 date such as 2026-01-31") from None


def _date(field: CustomField, value: Any) -> str:
    moment = _parse_moment(field, value)
    day = moment.date() if isinstance(moment, datetime) else moment
    return day.isoformat()


def _datetime(field: CustomField, value: Any) -> str:
    moment = _parse_moment(field, value)
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        # Close stores datetimes with an offset; a naive value most plausibly means UTC.
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _choice(field: CustomField, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise CustomFieldValueError(field, value, "expected one of the field's choices")
    text = str(value).strip()
    if text in field.choices:
        return text
    folded = [c for c in field.choices if c.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    valid = ", ".join(f'"{c}"' for c in field.choices) or "(none defined)"
    raise CustomFieldValueError(field, value, f"not one of the choices {valid}")


def single_valued(field: CustomField) -> CustomField:
    """The same field seen as holding one value (for filter conditions on one element)."""
    return dataclasses.replace(field, accepts_multiple_values=False)
