"""Status transitions of runs and steps, as tables rather than ifs scattered through the engine."""

from __future__ import annotations

from bcm.spec.problems import BcmError

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "running": frozenset({"running", "waiting", "succeeded", "failed", "cancelled"}),
    "waiting": frozenset({"running", "waiting", "succeeded", "failed", "cancelled"}),
    # A failed or interrupted run may be resumed: it goes back to running.
    "failed": frozenset({"running"}),
    "cancelled": frozenset({"running"}),
    "succeeded": frozenset(),
}

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
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

#: Step statuses that count as finished for the steps that wait on them, whatever on_failure says.
#: An approve step that was rejected is answered, not failed: what follows decides with ``when``.
DONE_OK = frozenset({"succeeded", "rejected", "skipped"})
#: Step statuses at which a step's ``marks`` milestone is recorded. A rejected approval is still a
#: decision taken at that moment (an approve step marks ``acknowledged`` in the library).
MARKS_MILESTONE = frozenset({"succeeded", "rejected"})
#: Step statuses that are failures (they stop the run unless the step says on_failure: continue).
FAILURES = frozenset({"failed", "timed_out"})


class InvalidTransition(BcmError):
    """A status change the tables do not allow (a bug, or a run changed by two processes)."""

    def __init__(self, what: str, name: str, old: str, new: str) -> None:
        super().__init__(f"{what} {name}: cannot go from {old} to {new}")


def check_run(name: str, old: str, new: str) -> None:
    """Raise InvalidTransition unless a run may go from ``old`` to ``new``."""
    if new not in RUN_TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition("run", name, old, new)


def check_step(name: str, old: str, new: str) -> None:
    """Raise InvalidTransition unless a step may go from ``old`` to ``new``."""
    if new not in STEP_TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition("step", name, old, new)
