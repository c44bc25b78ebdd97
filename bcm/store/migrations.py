"""Schema migrations: an ordered list of functions, each applied once and recorded in ``schema_version``.

Why not alembic: the schema is a handful of tables, the migrations must ship inside the package
(``bcm`` runs from a wheel, with no project directory to hold an ``alembic.ini`` and ``env.py``),
and the same SQLAlchemy Core DDL runs unchanged on SQLite and PostgreSQL. A forty-line runner does
all of that and nothing we would have to configure around.

Each migration runs in its own transaction together with the row that records it, so a failing
migration leaves neither half-built tables (DDL is transactional on both SQLite and PostgreSQL)
nor a version marked as applied. Concurrent openers are serialised: SQLite by ``BEGIN IMMEDIATE``
(see ``bcm.store.engine``), PostgreSQL by a transaction-scoped advisory lock.

Adding a migration: write ``def _0002_something(conn: Connection) -> None`` that issues its DDL
with its own table definitions (never the live ones in ``bcm.store.schema``, which keep changing:
a migration is history), append ``Migration(2, "something", _0002_something)`` to
``MIGRATIONS``, and bring ``bcm.store.schema`` up to date.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    inspect,
    select,
    text,
    update,
)

from bcm.clock import Clock, now
from bcm.errors import IncompatibleSchema
from bcm.store.types import UTCDateTime, json_type

# Arbitrary but fixed: every bcm process migrating the same PostgreSQL database takes this lock.
_PG_MIGRATION_LOCK_KEY = 0x62636D5F6D6967  # "bcm_mig"

_version_metadata = MetaData()

schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One step of the schema's history.

    Attributes:
        version: position in the history, 1, 2, 3, ... with no gaps.
        name: what it does, recorded in ``schema_version``.
        apply: issues the DDL on the connection it is given, inside the migration's transaction.
    """

    version: int
    name: str
    apply: Callable[[Connection], None]


