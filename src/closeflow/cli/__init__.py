"""The ``closeflow`` command line (typer). Thin: parse, call one library function, render."""

from closeflow.cli._app import app, main

__all__ = ["app", "main"]
