"""Node executors: the nodes that do I/O (a Close action, an HTTP request).

Each takes a node and its expression context and returns a ``NodeOutcome``; none raises for a
failure of the work itself, so the interpreter can apply the node's retry policy. Expression and
configuration errors fail the node without retries (the same inputs would fail the same way).

Close is reached only through ``closeflow.actions``: its write ledger, keyed by
``{run_id}:{node_id}`` (``#{visit}`` appended when a loop visits the node again; the original run's
id for a retry from the failed node), is what makes a resumed or retried action node never repeat
a create. HTTP nodes are at-least-once: a request whose answer was lost is sent again on retry or
resume, with that same key as ``Idempotency-Key`` header so the receiver can drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2

from closeflow.actions import DeleteRefused, Ledger, Outcome, parse_spec, run_action
from closeflow.actions import execute as execute_action
from closeflow.close import CloseClient, ConfigError
from closeflow.plays._interpreter import NodeOutcome
from closeflow.plays._secrets import REDACTED, SECRET_NAME

_STATUS_CLASSES = {
    "400": "ValidationError",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "429": "RateLimited",
}
MAX_TEXT_OUTPUT = 20_000  # a webhook answering with a web page should not bloat the run ledger


def redact_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Header values whose names look secret, replaced before anything is stored."""
    return {name: REDACTED if SECRET_NAME.search(name) else value for name, value in headers.items()}


