"""The in-process executor and its helpers (bcm.testing): retries, delays, threads, the manual clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bcm.engine.actions import StepOutcome
from bcm.errors import InputError
from bcm.spec import load_one
from bcm.spec.models import Step
from bcm.store import Store
from bcm.testing import InProcessExecutor, ManualClock, run_in_process
from tests.conftest import FIXTURES


def script(*outcomes: StepOutcome | Exception) -> tuple[Callable[[], StepOutcome], list[int]]:
    """An attempt that gives ``outcomes`` one call after another, and the count of its calls."""
    calls = [0]

    def attempt() -> StepOutcome:
        calls[0] += 1
        outcome = outcomes[calls[0] - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempt, calls


FAILED = StepOutcome("failed", error="exit code 3")
OK = StepOutcome("succeeded", output={"n": 1})


def test_a_failing_step_is_tried_again_after_its_retry_delay_until_it_succeeds() -> None:
    """retries: 2 and retry_delay: 45s: two failures, a sleep of 45 s before each next try, then success."""
    sleeps: list[float] = []
    attempt, calls = script(FAILED, FAILED, OK)
    executor = InProcessExecutor(sleep=sleeps.append)
    outcome = executor.submit(Step(id="flaky", run=["true"], retries=2, retry_delay="45s"), attempt).outcome()
    assert (outcome, calls[0], sleeps) == (OK, 3, [45.0, 45.0])


def test_a_step_that_keeps_failing_ends_with_its_last_attempt() -> None:
    """After retries + 1 attempts the last outcome is the step's: no further try, no trailing sleep."""
    sleeps: list[float] = []
    last = StepOutcome("timed_out", error="timed out after 1s")
    attempt, calls = script(FAILED, last)
    executor = InProcessExecutor(sleep=sleeps.append)
    outcome = executor.submit(Step(id="broken", run=["false"], retries=1, retry_delay="0s"), attempt).outcome()
    assert (outcome, calls[0], sleeps) == (last, 2, [0.0])


def test_an_attempt_that_raises_is_a_failed_attempt_and_is_retried() -> None:
    """A raising attempt reads as failed with the exception's type and text, like a crashed Prefect task."""
    attempt, calls = script(RuntimeError("store went away"), OK)
    executor = InProcessExecutor(sleep=lambda _: None)
    assert executor.submit(Step(id="s", run=["true"], retries=1), attempt).outcome() == OK
    attempt, calls = script(RuntimeError("store went away"))
    outcome = executor.submit(Step(id="t", run=["true"]), attempt).outcome()
    assert (outcome.status, outcome.error, calls[0]) == ("failed", "RuntimeError: store went away", 1)


def test_a_person_step_is_attempted_once_and_recorded_with_its_role() -> None:
    """With waits_for, the attempt is the wait: never retried; submitted records (step, role) in order."""
    attempt, calls = script(StepOutcome("timed_out", error="no decision"))
    executor = InProcessExecutor(sleep=lambda _: pytest.fail("a person step never sleeps"))
    step = Step(id="go", approve={"by": "incident_commander", "prompt": "Go?"}, retries=3)
    assert executor.submit(step, attempt, waits_for="incident_commander").outcome().status == "timed_out"
    executor.submit(Step(id="w", wait="1s"), script(OK)[0]).outcome()
    assert (calls[0], executor.submitted) == (1, [("go", "incident_commander"), ("w", None)])


def test_steps_run_on_threads_of_their_own_and_wait_any_returns_the_first_done() -> None:
    """Two submitted steps are in flight together (they meet at a barrier); wait_any gives the one that
    finished, and of two finished the first in the list."""
    barrier = threading.Barrier(2, timeout=5)
    release = threading.Event()

    def meet_then(outcome: StepOutcome, gate: threading.Event | None) -> Callable[[], StepOutcome]:
        def attempt() -> StepOutcome:
            barrier.wait()
            if gate is not None:
                gate.wait(5)
            return outcome

        return attempt

    executor = InProcessExecutor()
    slow = executor.submit(Step(id="slow", wait="1s"), meet_then(FAILED, release))
    fast = executor.submit(Step(id="fast", wait="1s"), meet_then(OK, None))
    assert executor.wait_any([slow, fast]) is fast
    release.set()
    slow.outcome()
    assert executor.wait_any([slow, fast]) is slow


def test_manual_clock_moves_only_when_told() -> None:
    """A ManualClock reads the same until advanced, by seconds or a timedelta, and never goes back."""
    clock = ManualClock(datetime(2025, 1, 1, 12, 0, tzinfo=UTC))
    assert clock() == clock() == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert clock.advance(90) == datetime(2025, 1, 1, 12, 1, 30, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1)) == clock() == datetime(2025, 1, 1, 13, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite in the test's own folder."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as opened:
        yield opened


def test_run_in_process_refuses_bad_parameters_and_auto_approve_outside_exercises(store: Store) -> None:
    """Every parameter problem is named before anything is recorded; auto_approve needs exercise mode."""
    loaded, catalog = load_one(str(FIXTURES / "engine" / "failures.yaml"), library_root=FIXTURES)
    with pytest.raises(InputError) as info:
        run_in_process(loaded, catalog, {"flaky_until": "soon"}, store=store, auto_approve=True)
    assert str(info.value) == (
        "missing required parameter 'counter' (File counting attempts): give it with -p counter=VALUE; "
        "parameter 'flaky_until': expected an integer, got 'soon'; auto_approve is only for exercise mode"
    )
    assert store.list_runs() == []
