"""Schema migrations: applied once, appendable, atomic, and matching the live schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Connection, Float, Integer, MetaData, Table, Text, insert, inspect, select

from bcm.errors import IncompatibleSchema
from bcm.store import MarkRecord, RunRecord, RunTargets, StepRecord, Store
from bcm.store.engine import create_store_engine
from bcm.store.migrations import MIGRATIONS, Migration, migrate, schema_version
from bcm.store.schema import metadata
from bcm.store.types import UTCDateTime, json_type

from .conftest import T0

APPLIED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _versions(url: str) -> list[tuple[int, str, datetime]]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(schema_version).order_by(schema_version.c.version)).all()
            return [(row.version, row.name, row.applied_at) for row in rows]
    finally:
        engine.dispose()


N = len(MIGRATIONS)
HISTORY = [(m.version, m.name, APPLIED) for m in MIGRATIONS]


def _add_findings(conn: Connection) -> None:
    Table("findings", MetaData(), Column("id", Integer, primary_key=True)).create(conn)


def _fail_halfway(conn: Connection) -> None:
    Table("half_built", MetaData(), Column("id", Integer, primary_key=True)).create(conn)
    raise RuntimeError(f"migration {N + 1} failed")


def test_fresh_database_gets_every_migration(db_url: str) -> None:
    """Migrating an empty database applies every migration and records each with its name and time."""
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine, clock=lambda: APPLIED) == list(range(1, N + 1))
    finally:
        engine.dispose()
    assert _versions(db_url) == HISTORY
    assert HISTORY[:2] == [(1, "initial schema", APPLIED), (2, "outbox", APPLIED)]


def test_reopening_an_up_to_date_database_applies_nothing(db_url: str) -> None:
    """A second migrate, and a second Store.open, apply no migration and record nothing new."""
    Store.open(db_url, clock=lambda: APPLIED).close()
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine) == []
    finally:
        engine.dispose()
    Store.open(db_url).close()
    assert _versions(db_url) == HISTORY


def test_appended_migration_is_the_only_one_applied(db_url: str) -> None:
    """Appending a migration to the history applies just that one to an existing database."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, clock=lambda: APPLIED)
        history = [*MIGRATIONS, Migration(N + 1, "findings", _add_findings)]
        assert migrate(engine, migrations=history, clock=lambda: APPLIED) == [N + 1]
        assert migrate(engine, migrations=history) == []
        assert inspect(engine).has_table("findings")
    finally:
        engine.dispose()
    assert _versions(db_url) == [*HISTORY, (N + 1, "findings", APPLIED)]


def test_failing_migration_leaves_no_trace(db_url: str) -> None:
    """A migration that raises is rolled back whole: its DDL is undone and its version not recorded."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, clock=lambda: APPLIED)
        with pytest.raises(RuntimeError, match=rf"^migration {N + 1} failed$"):
            migrate(engine, migrations=[*MIGRATIONS, Migration(N + 1, "broken", _fail_halfway)])
        assert not inspect(engine).has_table("half_built")
    finally:
        engine.dispose()
    assert _versions(db_url) == HISTORY


def test_database_from_a_newer_bcm_is_refused(db_url: str) -> None:
    """Opening a database migrated past the versions this bcm knows raises IncompatibleSchema."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, migrations=[*MIGRATIONS, Migration(N + 1, "findings", _add_findings)])
        with pytest.raises(IncompatibleSchema) as caught:
            migrate(engine)
    finally:
        engine.dispose()
    assert str(caught.value) == (
        f"the store's schema is at version {N + 1} but this bcm knows versions up to {N}: "
        "upgrade bcm before using this database"
    )


def test_history_must_be_numbered_without_gaps() -> None:
    """A migration list numbered other than 1, 2, 3, ... is rejected before touching the database."""
    engine = create_store_engine("sqlite://")
    try:
        with pytest.raises(ValueError, match=r"^migration versions must be 1, 2, 3, \.\.\. in order, got \[1, 3\]$"):
            migrate(engine, migrations=[MIGRATIONS[0], Migration(3, "findings", _add_findings)])
    finally:
        engine.dispose()


