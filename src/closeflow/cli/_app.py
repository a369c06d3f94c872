"""The root ``closeflow`` command and the error boundary every sub-command shares."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from closeflow import __version__
from closeflow.close import CloseError, ConfigError, Unauthorized
from closeflow.sync.store import StoreError

T = TypeVar("T")
P = ParamSpec("P")

app = typer.Typer(
    name="closeflow",
    help="Close CRM for revenue workflows: a rate-aware client, a local Close emulator, and more.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one async library call; turn closeflow's typed errors into a message and exit code 1."""
    with errors_as_messages():
        return asyncio.run(coro)


@contextlib.contextmanager
def errors_as_messages() -> Iterator[None]:
    """The CLI's error boundary: closeflow's typed errors become one red line and exit code 1."""
    try:
        yield
    except (CloseError, ConfigError, StoreError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        if isinstance(exc, Unauthorized):
            err_console.print(
                "Close rejected the credentials: check the API key (CLOSE_API_KEY or the profile), "
                "or store a new one with `closeflow auth login`; `closeflow auth status` shows what is used."
            )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Decorate a command whose synchronous parts (credentials file, arguments) may raise."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        with errors_as_messages():
            command(*args, **kwargs)

    return wrapper


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"closeflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """closeflow: Close CRM for revenue workflows."""


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `closeflow … | head` is normal use
        sys.exit(0)
