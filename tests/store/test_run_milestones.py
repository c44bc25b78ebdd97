"""``runs.milestones``, the copy of each run's marks on its row, always agrees with ``marks``."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, MetaData, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from bcm.store import RunImport, RunRecord, RunTargets, Store
from bcm.store.engine import create_store_engine
from bcm.store.migrations import MIGRATIONS, migrate
from bcm.store.schema import runs
from bcm.store.store import paused_gc
from bcm.store.types import UTCDateTime, json_type

from .conftest import T0, MakeRun


def _column(store: Store, run_id: str) -> str:
    with store.engine.connect() as conn:
        text = conn.execute(select(runs.c.milestones).where(runs.c.id == run_id)).scalar_one()
    assert isinstance(text, str)
    return text


def _assert_agrees(store: Store, run_id: str) -> dict[str, datetime]:
    """The column holds exactly the run's marks, in the canonical text; returns them."""
    text = _column(store, run_id)
    stored = json.loads(text)
    from_marks = {mark.milestone: mark.at for mark in store.get_marks(run_id)}
    assert {name: datetime.fromisoformat(at) for name, at in stored.items()} == from_marks
    assert text == json.dumps(
        {name: at.astimezone(UTC).isoformat(timespec="microseconds") for name, at in from_marks.items()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return from_marks


def _import(run_id: str, marks: tuple[tuple[str, datetime], ...], *, mode: str = "real") -> RunImport:
    return RunImport(
        run=RunRecord(
            id=run_id,
            runbook_id="external",
            runbook_title="Recorded disruption",
            runbook_hash="",
            runbook_path="",
            mode=mode,
            parameters={},
            triggered_by="alice",
            services=("voice-core",),
            severity="sev2",
            status="succeeded",
            flow_run_id=None,
            error=None,
            started_at=T0,
            ended_at=T0 + timedelta(hours=2),
            targets=RunTargets(rto=timedelta(hours=4)),
            source="record",
        ),
        marks=marks,
    )


def test_a_new_run_has_no_milestones(store: Store, make_run: MakeRun) -> None:
    """create_run leaves the column at ``{}``."""
    run = make_run()
    assert _column(store, run.id) == "{}"
    assert _assert_agrees(store, run.id) == {}


def test_add_mark_updates_the_column_and_a_replay_changes_nothing(store: Store, make_run: MakeRun) -> None:
    """Each new mark lands on the run row too; a resumed run's replayed marks leave both alone."""
    run = make_run()
    cest = timezone(timedelta(hours=2))
    assert store.add_mark(run.id, "declared", T0 + timedelta(minutes=1), "step:declare")
    # Times in any offset are stored in UTC, with microseconds, like the mark itself.
    assert store.add_mark(run.id, "mitigated", (T0 + timedelta(minutes=20, microseconds=7)).astimezone(cest), "step:x")
    assert _assert_agrees(store, run.id) == {
        "declared": T0 + timedelta(minutes=1),
        "mitigated": T0 + timedelta(minutes=20, microseconds=7),
    }
    before = _column(store, run.id)
    assert before == ('{"declared":"2026-05-01T09:01:00.000000+00:00","mitigated":"2026-05-01T09:20:00.000007+00:00"}')
    audit_before = len(store.export_audit())

    # Resume: the same steps mark again, later; the first time wins and nothing is written.
    assert store.add_mark(run.id, "declared", T0 + timedelta(minutes=50), "resume") is False
    assert store.add_mark(run.id, "mitigated", T0 + timedelta(minutes=55), "resume") is False
    assert _column(store, run.id) == before
    assert len(store.export_audit()) == audit_before

    assert store.add_mark(run.id, "recovered", T0 + timedelta(minutes=58), "resume")
    assert set(_assert_agrees(store, run.id)) == {"declared", "mitigated", "recovered"}
    assert store.verify_audit().ok


def test_import_writes_the_column_with_the_marks(store: Store) -> None:
    """import_runs fills the column in the same transaction as the marks; a run without marks has ``{}``."""
    marks = (
        ("impact_started", T0),
        ("detected", T0 + timedelta(minutes=3, microseconds=250)),
        ("recovered", T0 + timedelta(hours=1)),
    )
    store.import_runs([_import("a" * 32, marks), _import("b" * 32, ())], audit_kind="incident.imported")
    assert _assert_agrees(store, "a" * 32) == dict(marks)
    assert _column(store, "b" * 32) == "{}"
    # Marks added to an imported run later join the imported ones.
    assert store.add_mark("a" * 32, "resolved", T0 + timedelta(hours=2), "cli")
    assert store.add_mark("a" * 32, "detected", T0, "cli") is False
    assert set(_assert_agrees(store, "a" * 32)) == {"impact_started", "detected", "recovered", "resolved"}


def test_a_failed_import_leaves_no_milestones(store: Store, make_run: MakeRun) -> None:
    """An import that fails (here: a run id already stored) writes neither marks nor the column."""
    run = make_run()
    store.add_mark(run.id, "declared", T0, "step:declare")
    before = _column(store, run.id)
    with pytest.raises(IntegrityError):
        store.import_runs([_import("c" * 32, (("detected", T0),)), _import(run.id, ())], audit_kind="x")
    assert _column(store, run.id) == before
    assert store.list_timeline_rows(run_ids=["c" * 32]).runs == []


def test_timeline_rows_read_the_column(store: Store, make_run: MakeRun) -> None:
    """list_timeline_rows returns the marks: known milestones in their order, then unknown ones by time."""
    run = make_run()
    store.add_mark(run.id, "resolved", T0 + timedelta(hours=3), "cli")
    store.add_mark(run.id, "recoverd", T0 + timedelta(hours=2), "typo")
    store.add_mark(run.id, "aaa", T0 + timedelta(hours=2, minutes=30), "typo")
    store.add_mark(run.id, "detected", T0 + timedelta(minutes=5), "cli")
    store.add_mark(run.id, "impact_started", T0, "cli")
    rows = store.list_timeline_rows(run_ids=[run.id])
    assert rows.marks[run.id] == [
        ("impact_started", T0),
        ("detected", T0 + timedelta(minutes=5)),
        ("resolved", T0 + timedelta(hours=3)),
        ("recoverd", T0 + timedelta(hours=2)),
        ("aaa", T0 + timedelta(hours=2, minutes=30)),
    ]
    assert all(at.tzinfo is not None and at.utcoffset() == timedelta(0) for _, at in rows.marks[run.id])


def test_migration_4_backfills_existing_runs(db_url: str) -> None:
    """A database from before migration 4 gets each run's marks copied onto its row, as the store writes them."""
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine, migrations=MIGRATIONS[:3]) == [1, 2, 3]
        md = MetaData()
        old_runs = Table(
            "runs",
            md,
            Column("id", Text),
            Column("runbook_id", Text),
            Column("runbook_title", Text),
            Column("runbook_hash", Text),
            Column("runbook_path", Text),
            Column("mode", Text),
            Column("parameters", json_type()),
            Column("triggered_by", Text),
            Column("services", json_type()),
            Column("severity", Text),
            Column("status", Text),
            Column("started_at", UTCDateTime),
        )
        old_marks = Table(
            "marks",
            md,
            Column("run_id", Text),
            Column("milestone", Text),
            Column("at", UTCDateTime),
            Column("source", Text),
        )
        with engine.begin() as conn:
            for run_id in ("d" * 32, "e" * 32):
                conn.execute(
                    insert(old_runs).values(
                        id=run_id,
                        runbook_id="dc-power-loss",
                        runbook_title="Data centre power loss",
                        runbook_hash="ab" * 32,
                        runbook_path="runbooks/dc-power-loss.yaml",
                        mode="real",
                        parameters={},
                        triggered_by="alice",
                        services=["voice-core"],
                        severity="sev1",
                        status="succeeded",
                        started_at=T0,
                    )
                )
            conn.execute(
                insert(old_marks),
                [
                    {"run_id": "d" * 32, "milestone": "detected", "at": T0 + timedelta(minutes=4), "source": "cli"},
                    {"run_id": "d" * 32, "milestone": "declared", "at": T0 + timedelta(seconds=1.5), "source": "cli"},
                    {"run_id": "d" * 32, "milestone": "stood_down", "at": T0 + timedelta(hours=5), "source": "cli"},
                ],
            )
    finally:
        engine.dispose()

    with Store.open(db_url, clock=lambda: T0) as store:
        assert _column(store, "d" * 32) == (
            '{"declared":"2026-05-01T09:00:01.500000+00:00","detected":"2026-05-01T09:04:00.000000+00:00",'
            '"stood_down":"2026-05-01T14:00:00.000000+00:00"}'
        )
        assert _assert_agrees(store, "d" * 32) == {
            "declared": T0 + timedelta(seconds=1.5),
            "detected": T0 + timedelta(minutes=4),
            "stood_down": T0 + timedelta(hours=5),
        }
        assert _column(store, "e" * 32) == "{}"
        # Marks added after the migration extend the backfilled text.
        assert store.add_mark("d" * 32, "detected", T0, "resume") is False
        assert store.add_mark("e" * 32, "detected", T0, "cli")
        _assert_agrees(store, "d" * 32)
        _assert_agrees(store, "e" * 32)
        assert [run.id for run in store.list_timeline_rows().runs] == ["d" * 32, "e" * 32]


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_gc_restores_the_collector_as_it_was(enabled: bool) -> None:
    """The collector is off inside ``paused_gc`` and back to its earlier state after, even on error."""
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with pytest.raises(RuntimeError), paused_gc():
            assert not gc.isenabled()
            with paused_gc():
                assert not gc.isenabled()
            assert not gc.isenabled()
            raise RuntimeError
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