def test_migrated_database_matches_the_live_schema(db_url: str) -> None:
    """The tables the migrations build have exactly the columns, nullability and keys of schema.py."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine)
        found = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            primary_key = found.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [c.name for c in table.primary_key.columns], table.name
        assert set(found.get_table_names()) == {*metadata.tables, "schema_version"}
    finally:
        engine.dispose()


def _v4_tables() -> tuple[Table, Table, Table]:
    """``runs``, ``step_runs`` and ``marks`` as migrations 1-4 left them (before runner liveness)."""
    md = MetaData()
    v4_runs = Table(
        "runs",
        md,
        *(Column(name, Text) for name in ("id", "runbook_id", "runbook_title", "runbook_hash", "runbook_path", "mode")),
        Column("parameters", json_type()),
        Column("triggered_by", Text),
        Column("services", json_type()),
        *(Column(name, Text) for name in ("severity", "status", "flow_run_id", "error")),
        Column("started_at", UTCDateTime),
        Column("ended_at", UTCDateTime),
        *(Column(name, Float) for name in ("rto_s", "rpo_s", "mtpd_s", "data_loss_s", "cadence_s")),
        Column("source", Text),
        Column("milestones", Text),
    )
    v4_steps = Table(
        "step_runs",
        md,
        *(Column(name, Text) for name in ("run_id", "step_id", "phase", "kind", "status")),
        Column("attempts", Integer),
        Column("started_at", UTCDateTime),
        Column("ended_at", UTCDateTime),
        Column("output", json_type()),
        *(Column(name, Text) for name in ("error", "actor", "reason")),
    )
    v4_marks = Table(
        "marks",
        md,
        Column("run_id", Text),
        Column("milestone", Text),
        Column("at", UTCDateTime),
        Column("source", Text),
    )
    return v4_runs, v4_steps, v4_marks


def test_database_at_version_4_opens_and_reads_back(db_url: str) -> None:
    """A database left at version 4 with rows written the old way opens, gets only migration 5, reads back whole."""
    run_id = "0f" * 16
    later = APPLIED + timedelta(days=30)
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine, migrations=MIGRATIONS[:4], clock=lambda: APPLIED) == [1, 2, 3, 4]
        v4_runs, v4_steps, v4_marks = _v4_tables()
        with engine.begin() as conn:
            conn.execute(
                insert(v4_runs).values(
                    id=run_id,
                    runbook_id="dc-power-loss",
                    runbook_title="Data centre power loss",
                    runbook_hash="ab" * 32,
                    runbook_path="runbooks/dc-power-loss.yaml",
                    mode="real",
                    parameters={"site": "lon1"},
                    triggered_by="alice",
                    services=["voice-core", "sip-edge"],
                    severity="sev1",
                    status="succeeded",
                    flow_run_id="flow-9",
                    error=None,
                    started_at=T0,
                    ended_at=T0 + timedelta(hours=2),
                    rto_s=14_400.0,
                    rpo_s=900.0,
                    mtpd_s=None,
                    data_loss_s=None,
                    cadence_s=1_800.0,
                    source="engine",
                    milestones='{"detected":"2026-05-01T09:04:00.000000+00:00"}',
                )
            )
            conn.execute(
                insert(v4_steps).values(
                    run_id=run_id,
                    step_id="drain",
                    phase="response",
                    kind="http",
                    status="succeeded",
                    attempts=1,
                    started_at=T0 + timedelta(minutes=5),
                    ended_at=T0 + timedelta(minutes=6),
                    output={"status": 202},
                    error=None,
                    actor=None,
                    reason=None,
                )
            )
            conn.execute(
                insert(v4_marks).values(run_id=run_id, milestone="detected", at=T0 + timedelta(minutes=4), source="cli")
            )
    finally:
        engine.dispose()

    with Store.open(db_url, clock=lambda: later) as store:
        assert _versions(db_url) == [(v, name, APPLIED if v <= 4 else later) for v, name, _ in HISTORY]
        expected = RunRecord(
            id=run_id,
            runbook_id="dc-power-loss",
            runbook_title="Data centre power loss",
            runbook_hash="ab" * 32,
            runbook_path="runbooks/dc-power-loss.yaml",
            mode="real",
            parameters={"site": "lon1"},
            triggered_by="alice",
            services=("voice-core", "sip-edge"),
            severity="sev1",
            status="succeeded",
            flow_run_id="flow-9",
            error=None,
            started_at=T0,
            ended_at=T0 + timedelta(hours=2),
            targets=RunTargets(rto=timedelta(hours=4), rpo=timedelta(minutes=15), cadence=timedelta(minutes=30)),
            source="engine",
            runner=None,
            heartbeat_at=None,
        )
        assert store.get_run(run_id) == expected
        assert store.get_run("0F0F0F0F") == expected
        assert store.list_runs() == [expected]
        assert store.get_steps(run_id) == [
            StepRecord(
                run_id=run_id,
                step_id="drain",
                phase="response",
                kind="http",
                status="succeeded",
                attempts=1,
                started_at=T0 + timedelta(minutes=5),
                ended_at=T0 + timedelta(minutes=6),
                output={"status": 202},
                error=None,
                actor=None,
                reason=None,
                process=None,
            )
        ]
        assert store.get_marks(run_id) == [
            MarkRecord(run_id=run_id, milestone="detected", at=T0 + timedelta(minutes=4), source="cli")
        ]
        rows = store.list_timeline_rows(run_ids=[run_id], steps=True)
        assert [(run.id, run.services, run.targets) for run in rows.runs] == [
            (run_id, ("voice-core", "sip-edge"), expected.targets)
        ]
        assert rows.marks == {run_id: [("detected", T0 + timedelta(minutes=4))]}
        assert rows.steps == {
            run_id: [("drain", "response", "http", "succeeded", T0 + timedelta(minutes=5), T0 + timedelta(minutes=6))]
        }

        # The old rows take the new writes: liveness (migration 5) and a mark joining the copied ones.
        store.claim_runner(run_id, runner="host-a/4242/99", at=T0 + timedelta(hours=3))
        assert store.add_mark(run_id, "recovered", T0 + timedelta(hours=1), "cli")
        assert (store.get_run(run_id).runner, store.get_run(run_id).heartbeat_at) == (
            "host-a/4242/99",
            T0 + timedelta(hours=3),
        )
        assert store.list_timeline_rows(run_ids=[run_id]).marks[run_id] == [
            ("detected", T0 + timedelta(minutes=4)),
            ("recovered", T0 + timedelta(hours=1)),
        ]
        assert [entry["kind"] for entry in store.export_audit()] == ["run.runner", "mark.added"]
        assert store.verify_audit().ok
