"""Runs in-process (no Prefect, SQLite): ordering, concurrency, retries, skips, failures, timeouts,
exercise mode and resume, pinned on what the store records."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bcm.comms import RecordingNotifier
from bcm.engine.runner import AUTO_APPROVER, RunResult
from bcm.spec import load_one
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.store import MarkRecord, RunRecord, StepRecord, Store
from bcm.testing import ManualClock, resume_in_process, run_in_process
from bcm.testing.executor import DEFAULT_START
from tests.conftest import FIXTURES

T0 = DEFAULT_START


@functools.cache
def runbook(name: str) -> tuple[LoadedRunbook, Catalog]:
    """A runbook of tests/fixtures/engine, validated."""
    return load_one(str(FIXTURES / "engine" / f"{name}.yaml"), library_root=FIXTURES)


def steps_of(store: Store, run_id: str) -> dict[str, StepRecord]:
    return {s.step_id: s for s in store.get_steps(run_id)}


def marks_of(store: Store, run_id: str) -> dict[str, MarkRecord]:
    return {m.milestone: m for m in store.get_marks(run_id)}


@pytest.fixture(autouse=True, scope="module")
def python3_is_this_interpreter() -> Iterator[None]:
    """Steps' ``python3`` is this virtualenv's: a version manager's shim costs up to half a second a call."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite in the test's own folder."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as opened:
        yield opened


@pytest.fixture
def store_both(db_url: str) -> Iterator[Store]:
    """A store on each backend: SQLite, and PostgreSQL (marked postgres, so not in make test-fast)."""
    with Store.open(db_url) as opened:
        yield opened


def test_steps_run_in_order_and_independent_steps_overlap(store_both: Store, tmp_path: Path) -> None:
    """first, then left and right at once (their stored times overlap), join after both, restore last;
    each step's milestone is its end time."""
    out = tmp_path / "order.txt"
    loaded, catalog = runbook("ordering")
    result = run_in_process(loaded, catalog, {"out": str(out)}, store=store_both)
    assert result == RunResult(result.run_id, "succeeded", ())
    lines = out.read_text().splitlines()
    assert (lines[0], sorted(lines[1:3]), lines[3:]) == ("first", ["left", "right"], ["join", "restore"])
    steps = steps_of(store_both, result.run_id)
    assert {s: r.status for s, r in steps.items()} == dict.fromkeys(
        ("declare", "first", "left", "right", "join", "restore"), "succeeded"
    )
    left, right, join = steps["left"], steps["right"], steps["join"]
    assert left.started_at < right.ended_at and right.started_at < left.ended_at  # type: ignore[operator]
    assert join.started_at >= max(left.ended_at, right.ended_at)  # type: ignore[operator,type-var]
    assert steps["first"].ended_at <= min(left.started_at, right.started_at)  # type: ignore[operator,type-var]
    marks = marks_of(store_both, result.run_id)
    assert {m: (r.at, r.source) for m, r in marks.items()} == {
        "declared": (steps["declare"].ended_at, "step:declare"),
        "acknowledged": (steps["first"].ended_at, "step:first"),
        "mitigated": (join.ended_at, "step:join"),
        "recovered": (steps["restore"].ended_at, "step:restore"),
    }
    run = store_both.get_run(result.run_id)
    assert (run.status, run.mode, run.runbook_id, run.error) == ("succeeded", "real", "ordering", None)


@dataclass(frozen=True)
class Finished:
    """A run that ended, and what it left in the store."""

    result: RunResult
    run: RunRecord
    steps: dict[str, StepRecord]
    sleeps: list[float]
    folder: Path


def run_failures(folder: Path, **params: Any) -> Finished:
    """Run tests/fixtures/engine/failures.yaml with its own store in ``folder``."""
    sleeps: list[float] = []
    loaded, catalog = runbook("failures")
    with Store.open(f"sqlite:///{folder / 'bcm.db'}") as store:
        result = run_in_process(
            loaded, catalog, {"counter": str(folder / "attempts"), **params}, store=store, sleep=sleeps.append
        )
        return Finished(result, store.get_run(result.run_id), steps_of(store, result.run_id), sleeps, folder)


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """failures.yaml with its defaults (one run shared by the tests that read it: it takes a second)."""
    return run_failures(tmp_path_factory.mktemp("failures"))


def test_a_flaky_step_succeeds_on_its_third_attempt(failed: Finished) -> None:
    """retries: 2: the command ran three times, the step records 3 attempts and no error, and the
    executor slept its retry_delay (0 s) between attempts."""
    flaky = failed.steps["flaky"]
    assert (flaky.status, flaky.attempts, flaky.error) == ("succeeded", 3, None)
    assert (failed.folder / "attempts").read_text() == "xxx"
    assert failed.sleeps == [0.0, 0.0]


