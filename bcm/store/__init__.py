"""The durable store: run history, timelines, approvals, readiness checks and the audit chain.

SQLAlchemy Core on SQLite by default (``sqlite:///$BCM_HOME/bcm.db``) or on PostgreSQL by URL.
``Store.open(url)`` migrates the schema and returns a ready store.
"""

from bcm.store.errors import (
    AlreadyDecided,
    AmbiguousRun,
    IncompatibleSchema,
    RunNotFound,
    StoreError,
    StoreUnavailable,
)
from bcm.store.records import (
    ApprovalRecord,
    AuditRecord,
    AuditVerification,
    CheckRecord,
    MarkRecord,
    OutboxRecord,
    RunImport,
    RunRecord,
    RunTargets,
    StepRecord,
    TimelineRows,
    TimelineRun,
)
from bcm.store.store import FINISHED_STEP_STATUSES, RUN_MODES, RUN_SOURCES, UPDATE_KINDS, Store

__all__ = [
    "FINISHED_STEP_STATUSES",
    "RUN_MODES",
    "RUN_SOURCES",
    "UPDATE_KINDS",
    "AlreadyDecided",
    "AmbiguousRun",
    "ApprovalRecord",
    "AuditRecord",
    "AuditVerification",
    "CheckRecord",
    "IncompatibleSchema",
    "MarkRecord",
    "OutboxRecord",
    "RunImport",
    "RunNotFound",
    "RunRecord",
    "RunTargets",
    "StepRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TimelineRows",
    "TimelineRun",
]
