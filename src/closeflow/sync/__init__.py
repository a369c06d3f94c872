"""Extract Close into local data models, incrementally, with a change log.

``sync(client, store)`` runs the declared streams (``STREAMS``: leads, contacts, opportunities,
tasks, ten activity types, users, statuses, pipelines, custom-field definitions) into a store
(``open_store("closeflow.db")`` or ``open_store("postgresql://…")``); every added, updated and
removed record becomes a ``Change`` in the store's change log.
"""

from closeflow.sync._engine import sync
from closeflow.sync._progress import ModelSummary, ProgressCallback, StreamProgress, SyncResult
from closeflow.sync._run import DEFAULT_LOOKBACK, EVENT_RETENTION
from closeflow.sync._streams import MODEL_NAMES, MODELS, STREAMS, Stream, streams_for
from closeflow.sync._views import VIEWS, planned_views, rebuild_views
from closeflow.sync.store import Change, ModelInfo, ModelSpec, Store, StoreError, ViewColumn, open_store

__all__ = [
    "DEFAULT_LOOKBACK",
    "EVENT_RETENTION",
    "MODELS",
    "MODEL_NAMES",
    "STREAMS",
    "VIEWS",
    "Change",
    "ModelInfo",
    "ModelSpec",
    "ModelSummary",
    "ProgressCallback",
    "Store",
    "StoreError",
    "Stream",
    "StreamProgress",
    "SyncResult",
    "ViewColumn",
    "open_store",
    "planned_views",
    "rebuild_views",
    "streams_for",
    "sync",
]
