"""Close's rate-limit endpoint groups, as closeflow models them (shared by client and emulator).

Close limits each *endpoint group* separately but does not publish the groups (§10), only that
reads and writes of one resource are limited apart. closeflow's rule:

- ``"<resource>:read"`` for GET/HEAD/OPTIONS and ``"<resource>:write"`` otherwise, where
  ``<resource>`` is the first path segment after ``/api/v1`` (``/lead/lead_x/`` → ``lead``,
  ``/activity/note/`` → ``activity``; the legacy plural ``custom_fields`` is ``custom_field``);
- ``"data_search"`` for ``POST /data/search/``: a read that travels as a POST and the endpoint
  Close limits most tightly.

The emulator enforces exactly these groups; the client paces by them. Against real Close the
client's groups are a model, corrected by the ``RateLimit`` headers each response carries.
"""

from __future__ import annotations

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SEARCH_GROUP = "data_search"
_ALIASES = {"custom_fields": "custom_field"}


def endpoint_group(method: str, path: str) -> str:
    """The rate-limit group of ``method`` on ``path`` (with or without ``/api/v1``, query ignored)."""
    method = method.upper()
    segments = [segment for segment in path.split("?", 1)[0].split("/") if segment]
    if segments[:2] == ["api", "v1"]:
        segments = segments[2:]
    if segments[:2] == ["data", "search"] and method == "POST":
        return SEARCH_GROUP
    resource = _ALIASES.get(segments[0], segments[0]) if segments else "root"
    return f"{resource}:{'read' if method in READ_METHODS else 'write'}"
