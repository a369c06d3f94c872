"""`closeflow emulator serve`: a local Close API for tests, demos and trying things safely."""

from __future__ import annotations

import typer

from closeflow.cli._app import app, fail

emulator_app = typer.Typer(help="Run the Close emulator (a local, seeded Close API).", no_args_is_help=True)
app.add_typer(emulator_app, name="emulator")


@emulator_app.command("serve")
def serve(
    port: int = typer.Option(8765, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
    seed: int = typer.Option(7, "--seed", help="Seed of the generated organization (same seed, same data)."),
    leads: int = typer.Option(5000, "--leads", help="How many leads to generate (each with 1–4 contacts)."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="CLOSEFLOW_EMULATOR_API_KEY", help="API key the emulator accepts."
    ),
    rate_limit: int | None = typer.Option(
        None, "--rate-limit", help="Requests per second per API key and endpoint group (default: unlimited)."
    ),
) -> None:
    """Serve a seeded Close organization on HOST:PORT; prints the base URL and the API key it accepts."""
    from closeflow.emulator import RateLimitConfig
    from closeflow.emulator import serve as serve_emulator

    if leads < 0:
        raise fail("--leads must be 0 or more")
    if rate_limit is not None and rate_limit < 1:
        raise fail("--rate-limit must be at least 1 request per second")
    serve_emulator(
        host=host,
        port=port,
        seed=seed,
        leads=leads,
        api_key=api_key,
        rate_limit=RateLimitConfig(default=rate_limit) if rate_limit else None,
    )
