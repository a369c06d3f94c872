"""closeflow for AI agents: an MCP server over the Close actions, the tools of a plays folder and the
local data models, with risk tiers, confirmed writes and every call in the run ledger.

```python
from closeflow.mcp import AgentServer, Resources, ServerOptions

server = AgentServer(
    Resources(client=client, write_ledger=SqliteLedger("closeflow.db"),
              run_ledger=open_run_ledger("closeflow.db"), clock=client.clock, store_target="closeflow.db"),
    ServerOptions(allow=frozenset({"read", "write"})),
)
mcp = server.mcp_server()             # the MCP SDK's Server: run over stdio, HTTP, or in memory
```

Needs the ``mcp`` extra (``pip install 'closeflow[mcp]'``).
"""

from closeflow.mcp._calls import Resources
from closeflow.mcp._catalog import ACTION_SPECS, Limits, agent_tools
from closeflow.mcp._config import ServerConfig, load_config, parse_config
from closeflow.mcp._confirm import ConfirmationError, Confirmations
from closeflow.mcp._http import BearerToken, check_binding, http_app, serve_http
from closeflow.mcp._server import AgentServer, ServerOptions, parse_tiers, redact
from closeflow.mcp._tool import TIERS, AgentTool, ArgumentError, InputSetting, Tier, ToolSetting

__all__ = [
    "ACTION_SPECS",
    "TIERS",
    "AgentServer",
    "AgentTool",
    "ArgumentError",
    "BearerToken",
    "ConfirmationError",
    "Confirmations",
    "InputSetting",
    "Limits",
    "Resources",
    "ServerConfig",
    "ServerOptions",
    "Tier",
    "ToolSetting",
    "agent_tools",
    "check_binding",
    "http_app",
    "load_config",
    "parse_config",
    "parse_tiers",
    "redact",
    "serve_http",
]
