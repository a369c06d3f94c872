"""The ``closeflow`` command line (typer). Thin: parse, call one library function, render."""

from closeflow.cli import _actions, _auth, _check, _emulator, _mcp, _plays, _sync  # noqa: F401  (each registers its commands)
from closeflow.cli._app import app, main

__all__ = ["app", "main"]
