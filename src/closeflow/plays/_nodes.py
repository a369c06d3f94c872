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

from closeflow.actions import Ledger, parse_spec
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
    """Runs the I/O nodes of one run; ``dry_run`` plans actions and sends no HTTP request."""

    client: CloseClient | None
    write_ledger: Ledger | None
    evaluator: Any
    http: httpx2.AsyncClient | None = None
    dry_run: bool = False

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
        stored_input = {"config": config, "record": record}
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
            outcome = await execute_action(self.client, spec, record, ledger=self.write_ledger, batch_id=key)
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
        return NodeOutcome("succeeded", input=stored_input, output=output)

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