def redact_url(url: str) -> str:
    """The URL with secret-looking query parameters and any password removed."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    query = [
        (k, REDACTED if SECRET_NAME.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


def error_class_of_outcome(error: str | None, field_errors: dict[str, str] | None) -> str:
    """The Close error class behind a failed action outcome (its message starts with the status)."""
    text = (error or "").strip()
    status = text[:3]
    if field_errors or status == "400":
        return "ValidationError"
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status.isdigit() and status.startswith("5"):
        return "ServerError"
    if "(no response)" in text:
        return "TransportError"
    if text.startswith("row "):  # the record could not be mapped: bad values, nothing to match on
        return "ValidationError"
    return "CloseError"


@dataclass
class NodeExecutor:
    """Runs the I/O nodes of one run; ``dry_run`` plans actions and sends no HTTP request.

    ``max_delete`` caps every delete on a caller's behalf (an agent's): ``max_affected`` is the
    lower of the node's and the cap, and ``force`` is off, whatever the play file says."""

    client: CloseClient | None
    write_ledger: Ledger | None
    evaluator: Any
    http: httpx2.AsyncClient | None = None
    dry_run: bool = False
    max_delete: int | None = None

    async def action(self, node: Any, context: dict[str, Any], key: str) -> NodeOutcome:
        try:
            config = self.evaluator.evaluate(node.config, context)
            record = self.evaluator.evaluate(node.record, context)
            spec = parse_spec(
                {**config, "action": node.action, **({"dry_run": True} if self.dry_run else {})}
            )
        except ConfigError as exc:
            return NodeOutcome("failed", error=str(exc), error_class=type(exc).__name__, retryable=False)
        except ValueError as exc:  # pydantic's ValidationError: the config does not fit the action
            return NodeOutcome(
                "failed", error=f"node {node.id!r}: {exc}", error_class="ConfigError", retryable=False
            )
        stored_input: dict[str, Any] = {"config": config, "record": record}
        if self.max_delete is not None and spec.action.startswith("delete"):
            spec = spec.model_copy(
                update={"force": False, "max_affected": min(spec.max_affected, self.max_delete)}
            )
            stored_input["capped"] = {"max_affected": spec.max_affected, "force": False}
        if self.client is None:
            return NodeOutcome(
                "failed",
                input=stored_input,
                error="no Close client to run actions with",
                error_class="ConfigError",
                retryable=False,
            )
        try:
            if spec.action.startswith("search"):
                from closeflow.actions import search

                found = [r async for r in search(self.client, spec)]
                return NodeOutcome(
                    "succeeded", input=stored_input, output={"records": found, "count": len(found)}
                )
            if spec.action.startswith("delete") and spec.where is not None:
                run = run_action(self.client, spec, None, batch_id=key, ledger=self.write_ledger)
                return self._deleted_where(spec, stored_input, await run.collect(), run.summary.to_dict())
            outcome = await execute_action(self.client, spec, record, ledger=self.write_ledger, batch_id=key)
        except DeleteRefused as exc:
            return NodeOutcome(
                "failed",
                input=stored_input,
                error=self._refusal(exc),
                error_class="DeleteRefused",
                retryable=False,
            )
        except ConfigError as exc:
            return NodeOutcome(
                "failed", input=stored_input, error=str(exc), error_class=type(exc).__name__, retryable=False
            )
        except Exception as exc:  # a Close error outside a record's outcome (the lookup search failed)
            return NodeOutcome("failed", input=stored_input, error=str(exc), error_class=type(exc).__name__)
        output = outcome.to_dict()
        if outcome.status == "failed":
            return NodeOutcome(
                "failed",
                input=stored_input,
                output=output,
                error=outcome.error,
                error_class=error_class_of_outcome(outcome.error, outcome.field_errors),
            )
        if outcome.plan == "delete":
            return self._guarded(spec, stored_input, output, len(set(outcome.ids)))
        return NodeOutcome("succeeded", input=stored_input, output=output)

    def _deleted_where(
        self, spec: Any, stored_input: Any, outcomes: list[Outcome], summary: dict[str, Any]
    ) -> NodeOutcome:
        """A delete by where is one node with many outcomes (``execute`` runs one record only)."""
        ids = sorted({i for o in outcomes if o.status in ("deleted", "planned") for i in o.ids})
        output = {
            "count": len(ids),
            "ids": ids,
            "summary": summary,
            "outcomes": [o.to_dict() for o in outcomes],
        }
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            return NodeOutcome(
                "failed",
                input=stored_input,
                output=output,
                error=f"{len(failed)} of {len(outcomes)} deletes failed; the first: {failed[0].error}",
                error_class=error_class_of_outcome(failed[0].error, failed[0].field_errors),
            )
        return self._guarded(spec, stored_input, output, len(ids))

    def _guarded(self, spec: Any, stored_input: Any, output: Any, count: int) -> NodeOutcome:
        """A dry-run delete fails the node as the real run would (refused above ``max_affected``):
        a plan that shows success where the write must fail would be confirmed for nothing."""
        if spec.dry_run and not spec.force and count > spec.max_affected:
            return NodeOutcome(
                "failed",
                input=stored_input,
                output=output,
                error=self._refusal(DeleteRefused(spec.object_type, count, spec.max_affected)),
                error_class="DeleteRefused",
                retryable=False,
            )
        return NodeOutcome("succeeded", input=stored_input, output=output)

    def _refusal(self, exc: DeleteRefused) -> str:
        if self.max_delete is None or exc.max_affected != self.max_delete:
            return str(exc)  # the play's own max_affected refused it
        return (
            f"{exc} (Deletes on this caller's behalf are capped at max_affected={self.max_delete} and "
            "force is off, whatever the play says: narrow the node's criteria.)"
        )

    async def request(self, node: Any, context: dict[str, Any], key: str) -> NodeOutcome:
        try:
            url = str(self.evaluator.evaluate(node.url, context))
            headers = {
                str(k): str(v) for k, v in (self.evaluator.evaluate(node.headers, context) or {}).items()
            }
            body = self.evaluator.evaluate(node.json_body, context)
        except ConfigError as exc:
            return NodeOutcome("failed", error=str(exc), error_class=type(exc).__name__, retryable=False)
        headers.setdefault("Idempotency-Key", key)
        method = str(node.method).upper()
        stored_input = {
            "method": method,
            "url": redact_url(url),
            "headers": redact_headers(headers),
            "json": body,
        }
        if self.dry_run:
            return NodeOutcome(
                "succeeded", input=stored_input, output={"planned": stored_input, "sent": False}
            )
        try:
            if self.http is not None:
                response = await self.http.request(
                    method, url, headers=headers, json=body, timeout=node.timeout
                )
            else:
                async with httpx2.AsyncClient() as http:
                    response = await http.request(
                        method, url, headers=headers, json=body, timeout=node.timeout
                    )
        except httpx2.TransportError as exc:
            # The exception's text may quote the URL with its query string: name the kind only.
            return NodeOutcome(
                "failed",
                input=stored_input,
                error=f"{type(exc).__name__} (no response)",
                error_class="TransportError",
            )
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol, ValueError) as exc:
            return NodeOutcome(
                "failed",
                input=stored_input,
                error=f"node {node.id!r}: bad URL: {exc}",
                error_class="ConfigError",
                retryable=False,
            )
        output = _response_output(response)
        if response.status_code in node.expect_status:
            return NodeOutcome("succeeded", input=stored_input, output=output)
        status = response.status_code
        return NodeOutcome(
            "failed",
            input=stored_input,
            output=output,
            error=f"{method} {redact_url(url)} answered {status}; expected one of {list(node.expect_status)}",
            error_class="HttpStatus",
            retryable=status >= 500 or status == 429,
        )


def _response_output(response: httpx2.Response) -> dict[str, Any]:
    output: dict[str, Any] = {"status": response.status_code}
    if "json" in response.headers.get("content-type", ""):
        try:
            output["json"] = response.json()
            return output
        except ValueError:
            pass
    output["text"] = response.text[:MAX_TEXT_OUTPUT]
    return output
