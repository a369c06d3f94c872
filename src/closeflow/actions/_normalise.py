"""How two values are judged the same: for matching records and for merging arrays.

Close normalises phones to E.164 and keeps emails and urls as typed, but people type them in
many ways; comparing normalised forms is what stops "Gob@Example.com" from becoming a second
email (or a second contact).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_EXTENSION = re.compile(r"\s*(?:ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)


def email_key(value: Any) -> str | None:
    text = str(value).strip().lower() if value is not None else ""
    return text if _EMAIL.match(text) else None


def phone_key(value: Any) -> str | None:
    """E.164 digits: ten digits without a country code are taken as US numbers (as Close does).

    ``00`` is the international prefix outside North America (``0044…`` is ``+44…``), and an
    extension (``x12``, ``ext. 12``, ``#12``) does not belong to the number being matched.
    """
    if value is None:
        return None
    text = _EXTENSION.sub("", str(value).strip()).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    elif not text.startswith("+") and len(digits) == 10:
        digits = "1" + digits
    if not 8 <= len(digits) <= 15:
        return None
    return digits


def host_key(value: Any) -> str | None:
    """The host of a url or a bare domain, lower-cased, without ``www.``."""
    text = str(value).strip().lower() if value is not None else ""
    if not text:
        return None
    if "://" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    host = host.removeprefix("www.")
    return host or None


def url_key(value: Any) -> str | None:
    """A url without scheme, ``www.`` or trailing slash; the path keeps its case (it may matter)."""
    host = host_key(value)
    if host is None:
        return None
    text = str(value).strip()
    parts = urlsplit(text if "://" in text else "//" + text)
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def text_key(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None
