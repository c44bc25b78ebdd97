"""The store's tables as they are now: what the table modules' queries (``bcm.store.runs``, ...) are written against.

This is the present; ``bcm.store.migrations`` is the history that builds it. A migration changing a
table changes it here too, and ``tests/store/test_migrations.py`` fails when the two disagree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

from bcm.store.types import UTCDateTime, json_type

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("runbook_id", Text, nullable=False),
    Column("runbook_title", Text, nullable=False),
    Column("runbook_hash", Text, nullable=False),
    Column("runbook_path", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("parameters", json_type(), nullable=False),
    Column("triggered_by", Text, nullable=False),
    Column("services", json_type(), nullable=False),
    Column("severity", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("flow_run_id", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    # Migration 3: the targets the run is measured against (seconds) and where the run came from.
    Column("rto_s", Float, nullable=True),
    Column("rpo_s", Float, nullable=True),
    Column("mtpd_s", Float, nullable=True),
    Column("data_loss_s", Float, nullable=True),
    Column("cadence_s", Float, nullable=True),
    Column("source", Text, nullable=False, server_default="engine"),
    # Migration 4: a copy of the run's marks, ``{"milestone": "ISO time in UTC", ...}`` as JSON
    # text, written in the same transaction as each mark; ``marks`` stays the source of truth.
    Column("milestones", Text, nullable=False, server_default="{}"),
    # Migration 5: the process running the run (``host/pid/start``) and its last sign of life.
    Column("runner", Text, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_runbook_id", "runbook_id"),
    Index("ix_runs_mode_started_at", "mode", "started_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("phase", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("output", json_type(), nullable=True),
    Column("error", Text, nullable=True),
    Column("actor", Text, nullable=True),
    Column("reason", Text, nullable=True),
    # Migration 5: the process of the step's current attempt (``host/pid/start``), for ``run`` steps.
    Column("process", Text, nullable=True),
    PrimaryKeyConstraint("run_id", "step_id", name="pk_step_runs"),
)

marks = Table(
    "marks",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("milestone", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    UniqueConstraint("run_id", "milestone", name="uq_marks_run_milestone"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("note", Text, nullable=True),
    Column("waited_s", Float, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "step_id", name="uq_approvals_run_step"),
)

checks = Table(
    "checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("runbook_id", Text, nullable=False),
    Column("step_id", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("output", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=True),
    Index("ix_checks_runbook_at", "runbook_id", "at"),
)

# No foreign key to runs: the audit chain must stay readable and verifiable whatever happens to
# the other tables, and it also records events that belong to no run.
audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", Text, nullable=False),
    Column("run_id", Text, nullable=True),
    Column("data", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("ix_audit_run_id", "run_id"),
)

# Messages are stored here before they are sent, so none is lost when Slack is down and none is
# sent twice when a step is retried or a run resumed (the key is unique).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False),
    Column("run_id", Text, nullable=True),
    Column("kind", Text, nullable=False),
    Column("payload", json_type(), nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("result", json_type(), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    # Set while one process delivers the message, so two flushes never send it twice.
    Column("claimed_at", UTCDateTime, nullable=True),
    UniqueConstraint("key", name="uq_outbox_key"),
    Index("ix_outbox_status_id", "status", "id"),
    Index("ix_outbox_run_id", "run_id"),
)

# Migration 6: the exercise programme and the improvement plan.
exercise_runs = Table(
    "exercise_runs",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("exercise_id", Text, nullable=False),
    Column("exercise_title", Text, nullable=False),
    Column("exercise_hash", Text, nullable=False),
    Column("exercise_path", Text, nullable=False),
    Column("speed", Float, nullable=False),
    Column("auto_respond", Boolean, nullable=False),
    Column("startex_at", UTCDateTime, nullable=False),
    Column("endex_at", UTCDateTime, nullable=True),
    Column("ended_by", Text, nullable=True),
    Index("ix_exercise_runs_exercise_id", "exercise_id"),
)

injects = Table(
    "injects",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("delivery", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("reason", Text, nullable=True),
    PrimaryKeyConstraint("run_id", "number", name="pk_injects"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("objective_id", Text, nullable=True),
    Column("kind", Text, nullable=False),
    Column("rating", Text, nullable=True),
    Column("note", Text, nullable=False),
    Column("root_cause", Text, nullable=True),
    Column("by", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_observations_run_id", "run_id"),
)

corrective_actions = Table(
    "corrective_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("element", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("start_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("evidence", Text, nullable=True),
    Column("root_cause", Text, nullable=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=True),
    Column("objective_id", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Index("ix_corrective_actions_status_due", "status", "due_on"),
    Index("ix_corrective_actions_run_id", "run_id"),
)

fulfilments = Table(
    "fulfilments",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("obligation_id", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("by", Text, nullable=False),
    Column("evidence", Text, nullable=True),
    Column("source", Text, nullable=False),
    UniqueConstraint("run_id", "obligation_id", name="uq_fulfilments_run_obligation"),
)
