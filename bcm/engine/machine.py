"""Status transitions of runs and steps, as tables rather than ifs scattered through the engine."""

from __future__ import annotations

from bcm.errors import InvalidTransition
from bcm.vocabulary import (
    DONE_OK_STEP_STATUSES,
    FAILED_STEP_STATUSES,
    MARKING_STEP_STATUSES,
    RunStatus,
    StepStatus,
)

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    "running": frozenset({"running", "waiting", "succeeded", "failed", "cancelled"}),
    "waiting": frozenset({"running", "waiting", "succeeded", "failed", "cancelled"}),
    # A failed or interrupted run may be resumed: it goes back to running.
    "failed": frozenset({"running"}),
    "cancelled": frozenset({"running"}),
    "succeeded": frozenset(),
    # A disruption recorded after the fact (bcm incident record|import) was never run: it never moves.
    "recorded": frozenset(),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    "pending": frozenset({"running", "waiting", "skipped", "cancelled"}),
    "running": frozenset({"running", "succeeded", "failed", "timed_out", "cancelled"}),
    "waiting": frozenset({"waiting", "succeeded", "rejected", "failed", "timed_out", "cancelled"}),
    # Resume re-runs what did not finish well; finished-good steps are never repeated.
    "failed": frozenset({"running", "waiting", "skipped", "cancelled"}),
    "timed_out": frozenset({"running", "waiting", "skipped", "cancelled"}),
    "cancelled": frozenset({"running", "waiting", "skipped", "cancelled"}),
    "succeeded": frozenset(),
    "rejected": frozenset(),
    "skipped": frozenset(),
}

#: Groups of statuses, from the vocabulary (kept here under the names the engine reads best).
DONE_OK = DONE_OK_STEP_STATUSES
FAILURES = FAILED_STEP_STATUSES
MARKS_MILESTONE = MARKING_STEP_STATUSES
#: Step statuses that are failures (they stop the run unless the step says on_failure: continue).
FAILURES = frozenset({"failed", "timed_out"})


def check_run(name: str, old: str, new: str) -> None:
    """Raise InvalidTransition unless a run may go from ``old`` to ``new``."""
    if new not in RUN_TRANSITIONS.get(old, frozenset()):  # type: ignore[call-overload]
        raise InvalidTransition("run", name, old, new)


def check_step(name: str, old: str, new: str) -> None:
    """Raise InvalidTransition unless a step may go from ``old`` to ``new``."""
    if new not in STEP_TRANSITIONS.get(old, frozenset()):  # type: ignore[call-overload]
        raise InvalidTransition("step", name, old, new)
