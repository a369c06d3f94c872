"""`closeflow check`: prove a connection works — who am I, which organization, rate-limit state."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from closeflow.cli._app import app, console, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for, connection


async def _check(profile: str | None, base_url: str | None) -> dict[str, Any]:
    conn = connection(profile, base_url)
    async with client_for(profile, base_url) as client:
        me = await client.me()
        org_id = client.organization_id
        org = await client.get(f"/organization/{org_id}/", params={"_fields": "id,name,currency"})
        statuses = await client.get("/status/lead/")
        return {
            "connection": conn.source,
            "base_url": conn.base_url,
            "user": {
                "id": me.get("id"),
                "email": me.get("email"),
                "name": " ".join(filter(None, [me.get("first_name"), me.get("last_name")])),
            },
            "organization": {"id": org.get("id"), "name": org.get("name"), "currency": org.get("currency")},
            "lead_statuses": len(statuses.get("data", [])),
            "rate_limits": [s.as_dict() for s in client.rate_limit_states()],
        }


@app.command("check")
def check(
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check the connection: who am I, which organization, and the rate limits Close reported."""
    result = run(_check(profile, base_url))
    if as_json:
        console.print_json(json.dumps(result))
        return
    user, org = result["user"], result["organization"]
    console.print(f"[green]✓[/] Connected via {result['connection']} to {result['base_url']}")
    console.print(f"  user          {user['name']} <{user['email']}> ({user['id']})")
    console.print(f"  organization  {org['name']} ({org['id']}), currency {org['currency']}")
    console.print(f"  lead statuses {result['lead_statuses']}")
    if not result["rate_limits"]:
        console.print("  rate limits   none reported by the server")
        return
    table = Table(
        "endpoint group", "limit", "remaining", "resets in (s)", "requests", "429s", title="Rate limits"
    )
    for state in result["rate_limits"]:
        table.add_row(
            state["group"],
            _number(state["limit"]),
            _number(state["remaining"]),
            f"{state['reset_in']:.1f}",
            str(state["requests"]),
            str(state["throttled"]),
        )
    console.print(table)


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"
