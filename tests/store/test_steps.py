"""Step state: partial upserts, ordering, output truncation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bcm.errors import RunNotFound
from bcm.store import StepRecord, Store
from bcm.store.types import MAX_TEXT_CHARS

from .conftest import T0, MakeRun


def test_upsert_inserts_then_updates_only_given_fields(store: Store, make_run: MakeRun) -> None:
    """A second upsert changes the fields it passes and keeps every field it leaves as None."""
    run = make_run()
    store.upsert_step(
        run.id,
        "drain-traffic",
        phase="response",
        kind="http",
        status="running",
        attempts=1,
        started_at=T0,
        actor="engine",
    )
    store.upsert_step(
        run.id,
        "drain-traffic",
        phase="response",
        kind="http",
        status="succeeded",
        attempts=2,
        ended_at=T0 + timedelta(seconds=90),
        output={"status": 202},
    )
    step = store.get_step(run.id, "drain-traffic")
    assert step == StepRecord(
        run_id=run.id,
        step_id="drain-traffic",
        phase="response",
        kind="http",
        status="succeeded",
        attempts=2,
        started_at=T0,
        ended_at=datetime(2026, 5, 1, 9, 1, 30, tzinfo=UTC),
        output={"status": 202},
        error=None,
        actor="engine",
        reason=None,
    )
    assert step.duration == timedelta(seconds=90)


def test_new_step_starts_with_zero_attempts(store: Store, make_run: MakeRun) -> None:
    """A step inserted without attempts has 0 attempts and no duration."""
    run = make_run()
    store.upsert_step(run.id, "declare", phase="communication", kind="notify", status="pending")
    step = store.get_step(run.id, "declare")
    assert step is not None
    assert (step.attempts, step.started_at, step.output, step.duration) == (0, None, None, None)


def test_missing_step_is_none(store: Store, make_run: MakeRun) -> None:
    """get_step returns None for a step that has no record."""
    run = make_run()
    assert store.get_step(run.id, "restore-power") is None


def test_steps_in_start_order_unstarted_last(store: Store, make_run: MakeRun) -> None:
    """get_steps orders by started_at with steps that have not started at the end."""
    run = make_run()
    store.upsert_step(
        run.id, "a-later", phase="response", kind="run", status="running", started_at=T0 + timedelta(minutes=2)
    )
    store.upsert_step(run.id, "b-unstarted", phase="recovery", kind="manual", status="pending")
    store.upsert_step(run.id, "c-first", phase="communication", kind="notify", status="succeeded", started_at=T0)
    assert [s.step_id for s in store.get_steps(run.id)] == ["c-first", "a-later", "b-unstarted"]


def test_long_output_strings_are_truncated(store: Store, make_run: MakeRun) -> None:
    """Strings in output longer than 4000 characters are cut to 4000, ending with a marker."""
    run = make_run()
    store.upsert_step(
        run.id,
        "dump",
        phase="response",
        kind="run",
        status="succeeded",
        output={"stdout": "x" * 10_000, "lines": ["y" * 5000, "short"], "rc": 0},
    )
    step = store.get_step(run.id, "dump")
    assert step is not None
    assert step.output == {
        "stdout": "x" * (MAX_TEXT_CHARS - 12) + "…[truncated]",
        "lines": ["y" * (MAX_TEXT_CHARS - 12) + "…[truncated]", "short"],
        "rc": 0,
    }


def test_output_values_made_json(store: Store, make_run: MakeRun) -> None:
    """Datetimes, tuples and other objects in output are stored as JSON text, strings and lists."""
    run = make_run()
    store.upsert_step(
        run.id,
        "call",
        phase="response",
        kind="call",
        status="succeeded",
        output={"when": T0, "pair": (1, 2), "path": "/srv"},
    )
    step = store.get_step(run.id, "call")
    assert step is not None
    assert step.output == {"when": "2026-05-01T09:00:00+00:00", "pair": [1, 2], "path": "/srv"}


def test_step_for_unknown_run_raises(store: Store) -> None:
    """upsert_step for a run that does not exist raises RunNotFound."""
    with pytest.raises(RunNotFound):
        store.upsert_step("ff" * 16, "declare", phase="communication", kind="notify", status="pending")


def test_fresh_attempt_clears_what_the_last_one_left(store: Store, make_run: MakeRun) -> None:
    """fresh=True clears end time, output, error, actor, reason and process; attempts and start stay."""
    run = make_run()
    store.upsert_step(
        run.id,
        "restart-db",
        phase="recovery",
        kind="run",
        status="failed",
        attempts=1,
        started_at=T0,
        ended_at=T0 + timedelta(minutes=1),
        output={"exit": 1},
        error="exit status 1",
        actor="engine",
        reason="timeout",
        process="host-a/4242/99",
    )
    store.upsert_step(run.id, "restart-db", phase="recovery", kind="run", status="running", fresh=True)
    assert store.get_step(run.id, "restart-db") == StepRecord(
        run_id=run.id,
        step_id="restart-db",
        phase="recovery",
        kind="run",
        status="running",
        attempts=1,
        started_at=T0,
        ended_at=None,
        output=None,
        error=None,
        actor=None,
        reason=None,
        process=None,
    )


def test_each_finished_status_reached_is_audited_once(store: Store, make_run: MakeRun) -> None:
    """step.finished is appended when a finished status is reached, not again for the same status."""
    run = make_run()
    for status in ("running", "failed", "failed", "running", "succeeded", "succeeded"):
        store.upsert_step(run.id, "restart-db", phase="recovery", kind="run", status=status)
    finished = [e["data"]["status"] for e in store.export_audit(run_id=run.id) if e["kind"] == "step.finished"]
    assert finished == ["failed", "succeeded"]
