"""Timeline marks, approvals and readiness checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bcm.errors import AlreadyDecided, RunNotFound
from bcm.store import ApprovalRecord, CheckRecord, ExerciseRunRecord, MarkRecord, Store, TimelineRows

from .conftest import T0, MakeRun


def test_marks_are_idempotent_and_time_ordered(store: Store, make_run: MakeRun) -> None:
    """add_mark records a milestone once (first time wins) and get_marks orders by time."""
    run = make_run()
    assert store.add_mark(run.id, "mitigated", T0 + timedelta(minutes=20), "step:drain-traffic") is True
    assert store.add_mark(run.id, "declared", T0 + timedelta(minutes=1), "step:declare") is True
    assert store.add_mark(run.id, "mitigated", T0 + timedelta(minutes=45), "resume") is False
    assert store.get_marks(run.id) == [
        MarkRecord(run_id=run.id, milestone="declared", at=T0 + timedelta(minutes=1), source="step:declare"),
        MarkRecord(run_id=run.id, milestone="mitigated", at=T0 + timedelta(minutes=20), source="step:drain-traffic"),
    ]


def test_mark_for_unknown_run_raises(store: Store) -> None:
    """add_mark for a run that does not exist raises RunNotFound."""
    with pytest.raises(RunNotFound):
        store.add_mark("ff" * 16, "detected", T0, "cli")


def test_approval_recorded_once(store: Store, make_run: MakeRun) -> None:
    """The first decision is stored; a second raises AlreadyDecided naming the first and changes nothing."""
    run = make_run()
    first = store.record_approval(
        run.id,
        "confirm-generators",
        by="bob",
        decision="approved",
        note="holding",
        waited_s=42.5,
        at=T0 + timedelta(minutes=3),
    )
    assert first == ApprovalRecord(
        run_id=run.id,
        step_id="confirm-generators",
        by="bob",
        decision="approved",
        note="holding",
        waited_s=42.5,
        at=T0 + timedelta(minutes=3),
    )
    with pytest.raises(AlreadyDecided) as caught:
        store.record_approval(
            run.id,
            "confirm-generators",
            by="carol",
            decision="rejected",
            note=None,
            waited_s=50.0,
            at=T0 + timedelta(minutes=4),
        )
    assert str(caught.value) == (
        "step 'confirm-generators' of run 0a1b2c3d was already decided (approved) by bob "
        "at 2026-05-01T09:03:00+00:00; a recorded decision cannot be changed"
    )
    assert store.get_approval(run.id, "confirm-generators") == first


def test_missing_approval_is_none(store: Store, make_run: MakeRun) -> None:
    """get_approval returns None before anyone decided."""
    run = make_run()
    assert store.get_approval(run.id, "confirm-generators") is None


def test_checks_listed_newest_first(store: Store, make_run: MakeRun) -> None:
    """list_checks returns results newest first, optionally for one runbook, output truncated to 4000."""
    run = make_run()
    store.record_check(runbook_id="dc-power-loss", step_id="fuel-level", ok=True, output="82%", at=T0)
    store.record_check(
        runbook_id="dns-outage",
        step_id="zone-serial",
        ok=False,
        output="z" * 5000,
        at=T0 + timedelta(hours=1),
        run_id=run.id,
    )
    checks = store.list_checks()
    assert [(c.runbook_id, c.ok, len(c.output)) for c in checks] == [
        ("dns-outage", False, 4000),
        ("dc-power-loss", True, 3),
    ]
    assert store.list_checks(runbook_id="dc-power-loss") == [
        CheckRecord(
            id=checks[1].id, runbook_id="dc-power-loss", step_id="fuel-level", ok=True, output="82%", at=T0, run_id=None
        )
    ]
    assert checks[0].run_id == run.id


def test_only_a_timed_out_approval_is_reopened(store: Store, make_run: MakeRun) -> None:
    """reopen_approval forgets a timed-out decision (audited) and never one a person made."""
    run = make_run()
    store.record_approval(run.id, "go", by="engine", decision="timed_out", note=None, waited_s=600.0, at=T0)
    store.record_approval(run.id, "fuel", by="bob", decision="approved", note=None, waited_s=5.0, at=T0)
    assert set(store.get_approvals(run.id)) == {"go", "fuel"}
    assert store.reopen_approval(run.id, "go") is True
    assert store.reopen_approval(run.id, "go") is False
    assert store.reopen_approval(run.id, "fuel") is False
    assert store.get_approvals(run.id) == {"fuel": store.get_approval(run.id, "fuel")}
    reopened = [e["data"] for e in store.export_audit(run_id=run.id) if e["kind"] == "approval.reopened"]
    assert reopened == [{"step_id": "go", "was": "timed_out", "timed_out_at": "2026-05-01T09:00:00.000000+00:00"}]
    assert store.verify_audit().ok


def test_timeline_rows_filter_by_service_and_window_and_carry_steps_waits_updates(
    store: Store, make_run: MakeRun
) -> None:
    """list_timeline_rows: dry runs never, window and service filters, steps and waits on demand, updates."""
    a = make_run(run_id="0a" * 16, mode="real", services=["voice-core"], started_at=T0)
    b = make_run(run_id="0b" * 16, mode="exercise", services=["sip-edge"], started_at=T0 + timedelta(days=1))
    make_run(run_id="0c" * 16, mode="dry-run", services=["voice-core"], started_at=T0)
    store.update_run(a.id, status="succeeded", ended_at=T0 + timedelta(hours=1))
    store.upsert_step(a.id, "page", phase="communication", kind="notify", status="succeeded", started_at=T0)
    store.record_approval(a.id, "go", by="bob", decision="approved", note=None, waited_s=42.0, at=T0)
    store.enqueue_message("a/page", kind="notify", payload={}, run_id=a.id, at=T0 + timedelta(minutes=2))
    store.enqueue_message("a/board", kind="board", payload={}, run_id=a.id, at=T0)
    store.mark_message_delivered("a/page", result={}, at=T0 + timedelta(minutes=3))

    def ids(rows: TimelineRows) -> list[str]:
        return [run.id for run in rows.runs]

    assert ids(store.list_timeline_rows()) == [a.id, b.id]
    assert ids(store.list_timeline_rows(mode="exercise")) == [b.id]
    assert ids(store.list_timeline_rows(service="voice-core")) == [a.id]
    assert ids(store.list_timeline_rows(since=T0 + timedelta(hours=2))) == [b.id]
    assert ids(store.list_timeline_rows(until=T0 + timedelta(hours=2))) == [a.id]
    assert ids(store.list_timeline_rows(runbook_id="no-such-runbook")) == []
    plain = store.list_timeline_rows(service="voice-core")
    assert (plain.steps, plain.waits, plain.updates) == ({}, {}, {a.id: [T0 + timedelta(minutes=3)]})
    full = store.list_timeline_rows(run_ids=[a.id], steps=True)
    assert full.steps == {a.id: [("page", "communication", "notify", "succeeded", T0, None)]}
    assert full.waits == {a.id: {"go": 42.0}}
    assert full.runs[0].ended_at == T0 + timedelta(hours=1)


def test_timeline_rows_carry_each_runs_speed(store: Store, make_run: MakeRun) -> None:
    """list_timeline_rows reads an exercise run's speed; 1.0 for a real run or an exercise without a record."""
    for n, (mode, speed) in enumerate((("exercise", 60.0), ("exercise", 1.0), ("exercise", None), ("real", None))):
        run = make_run(run_id=f"{n}a" * 16, mode=mode, started_at=T0 + timedelta(hours=n))
        if speed is not None:
            store.start_exercise(
                ExerciseRunRecord(
                    run_id=run.id,
                    exercise_id="dc-power-drill",
                    exercise_title="Power drill",
                    exercise_hash="cd" * 32,
                    exercise_path="exercises/dc-power-drill.yaml",
                    speed=speed,
                    auto_respond=False,
                    startex_at=T0 + timedelta(hours=n),
                    endex_at=None,
                    ended_by=None,
                )
            )

    def speeds(rows: TimelineRows) -> list[tuple[str, float]]:
        return [(run.id, run.speed) for run in rows.runs]

    assert speeds(store.list_timeline_rows()) == [
        ("0a" * 16, 60.0),
        ("1a" * 16, 1.0),
        ("2a" * 16, 1.0),
        ("3a" * 16, 1.0),
    ]
    assert all(type(run.speed) is float for run in store.list_timeline_rows().runs)
    assert speeds(store.list_timeline_rows(mode="real")) == [("3a" * 16, 1.0)]
    sped = store.list_timeline_rows(run_ids=["0a" * 16], service="voice-core", steps=True)
    assert speeds(sped) == [("0a" * 16, 60.0)]
    assert sped.marks == {"0a" * 16: [("startex", T0)]}