def test_a_false_when_skips_the_step_with_the_reason(failed: Finished) -> None:
    """The skipped step is recorded skipped, never attempted, with the condition that was false."""
    skipped = failed.steps["skipped-branch"]
    assert (skipped.status, skipped.attempts) == ("skipped", 0)
    assert skipped.reason == "when {{ steps['flaky'].status != 'succeeded' }} was false"
    assert skipped.started_at == skipped.ended_at


def test_a_command_over_its_timeout_times_out_and_on_failure_continue_goes_on(failed: Finished) -> None:
    """timeout: 1s stops a 10 s command (timed_out, with the limit in the error); on_failure: continue
    lets the next step run."""
    slow = failed.steps["slow"]
    assert (slow.status, slow.error, slow.attempts) == ("timed_out", "timed out after 1s", 1)
    assert timedelta(seconds=1) <= slow.duration < timedelta(seconds=5)  # type: ignore[operator]
    assert failed.steps["broken"].attempts == 1  # the run went on to it


def test_a_failing_step_stops_the_run_and_the_rest_is_cancelled_with_the_reason(failed: Finished) -> None:
    """broken fails with the last line of stderr; after-broken is cancelled, saying why; the run fails
    naming the step, and the tolerated timeout is listed among the failed steps."""
    broken, after = failed.steps["broken"], failed.steps["after-broken"]
    assert (broken.status, broken.error) == ("failed", "exit code 4: disk full")
    assert broken.output == {"exit_code": 4, "stdout": "", "stderr": "disk full\n"}
    assert (after.status, after.attempts, after.started_at) == ("cancelled", 0, None)
    assert after.reason == "not run: the run stopped after step 'broken' failed"
    assert (failed.run.status, failed.run.error) == ("failed", "step 'broken' exit code 4: disk full")
    assert failed.result == RunResult(failed.run.id, "failed", ("slow", "broken"))


def test_tolerated_failures_and_skips_let_the_run_succeed(tmp_path: Path) -> None:
    """With the failing step skipped by its when, the timeout under on_failure: continue does not fail
    the run: it succeeds, reporting the timed-out step."""
    finished = run_failures(tmp_path, flaky_until="1", stop_on_failure="false")
    statuses = {s: (r.status, r.attempts) for s, r in finished.steps.items()}
    assert statuses == {
        "flaky": ("succeeded", 1),
        "skipped-branch": ("skipped", 0),
        "slow": ("timed_out", 1),
        "broken": ("skipped", 0),
        "after-broken": ("succeeded", 1),
    }
    assert finished.steps["broken"].reason == "when {{ params.stop_on_failure }} was false"
    assert (finished.run.status, finished.run.error) == ("succeeded", None)
    assert finished.result == RunResult(finished.run.id, "succeeded", ("slow",))
    assert finished.sleeps == []


def test_exercise_mode_simulates_runs_skips_and_auto_approves(store: Store, tmp_path: Path) -> None:
    """Exercise: a run step is only described (nothing touched), an exercise: run step runs, an
    exercise: skip step is skipped, the approval is automatic at once, a wait step waits through the
    injected sleep, every message is an exercise message and no incident channel is opened."""
    out = tmp_path / "touched.txt"
    clock, sleeps, notifier = ManualClock(), list[float](), RecordingNotifier()
    loaded, catalog = runbook("exercise")
    result = run_in_process(
        loaded,
        catalog,
        {"out": str(out)},
        store=store,
        mode="exercise",
        auto_approve=True,
        now=clock,
        sleep=sleeps.append,
        notifier=notifier,
    )
    assert result == RunResult(result.run_id, "succeeded", ())
    assert not out.exists()
    steps = steps_of(store, result.run_id)
    touch = steps["touch-system"]
    assert (touch.status, touch.reason, touch.attempts) == ("succeeded", "exercise: simulated", 1)
    assert touch.output == {
        "simulated": True,
        "would": f"run python3 -c import sys; print('touched', file=open(sys.argv[1], 'a')) {out}",
    }
    check = steps["read-only-check"]
    assert (check.status, check.output) == ("succeeded", {"exit_code": 0, "stdout": "healthy\n", "stderr": ""})
    assert (steps["skip-me"].status, steps["skip-me"].reason, steps["skip-me"].attempts) == (
        "skipped",
        "exercise: skip",
        0,
    )
    decide = steps["decide"]
    assert (decide.status, decide.actor, decide.started_at, decide.ended_at) == ("succeeded", AUTO_APPROVER, T0, T0)
    assert decide.output == {"approved": True, "by": AUTO_APPROVER, "note": None, "waited_s": 0.0}
    assert (steps["done"].status, steps["done"].output) == ("succeeded", {"waited_s": 1.0})
    assert sleeps == [1.0]
    assert all(m.exercise for m in notifier.messages)
    assert [m.kind for m in notifier.messages if m.kind in ("open_channel", "approval_request")] == []
    texts = [m.text for m in notifier.messages if m.kind in ("notify", "thread")]
    assert texts and all(t.startswith("[EXERCISE] ") for t in texts)
    assert [m.text for m in notifier.messages if m.kind == "notify"] == [f"[EXERCISE] Voice outage at {out}"]
    run = store.get_run(result.run_id)
    assert (run.mode, run.started_at, run.ended_at) == ("exercise", T0, T0)
    assert {m: (r.at, r.source) for m, r in marks_of(store, result.run_id).items()} == {
        "declared": (T0, "step:tell-exec"),
        "mitigated": (T0, "step:touch-system"),
        "acknowledged": (T0, "step:decide"),
        "recovered": (T0, "step:done"),
    }


