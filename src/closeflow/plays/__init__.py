"""Plays and tools: change-triggered workflows over Close data, with retries, run history and replay.

```python
from closeflow.plays import load_folder, open_run_ledger, run_cycle
from closeflow.actions import SqliteLedger
from closeflow.sync import open_store

catalog = load_folder("plays")                      # every play and tool file, checked
store, ledger = open_store("closeflow.db"), open_run_ledger("closeflow.db")
report = await run_cycle(catalog, store=store, client=client, ledger=ledger,
                         write_ledger=SqliteLedger("closeflow.db"), clock=client.clock)
print(report.by_status())                            # {"succeeded": 12, "filtered": 3}
```
"""

from closeflow.plays._engine import run_to_end
from closeflow.plays._expressions import Evaluator, ExpressionError
from closeflow.plays._ledger import PostgresRunLedger, SqliteRunLedger, open_run_ledger
from closeflow.plays._retry import retry_from
from closeflow.plays._runner import CycleReport, PlayCycle, run_context, run_cycle, run_forever
from closeflow.plays._runs import NodeRecord, RunLedger, RunRecord
from closeflow.plays._schedule import Cron, is_due, parse_cron, parse_duration
from closeflow.plays._secrets import MIN_SECRET_LENGTH, REDACTED, SECRET_NAME, scrub
from closeflow.plays._segment import segment_matches, trigger_matches
from closeflow.plays._spec import Catalog, Play, Tool, load_folder, load_play_file
from closeflow.plays._tools import ToolInputError, ToolOutputError, node_report, run_tool
from closeflow.plays._yaml import PlayFileError

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECRET_NAME",
    "Catalog",
    "Cron",
    "CycleReport",
    "Evaluator",
    "ExpressionError",
    "NodeRecord",
    "Play",
    "PlayCycle",
    "PlayFileError",
    "PostgresRunLedger",
    "RunLedger",
    "RunRecord",
    "SqliteRunLedger",
    "Tool",
    "ToolInputError",
    "ToolOutputError",
    "is_due",
    "load_folder",
    "load_play_file",
    "node_report",
    "open_run_ledger",
    "parse_cron",
    "parse_duration",
    "retry_from",
    "run_context",
    "run_cycle",
    "run_forever",
    "run_to_end",
    "run_tool",
    "scrub",
    "segment_matches",
    "trigger_matches",
]
