"""Secrets for plays: values read from environment variables at run time, never from play files.

A play or tool declares ``secrets: {hook_token: {env: HOOK_TOKEN}}``; expressions read
``secrets.hook_token``. The run ledger keeps inputs, outputs, contexts and errors for replay and
debugging, so every stored value goes through ``scrub`` first: a secret's text (and its URL- and
JSON-escaped forms) becomes ``***`` wherever it ended up — a header, a URL, a response body.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from closeflow.close import ConfigError

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "SECRET_NAME", "Secrets", "looks_secret", "scrub"]

REDACTED = "***"
# Names of headers, query parameters and vars whose values are credentials. Broad on purpose
# (X-Hook-Auth, X-Api-Key, X-Signature, Session-Id): hiding a harmless value costs little.
SECRET_NAME = re.compile(r"auth|key|sig|token|secret|passw|cookie|session|credential", re.IGNORECASE)
# Shorter values would scrub ordinary words and numbers out of every stored value.
MIN_SECRET_LENGTH = 8
# Values that are credentials whatever they are called: Stripe-style live/test keys, Close API
# keys, bearer tokens, URLs carrying a password.
_SECRET_VALUE = re.compile(
    r"^(sk|pk|rk)_(live|test)_\w+|^api_\w{16,}|^bearer\s+\S+|^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]+@",
    re.IGNORECASE,
)


def looks_secret(name: str, value: Any) -> str | None:
    """Why a play-file ``vars`` entry looks like a credential (so it belongs in ``secrets:``), or None."""
    if not isinstance(value, str) or not value:
        return None
    if SECRET_NAME.search(name):
        return f'the name "{name}" says it is a credential'
    if _SECRET_VALUE.search(value):
        return "its value looks like a credential"
    for part in re.split(r"[?&]", value)[1:]:
        key, _, found = part.partition("=")
        if found and SECRET_NAME.search(key):
            return f'its URL carries the secret-looking parameter "{key}"'
    return None


class Secrets(Mapping[str, str]):
    """A play's resolved secrets: name → value. Its repr never shows a value."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})
        for name, value in self._values.items():
            if len(value) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f'secret "{name}" is shorter than {MIN_SECRET_LENGTH} characters, so it cannot be '
                    "scrubbed from stored runs reliably; use the real credential"
                )

    @classmethod
    def resolve(
        cls, refs: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, owner: str = "play"
    ) -> Secrets:
        """The values of ``refs`` (``name → SecretRef``) from ``environ`` (default: the process's).

        Every missing variable is named in one ``ConfigError``, before anything runs."""
        env = os.environ if environ is None else environ
        missing = [f"{ref.env} (secrets.{name})" for name, ref in refs.items() if not env.get(ref.env)]
        if missing:
            raise ConfigError(
                f"{owner} needs the environment variable(s) {', '.join(missing)}; "
                "set them before running (secrets are never written in play files)"
            )
        return cls({name: env[ref.env] for name, ref in refs.items()})

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({', '.join(f'{name}={REDACTED}' for name in self._values)})"

    def context(self) -> dict[str, str]:
        """The ``secrets`` entry of an evaluation context (never stored: scrub what nodes return)."""
        return dict(self._values)

    def forms(self) -> list[str]:
        """Every text form a value may be stored in, longest first (so no part of one is left)."""
        found: set[str] = set()
        for value in self._values.values():
            found.update({value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]})
        return sorted(found, key=len, reverse=True)


def scrub(value: Any, secrets: Secrets | Mapping[str, str]) -> Any:
    """``value`` (plain data) with every secret's text replaced by ``***``, keys included."""
    forms = secrets.forms() if isinstance(secrets, Secrets) else Secrets(secrets).forms()
    if not forms:
        return value
    pattern = re.compile("|".join(re.escape(form) for form in forms))

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(REDACTED, item)
        if isinstance(item, Mapping):
            return {walk(key): walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)
