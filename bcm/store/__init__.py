"""The durable store: run history, timelines, approvals, readiness checks and the audit chain.

SQLAlchemy Core on SQLite by default (``sqlite:///$BCM_HOME/bcm.db``) or on PostgreSQL by URL.
``Store.open(url)`` migrates the schema and returns a ready store.
"""

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
from bcm.store.store import Store

__all__ = [
    "ApprovalRecord",
    "AuditRecord",
    "AuditVerification",
    "CheckRecord",
    "MarkRecord",
    "OutboxRecord",
    "RunImport",
    "RunRecord",
    "RunTargets",
    "StepRecord",
    "Store",
    "TimelineRows",
    "TimelineRun",
]
