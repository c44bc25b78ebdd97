"""The durable store: run history, timelines, approvals, readiness checks and the audit chain.

SQLAlchemy Core on SQLite by default (``sqlite:///$BCM_HOME/bcm.db``) or on PostgreSQL by URL.
``Store.open(url)`` migrates the schema and returns a ready store.

The package, one module per table group behind the ``Store`` facade (``store``):

- ``runs``: runs, their targets and liveness; ``bulk``: whole runs imported at once;
- ``steps``: each step's state; ``milestones``: timeline marks and their copy on the run row;
- ``approvals``: decisions on approve steps; ``readiness``: readiness check results;
- ``exercises``: exercise runs, their injects and observations; ``corrective``: corrective actions;
- ``fulfilments``: obligations (deadline clocks) a run fulfilled;
- ``outbox``: stakeholder messages; ``audit_log``: the audit table; ``audit``: the chain's hashing;
- ``timeline``: the bulk read model behind the figures;
- ``transactions``: the read and serialised write transactions every ``Store`` method runs in;
- ``schema`` (the tables now), ``migrations`` (their history), ``engine``, ``types``, ``records``.
"""

from bcm.store.records import (
    ApprovalRecord,
    AuditRecord,
    AuditVerification,
    CheckRecord,
    CorrectiveActionRecord,
    ExerciseRunRecord,
    FulfilmentRecord,
    InjectRecord,
    MarkRecord,
    ObservationRecord,
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
    "CorrectiveActionRecord",
    "ExerciseRunRecord",
    "FulfilmentRecord",
    "InjectRecord",
    "MarkRecord",
    "ObservationRecord",
    "OutboxRecord",
    "RunImport",
    "RunRecord",
    "RunTargets",
    "StepRecord",
    "Store",
    "TimelineRows",
    "TimelineRun",
]