def test_a_failed_step_fixed_on_resume_leaves_no_old_error(store: Store, tmp_path: Path) -> None:
    """A step that failed, then succeeded when the run was resumed, no longer carries the old error,
    nor does the run; it counts both attempts."""
    gate = tmp_path / "gate"
    loaded, catalog = runbook("fails-then-fixed")
    failed = run_in_process(loaded, catalog, {"gate": str(gate)}, store=store)
    assert failed == RunResult(failed.run_id, "failed", ("needs-gate",))
    assert store.get_run(failed.run_id).error == "step 'needs-gate' exit code 1: gate is closed"
    gate.touch()
    resumed = resume_in_process(loaded, catalog, failed.run_id, store=store)
    assert resumed == RunResult(failed.run_id, "succeeded", ())
    run, step = store.get_run(failed.run_id), store.get_step(failed.run_id, "needs-gate")
    assert (run.status, run.error) == ("succeeded", None)
    assert step is not None and (step.status, step.error, step.attempts) == ("succeeded", None, 2)


RESUMABLE = """\
version: 1
id: resume-after-failure
title: Resume after a failure
owner: voice_ops
severity: sev3
parameters:
  out: {type: string, required: true}
  gate: {type: string, required: true}
phases:
  response:
    - id: once
      run: [python3, -c, "import sys; print('once', file=open(sys.argv[1], 'a'))", "{{ params.out }}"]
      marks: acknowledged
    - id: needs-gate
      run:
        - python3
        - -c
        - "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 'gate is closed')"
        - "{{ params.gate }}"
    - id: last
      run: [python3, -c, "import sys; print('last', file=open(sys.argv[1], 'a'))", "{{ params.out }}"]
      marks: recovered
"""


def test_resume_repeats_no_finished_step_and_runs_what_was_cancelled(store: Store, tmp_path: Path) -> None:
    """On resume the succeeded step is not run again (its record and milestone keep their first times),
    the failed step runs again and the cancelled step after it runs for the first time."""
    (tmp_path / "catalog").symlink_to(FIXTURES / "catalog")
    (tmp_path / "resume.yaml").write_text(RESUMABLE)
    loaded, catalog = load_one(str(tmp_path / "resume.yaml"), library_root=tmp_path)
    out, gate, clock = tmp_path / "out", tmp_path / "gate", ManualClock()
    first = run_in_process(loaded, catalog, {"out": str(out), "gate": str(gate)}, store=store, now=clock)
    before = steps_of(store, first.run_id)
    assert {s: r.status for s, r in before.items()} == {
        "once": "succeeded",
        "needs-gate": "failed",
        "last": "cancelled",
    }
    gate.touch()
    clock.advance(600)
    resumed = resume_in_process(loaded, catalog, first.run_id, store=store, now=clock)
    assert resumed == RunResult(first.run_id, "succeeded", ())
    assert out.read_text() == "once\nlast\n"
    after = steps_of(store, first.run_id)
    assert after["once"] == before["once"]
    assert (after["once"].attempts, after["once"].ended_at) == (1, T0)
    resumed_at = T0 + timedelta(seconds=600)
    for step_id in ("needs-gate", "last"):
        record = after[step_id]
        assert (record.status, record.attempts, record.started_at, record.error, record.reason) == (
            "succeeded",
            2 if step_id == "needs-gate" else 1,
            resumed_at,
            None,
            None,
        )
    assert {m: (r.at, r.source) for m, r in marks_of(store, first.run_id).items()} == {
        "acknowledged": (T0, "step:once"),
        "recovered": (resumed_at, "step:last"),
    }
