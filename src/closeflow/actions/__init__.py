"""The ten Close actions as a library: typed specs, and one executor for one record or a stream.

```python
from closeflow.actions import UpsertContacts, SqliteLedger, read_csv, run_action

spec = UpsertContacts(match_property="email", match_value="email", email="email",
                      mappings={"name": "full_name"})
run = run_action(client, spec, read_csv("people.csv"), batch_id="import-1",
                 ledger=SqliteLedger("closeflow.db"))
async for outcome in run:
    ...
print(run.summary.to_dict())
```
"""

from closeflow.actions._api import execute, run_action, search, validate
from closeflow.actions._delete import DeleteRefused
from closeflow.actions._inputs import InputError, Records, Row, from_text, read_csv, read_jsonl, read_records
from closeflow.actions._ledger import (
    DONE_STATUSES,
    Ledger,
    LedgerEntry,
    PostgresLedger,
    SqliteLedger,
    open_write_ledger,
)
from closeflow.actions._outcome import Change, Outcome, Plan, Status, Summary
from closeflow.actions._run import BatchRun, Progress
from closeflow.actions._specs import (
    CONTACT_FIELDS,
    LEAD_FIELDS,
    ActionSpec,
    DeleteContacts,
    DeleteLeads,
    InsertContact,
    InsertLead,
    InsertNote,
    MatchRule,
    SearchContacts,
    SearchLeads,
    UpdateContacts,
    UpdateLeads,
    UpsertContacts,
    UpsertLeads,
    custom_field_name,
    input_keys,
    parse_spec,
)
from closeflow.close import SEARCH_LAG

__all__ = [
    "CONTACT_FIELDS",
    "DONE_STATUSES",
    "LEAD_FIELDS",
    "SEARCH_LAG",
    "ActionSpec",
    "BatchRun",
    "Change",
    "DeleteContacts",
    "DeleteLeads",
    "DeleteRefused",
    "InputError",
    "InsertContact",
    "InsertLead",
    "InsertNote",
    "Ledger",
    "LedgerEntry",
    "MatchRule",
    "Outcome",
    "Plan",
    "PostgresLedger",
    "Progress",
    "Records",
    "Row",
    "SearchContacts",
    "SearchLeads",
    "SqliteLedger",
    "Status",
    "Summary",
    "UpdateContacts",
    "UpdateLeads",
    "UpsertContacts",
    "UpsertLeads",
    "custom_field_name",
    "execute",
    "from_text",
    "input_keys",
    "open_write_ledger",
    "parse_spec",
    "read_csv",
    "read_jsonl",
    "read_records",
    "run_action",
    "search",
    "validate",
]
