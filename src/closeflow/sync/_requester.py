"""A stream's view of the client: the same requests, counted for that stream's progress.

Every call still goes through ``CloseClient`` (its rate budget, retries and errors); the
pagination walks are the client's own, driven through this object so each stream's requests and
rate-limit waits are attributed to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from closeflow.close import CloseClient
from closeflow.close._pagination import event_cursor, keyset
from closeflow.sync._progress import ProgressCallback, StreamProgress

Params = Mapping[str, str | int | float | bool | None]


class StreamRequester:
    def __init__(
        self, client: CloseClient, progress: StreamProgress, callback: ProgressCallback | None
    ) -> None:
        self.client = client
        self.progress = progress
        self._callback = callback

    def report(self) -> None:
        if self._callback is not None:
            self._callback(self.progress)

    async def get(self, path: str, *, params: Params | None = None) -> dict[str, Any]:
        return await self._counted("GET", path, params, None)

    async def post(self, path: str, *, params: Params | None = None, json: Any = None) -> dict[str, Any]:
        return await self._counted("POST", path, params, json)

    async def _counted(self, method: str, path: str, params: Params | None, body: Any) -> dict[str, Any]:
        stats = self.client.budget(method, path.split("?", 1)[0]).stats
        waits_before = stats.waits
        try:
            if method == "GET":
                return await self.client.get(path, params=params)
            return await self.client.post(path, params=params, json=body)
        finally:
            self.progress.requests += 1
            # Approximate when streams share a group: a wait is charged to whoever saw it.
            self.progress.rate_limit_waits += max(0, stats.waits - waits_before)
            self.report()

    def keyset(
        self,
        object_type: str,
        *,
        fields: list[str],
        since: str | datetime | None,
        page_size: int,
        complete: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        return keyset(self, object_type, fields=fields, since=since, page_size=page_size, complete=complete)

    def events(self, params: Params) -> AsyncIterator[dict[str, Any]]:
        return event_cursor(self, params)
