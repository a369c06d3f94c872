"""closeflow: a Close CRM integration for revenue workflows.

Layers (each imports only those before it): ``closeflow.close`` (the API client),
``closeflow.emulator`` (a Close API server for tests and demos, never imports the client),
then actions, sync, plays, mcp and the CLI.
"""

__version__ = "0.1.0"
