"""A faithful local Close API server (the emulator) for tests, demos and benchmarks.

``Emulator`` runs in process (``emu.transport()`` for an ``httpx2.AsyncClient``); ``serve`` puts
it on a real port. It never imports the client (``closeflow.close``): it stands where Close stands.
"""

from closeflow.emulator._config import EmulatorConfig, OAuthClientConfig, RateLimitConfig
from closeflow.emulator._emulator import Emulator, LoggedRequest, serve
from closeflow.emulator._org import Organization

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "LoggedRequest",
    "OAuthClientConfig",
    "Organization",
    "RateLimitConfig",
    "serve",
]