def _0001_initial(conn: Connection) -> None:
    """Runs, step runs, timeline marks, approvals, readiness checks and the audit chain."""
    md = MetaData()
    Table(
        "runs",
        md,
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
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_runbook_id", "runbook_id"),
    )
    Table(
        "step_runs",
        md,
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
        PrimaryKeyConstraint("run_id", "step_id", name="pk_step_runs"),
    )
    Table(
        "marks",
        md,
        Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
        Column("milestone", Text, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("source", Text, nullable=False),
        UniqueConstraint("run_id", "milestone", name="uq_marks_run_milestone"),
    )
    Table(
        "approvals",
        md,
        Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
        Column("step_id", Text, nullable=False),
        Column("by", Text, nullable=False),
        Column("decision", Text, nullable=False),
        Column("note", Text, nullable=True),
        Column("waited_s", Float, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        UniqueConstraint("run_id", "step_id", name="uq_approvals_run_step"),
    )
    Table(
        "checks",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("runbook_id", Text, nullable=False),
        Column("step_id", Text, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("output", Text, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("run_id", Text, ForeignKey("runs.id"), nullable=True),
        Index("ix_checks_runbook_at", "runbook_id", "at"),
    )
    Table(
        "audit",
        md,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("at", UTCDateTime, nullable=False),
        Column("kind", Text, nullable=False),
        Column("run_id", Text, nullable=True),
        Column("data", Text, nullable=False),
        Column("prev_hash", Text, nullable=False),
        Column("hash", Text, nullable=False),
        Index("ix_audit_run_id", "run_id"),
    )
    md.create_all(conn)


def _0002_outbox(conn: Connection) -> None:
    """The durable outbox: every stakeholder message is stored before it is sent."""
    md = MetaData()
    Table(
        "outbox",
        md,
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
        Column("claimed_at", UTCDateTime, nullable=True),
        UniqueConstraint("key", name="uq_outbox_key"),
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_run_id", "run_id"),
    )
    md.create_all(conn)


def _0003_run_targets(conn: Connection) -> None:
    """The targets a run was measured against, and where the run came from.

    Targets are stored with the run because the runbook and the BIA change over time: a run from
    last year is judged against last year's RTO. ``source`` tells engine runs from disruptions
    recorded by hand (``record``) or imported from a CSV file (``import``).
    """
    for column in ("rto_s", "rpo_s", "mtpd_s", "data_loss_s", "cadence_s"):
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN {column} FLOAT"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'engine'"))
    conn.execute(text("CREATE INDEX ix_runs_mode_started_at ON runs (mode, started_at)"))


_BACKFILL_CHUNK = 5_000


def _0004_run_milestones(conn: Connection) -> None:
    """Each run's milestones copied onto its ``runs`` row, as JSON text, for reading runs in bulk.

    ``runs.milestones`` is ``{"detected": "2026-05-01T09:00:00.000000+00:00", ...}``: milestone
    to time, the time in UTC with microseconds (the form the audit chain writes), serialised with
    sorted keys and no spaces. ``marks`` stays the source of truth; the store writes the copy in
    the same transaction as every mark it inserts, so the two never disagree. With it, a year of
    runs and their timelines is one scan of ``runs`` instead of a GROUP BY over every mark.

    Existing runs are backfilled from ``marks`` here (in Python, so that both backends get
    byte-for-byte the text the store itself writes).
    """
    conn.execute(text("ALTER TABLE runs ADD COLUMN milestones TEXT NOT NULL DEFAULT '{}'"))
    md = MetaData()
    old_marks = Table(
        "marks", md, Column("run_id", Text), Column("milestone", Text), Column("at", DateTime(timezone=True))
    )
    old_runs = Table("runs", md, Column("id", Text), Column("milestones", Text))
    found: dict[str, dict[str, str]] = {}
    query = select(old_marks.c.run_id, old_marks.c.milestone, old_marks.c.at)
    for run_id, milestone, at in conn.execute(query):
        found.setdefault(run_id, {})[milestone] = _milestone_time(at)
    rows = [{"run": run_id, "text": _milestones_text(milestones)} for run_id, milestones in found.items()]
    statement = update(old_runs).where(old_runs.c.id == bindparam("run")).values(milestones=bindparam("text"))
    for start in range(0, len(rows), _BACKFILL_CHUNK):
        conn.execute(statement, rows[start : start + _BACKFILL_CHUNK])


def _0005_liveness(conn: Connection) -> None:
    """Who runs a run, and since when it has been silent; which process a step's attempt is.

    ``runs.runner`` and ``step_runs.process`` identify a process as ``host/pid/start`` (``start``:
    the process's start time in clock ticks since boot, so a reused pid is not mistaken for it).
    ``runs.heartbeat_at`` is refreshed by the runner every few seconds: a run whose runner died
    shows as interrupted instead of waiting forever, and ``bcm resume`` checks a step's process
    before running the step again.
    """
    conn.execute(text("ALTER TABLE runs ADD COLUMN runner TEXT"))
    conn.execute(text(f"ALTER TABLE runs ADD COLUMN heartbeat_at {_timestamp_type(conn)}"))
    conn.execute(text("ALTER TABLE step_runs ADD COLUMN process TEXT"))


def _0006_exercises(conn: Connection) -> None:
    """The exercise programme: exercise runs, their injects and observations; corrective actions.

    ``exercise_runs`` says which exercise a run (mode ``exercise``) played, at what speed, and when
    and why it ended; ``injects`` records each MSEL inject delivered or skipped (a contingency whose
    condition did not hold), one row per run and inject number; ``observations`` holds evaluators'
    observations and ratings and the hot wash; ``corrective_actions`` the improvement plan, from
    exercises and real disruptions alike.
    """
    md = MetaData()
    Table("runs", md, Column("id", Text, primary_key=True))
    Table(
        "exercise_runs",
        md,
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
    Table(
        "injects",
        md,
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
    Table(
        "observations",
        md,
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
    Table(
        "corrective_actions",
        md,
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
    md.create_all(conn, tables=[t for name, t in md.tables.items() if name != "runs"])


def _0007_fulfilments(conn: Connection) -> None:
    """Obligation fulfilments: when, by whom and with what evidence a run met a deadline clock.

    One row per run and obligation (the first record wins); ``source`` is ``step:<id>`` for a
    step that fulfils it or ``hand`` for ``bcm obligations fulfil``.
    """
    md = MetaData()
    Table("runs", md, Column("id", Text, primary_key=True))
    Table(
        "fulfilments",
        md,
        Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
        Column("obligation_id", Text, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("by", Text, nullable=False),
        Column("evidence", Text, nullable=True),
        Column("source", Text, nullable=False),
        UniqueConstraint("run_id", "obligation_id", name="uq_fulfilments_run_obligation"),
    )
    md.create_all(conn, tables=[md.tables["fulfilments"]])


def _timestamp_type(conn: Connection) -> str:
    """The column type ``UTCDateTime`` creates on this backend."""
    return "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


def _milestone_time(at: datetime | str) -> str:
    """A stored mark time (SQLite: naive UTC, as datetime or text; PostgreSQL: aware) as migration 4's text."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def _milestones_text(milestones: dict[str, str]) -> str:
    return json.dumps(milestones, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _0001_initial),
    Migration(2, "outbox", _0002_outbox),
    Migration(3, "run targets and source", _0003_run_targets),
    Migration(4, "run milestones", _0004_run_milestones),
    Migration(5, "runner liveness", _0005_liveness),
    Migration(6, "exercises and corrective actions", _0006_exercises),
    Migration(7, "obligation fulfilments", _0007_fulfilments),
)


def _check_history(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order, got {versions}")


def _applied_versions(conn: Connection) -> set[int]:
    if not inspect(conn).has_table("schema_version"):
        return set()
    return set(conn.scalars(select(schema_version.c.version)))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})


def migrate(engine: Engine, *, migrations: Sequence[Migration] = MIGRATIONS, clock: Clock = now) -> list[int]:
    """Apply every migration not yet recorded in ``schema_version``, oldest first.

    Args:
        engine: an engine made by ``bcm.store.engine.create_store_engine``.
        migrations: the history to apply; tests pass a longer one to check that appending works.
        clock: source of the ``applied_at`` times.

    Returns:
        The versions applied by this call, in order; empty when the database was up to date.

    Raises:
        IncompatibleSchema: the database records a version newer than ``migrations`` knows.
    """
    _check_history(migrations)
    known = len(migrations)
    with engine.connect() as conn, conn.begin():
        done = _applied_versions(conn)
    if done and max(done) > known:
        raise IncompatibleSchema(max(done), known)
    if done >= {m.version for m in migrations}:
        return []

    applied: list[int] = []
    for migration in migrations:
        with engine.connect() as conn:
            conn.execution_options(bcm_write=True)
            with conn.begin():
                _lock(conn)
                schema_version.create(conn, checkfirst=True)
                # Another process may have migrated while we waited for the lock.
                done = _applied_versions(conn)
                if done and max(done) > known:
                    raise IncompatibleSchema(max(done), known)
                if migration.version in done:
                    continue
                migration.apply(conn)
                conn.execute(
                    insert(schema_version).values(version=migration.version, name=migration.name, applied_at=clock())
                )
        applied.append(migration.version)
    return applied
