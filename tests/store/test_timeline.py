"""Timeline marks, approvals and readiness checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bcm.errors import AlreadyDecided, RunNotFound
from bcm.store import ApprovalRecord, CheckRecord, MarkRecord, Store

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
