"""How Close stores a contact's emails, phones and urls and a lead's addresses (§4.1, §4.2).

Input may be loose (``"8004445555"``); Close answers with E.164 phones plus ``phone_formatted``
and ``country``, adds ``is_unsubscribed`` to emails, and fills every address key (the OpenAPI
``LeadAddress`` schema requires them all, null when unknown).
"""

from __future__ import annotations

import re
from typing import Any

from closeflow.emulator._errors import FieldErrors

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# Calling codes the emulator can name a country for; longest prefixes are tried first.
_COUNTRY_CODES = {
    "1": "US",
    "44": "GB",
    "49": "DE",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "31": "NL",
    "61": "AU",
    "81": "JP",
    "91": "IN",
    "55": "BR",
    "52": "MX",
    "420": "CZ",
    "48": "PL",
    "46": "SE",
}
ADDRESS_KEYS = ("label", "address_1", "address_2", "city", "state", "zipcode", "country")


def normalize_phone(raw: str) -> tuple[str, str, str | None] | None:
    """``(e164, formatted, country)`` or None when the input is not a phone number.

    Ten digits without a country code are US numbers (Close's default for US orgs).
    """
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        e164_digits = digits
    elif len(digits) == 10:
        e164_digits = "1" + digits
    elif len(digits) == 11 and digits.startswith("1"):
        e164_digits = digits
    else:
        return None
    if not 8 <= len(e164_digits) <= 15:
        return None
    if e164_digits.startswith("1") and len(e164_digits) == 11:
        national = e164_digits[1:]
        formatted = f"+1 {national[:3]}-{national[3:6]}-{national[6:]}"
        return "+" + e164_digits, formatted, "US"
    for size in (3, 2, 1):
        code = e164_digits[:size]
        if code in _COUNTRY_CODES:
            return "+" + e164_digits, f"+{code} {e164_digits[size:]}", _COUNTRY_CODES[code]
    return "+" + e164_digits, "+" + e164_digits, None


def normalize_emails(value: Any, where: str, errors: FieldErrors) -> list[dict[str, Any]]:
    items = _list_of_objects(value, where, errors)
    out = []
    for index, item in enumerate(items):
        email = item.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email.strip()):
            errors.field_errors[f"{where}.{index}.email"] = "Invalid email address."
            continue
        out.append(
            {
                "email": email.strip(),
                "type": str(item.get("type") or "office"),
                "is_unsubscribed": False,
            }
        )
    return out


def normalize_phones(value: Any, where: str, errors: FieldErrors) -> list[dict[str, Any]]:
    items = _list_of_objects(value, where, errors)
    out = []
    for index, item in enumerate(items):
        raw = item.get("phone")
        parsed = normalize_phone(raw) if isinstance(raw, str) else None
        if parsed is None:
            errors.field_errors[f"{where}.{index}.phone"] = "Invalid phone number."
            continue
        e164, formatted, country = parsed
        out.append(
            {
                "phone": e164,
                "phone_formatted": formatted,
                "country": country,
                "type": str(item.get("type") or "office"),
            }
        )
    return out


def normalize_urls(value: Any, where: str, errors: FieldErrors) -> list[dict[str, Any]]:
    items = _list_of_objects(value, where, errors)
    out = []
    for index, item in enumerate(items):
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            errors.field_errors[f"{where}.{index}.url"] = "This field is required."
            continue
        out.append({"url": url.strip(), "type": str(item.get("type") or "url")})
    return out


def normalize_addresses(value: Any, where: str, errors: FieldErrors) -> list[dict[str, Any]]:
    items = _list_of_objects(value, where, errors)
    out = []
    for item in items:
        address: dict[str, Any] = {key: item.get(key) for key in ADDRESS_KEYS}
        address["label"] = address["label"] or "business"
        out.append(address)
    return out


def _list_of_objects(value: Any, where: str, errors: FieldErrors) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.field_errors[where] = "Expected a list of objects."
        return []
    return value
