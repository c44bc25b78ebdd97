"""The status vocabulary and the transition tables: every status known, every move deliberate."""

from __future__ import annotations

import pytest

from bcm.engine.machine import RUN_TRANSITIONS, STEP_TRANSITIONS, check_run, check_step
from bcm.errors import InvalidTransition
from bcm.vocabulary import (
    ACTIVE_RUN_STATUSES,
    DONE_OK_STEP_STATUSES,
    FAILED_STEP_STATUSES,
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    MARKING_STEP_STATUSES,
    RUN_STATUSES,
    STEP_STATUSES,
)


def test_tables_cover_exactly_the_vocabulary() -> None:
    """Each table has a row for every status and names no status the vocabulary lacks."""
    assert set(RUN_TRANSITIONS) == set(RUN_STATUSES)
    assert set().union(*RUN_TRANSITIONS.values()) <= set(RUN_STATUSES)
    assert set(STEP_TRANSITIONS) == set(STEP_STATUSES)
    assert set().union(*STEP_TRANSITIONS.values()) <= set(STEP_STATUSES)


def test_groups_are_consistent() -> None:
    """Active and finished runs split the run statuses; step groups sit inside the finished steps."""
    assert set(RUN_STATUSES) == ACTIVE_RUN_STATUSES | FINISHED_RUN_STATUSES
    assert not ACTIVE_RUN_STATUSES & FINISHED_RUN_STATUSES
    assert DONE_OK_STEP_STATUSES | FAILED_STEP_STATUSES <= FINISHED_STEP_STATUSES
    assert not DONE_OK_STEP_STATUSES & FAILED_STEP_STATUSES
    assert {"succeeded", "rejected"} == MARKING_STEP_STATUSES


def test_finished_good_steps_and_settled_runs_never_move() -> None:
    """A succeeded, rejected or skipped step, and a succeeded or recorded run, take no transition."""
    for status in ("succeeded", "rejected", "skipped"):
        assert STEP_TRANSITIONS[status] == frozenset()  # type: ignore[index]
    assert RUN_TRANSITIONS["succeeded"] == frozenset()
    assert RUN_TRANSITIONS["recorded"] == frozenset()


@pytest.mark.parametrize(
    ("old", "new"),
    [("running", "waiting"), ("waiting", "running"), ("waiting", "succeeded"), ("failed", "running")],
)
def test_allowed_run_moves(old: str, new: str) -> None:
    """Runs move between running and waiting, end, and a failed run can be resumed."""
    check_run("r1", old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [("succeeded", "running"), ("recorded", "running"), ("cancelled", "waiting"), ("nonsense", "running")],
)
def test_refused_run_moves(old: str, new: str) -> None:
    """A finished run is not restarted, a cancelled run resumes only to running, unknown statuses are refused."""
    with pytest.raises(InvalidTransition) as caught:
        check_run("r1", old, new)
    assert str(caught.value) == f"run r1: cannot go from {old} to {new}"


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("pending", "waiting", True),
        ("waiting", "rejected", True),
        ("running", "rejected", False),  # only a person rejects
        ("waiting", "waiting", True),  # a resumed run goes on waiting, keeping its start
        ("running", "running", True),  # a resumed run re-runs an interrupted attempt
        ("timed_out", "waiting", True),  # a resumed run asks again after a timeout
        ("succeeded", "running", False),
        ("rejected", "waiting", False),
        ("skipped", "running", False),
    ],
)
def test_step_moves(old: str, new: str, allowed: bool) -> None:
    """The step table allows exactly the moves the engine makes, resume included."""
    if allowed:
        check_step("s1", old, new)
    else:
        with pytest.raises(InvalidTransition):
            check_step("s1", old, new)
