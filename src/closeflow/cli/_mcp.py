"""`closeflow mcp`: serve Close actions, plays-folder tools and the data models to AI agents (MCP)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.table import Column, Table

from closeflow.cli._app import app, console, err_console, guarded, run
from closeflow.cli._common import BaseUrlOption, ProfileOption, client_for
from closeflow.cli._plays import DbOption, PostgresOption, WritesOption, load_catalog, open_writes
from closeflow.close import CloseClient, ConfigError
from closeflow.plays import open_run_ledger

_HELP = (
    "Serve closeflow to AI agents over the Model Context Protocol (stdio by default; --http for "
    "streamable HTTP).\n\n"
    "Tools: search, insert, update, upsert and delete of leads and contacts, insert_note, the tools of "
    "the plays folder, and read-only list_models / describe_model / query_sql over the local store.\n\n"
    "--allow picks the risk tiers served: read (searches, data models, plays tools that only read), "
    "write (inserts, updates, upserts, notes, plays tools that write), destructive (deletes, plays "
    "tools that delete). A write is planned first and carried "
    "out only when the agent repeats the call with the plan's single-use confirmation token "
    "(--no-confirm: at once).\n\n"
    "Every call is recorded in the run ledger: closeflow runs list --source mcp."
)


@app.command("mcp", help=_HELP)
@guarded
def mcp_command(
    allow: str = typer.Option(
        "read", "--allow", help="Risk tiers to serve, comma-separated: read, write, destructive."
    ),
    no_confirm: bool = typer.Option(
        False, "--no-confirm", help="Carry writes out on the first call (trusted automation only)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML or TOML file of per-tool input settings (auto / default / disabled)."
    ),
    plays: Path | None = typer.Option(
        None, "--plays", help="Folder whose tools are served too (default: ./plays when it exists)."
    ),
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at /mcp instead of stdio."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface for --http (off loopback a token is required)."
    ),
    port: int = typer.Option(8770, "--port", help="Port for --http (0: any free port)."),
    token_env: str = typer.Option(
        "CLOSEFLOW_MCP_TOKEN",
        "--token-env",
        help="Environment variable holding the bearer token HTTP clients must send.",
    ),
    max_records: int = typer.Option(
        100,
        "--max-records",
        min=1,
        help="Records an agent may send per write call, and Close records one call may change.",
    ),
    max_results: int = typer.Option(
        100, "--max-results", min=1, help="Records a search may return per call."
    ),
    max_rows: int = typer.Option(200, "--max-rows", min=1, help="Rows query_sql may return per call."),
    max_delete: int = typer.Option(
        10,
        "--max-delete",
        min=1,
        help="Most records one delete may remove (built-in deletes and plays tools alike).",
    ),
    list_tools: bool = typer.Option(
        False, "--list-tools", help="Print the tools that would be served and exit."
    ),
    db: str = DbOption,
    postgres: str | None = PostgresOption,
    write_ledger: str | None = WritesOption,
    profile: str | None = ProfileOption,
    base_url: str | None = BaseUrlOption,
) -> None:
    try:
        from closeflow.mcp import Limits, ServerConfig, ServerOptions, check_binding, load_config, parse_tiers
    except ImportError as exc:
        raise ConfigError(
            f"the MCP server needs the mcp extra ({exc.name} is missing): pip install 'closeflow[mcp]'"
        ) from None

    token = os.environ.get(token_env) or None
    if http:
        check_binding(host, token)
    options = ServerOptions(
        allow=parse_tiers(allow),
        confirm=not no_confirm,
        config=load_config(config) if config is not None else ServerConfig(),
        limits=Limits(
            max_records=max_records, max_results=max_results, max_rows=max_rows, max_affected=max_delete
        ),
        secrets={"mcp_token": token} if token else {},
    )
    catalog = _catalog(plays)
    target = postgres or db
    if list_tools:
        # Listing touches no database: throwaway ledgers, and the store is only opened by calls.
        run(_list(options, catalog))
        return
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="closeflow mcp: %(message)s")
    run(
        _serve(
            options,
            catalog,
            target,
            write_ledger,
            profile,
            base_url,
            http,
            host,
            port,
            token,
        )
    )


def _catalog(plays: Path | None) -> Any:
    if plays is None:
        return load_catalog(Path("plays")) if Path("plays").is_dir() else None
    return load_catalog(plays)


@asynccontextmanager
async def _agent_server(
    options: Any, catalog: Any, target: str, writes: str | None, client: CloseClient
) -> AsyncIterator[Any]:
    from closeflow.mcp import AgentServer, Resources

    run_ledger = open_run_ledger(target)
    write_ledger = open_writes(writes, target)
    try:
        async with client:
            secrets = dict(options.secrets)
            key = getattr(client.credentials, "key", None)
            if isinstance(key, str):
                secrets["close_api_key"] = key
            resources = Resources(
                client=client,
                write_ledger=write_ledger,
                run_ledger=run_ledger,
                clock=client.clock,
                catalog=catalog,
                store_target=target,
            )
            yield AgentServer(resources, replace(options, secrets=secrets))
    finally:
        write_ledger.close()
        run_ledger.close()


async def _list(options: Any, catalog: Any) -> None:
    # Listing sends nothing to Close and touches no database: a client that is never used (so no
    # credentials are needed) and throwaway ledgers.
    unused = CloseClient("api_listing_sends_nothing", base_url="http://127.0.0.1:9/api/v1")
    async with _agent_server(options, catalog, ":memory:", ":memory:", unused) as server:
        table = Table(
            "tool", "tier", Column("inputs the agent fills", overflow="fold"), title="closeflow mcp tools"
        )
        for tool in server.listed():
            tier = server.tools[tool.name].tier
            table.add_row(tool.name, tier, ", ".join(tool.input_schema.get("properties", {})))
        console.print(table)


async def _serve(
    options: Any,
    catalog: Any,
    target: str,
    writes: str | None,
    profile: str | None,
    base_url: str | None,
    http: bool,
    host: str,
    port: int,
    token: str | None,
) -> None:
    from mcp.server.stdio import stdio_server

    from closeflow.mcp import TIERS, serve_http

    async with _agent_server(options, catalog, target, writes, client_for(profile, base_url)) as server:
        mcp_server = server.mcp_server()
        tiers = ",".join(t for t in TIERS if t in options.allow)
        if http:
            await serve_http(
                mcp_server,
                host=host,
                port=port,
                token=token,
                announce=lambda url: err_console.print(
                    f"closeflow MCP server ({len(server.tools)} tools, tiers {tiers}) at {url}",
                    highlight=False,
                ),
            )
            return
        err_console.print(
            f"closeflow MCP server on stdio: {len(server.tools)} tools, tiers {tiers}", highlight=False
        )
        async with stdio_server() as (read, write):
            await mcp_server.run(read, write, mcp_server.create_initialization_options())
