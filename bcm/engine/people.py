"""People steps waiting on their own: the decisions of a run's waiting steps, found in the store.

Each approve or manual step waits in a task of its own (``DecisionBoard.await_decision``) until its
decision is in the store or its deadline passes. The run's heartbeat thread calls
``DecisionBoard.poll``: one query for every waiting step, however many, waking those decided; a
decision recorded in the runner's own process (an exercise's scripted answer) wakes its step at once
(``DecisionBoard.wake``). A decision ends its step at the decision's own time; a run that stops
releases the steps still waiting.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bcm.clock import Clock
from bcm.durations import format_duration
from bcm.engine.actions import StepOutcome
from bcm.engine.plan import PlannedStep
from bcm.errors import AlreadyDecided
from bcm.store import ApprovalRecord, Store

#: How long a person step waits when its runbook gives no timeout.
DEFAULT_PERSON_TIMEOUT = timedelta(days=7)


class DecisionBoard:
    """The person steps of one run that wait, each with the event that wakes it, and their decisions."""

    def __init__(self, store: Store, run_id: str, *, now: Clock, deadline_check_s: float) -> None:
        self.store = store
        self.run_id = run_id
        self.now = now
        self.deadline_check_s = deadline_check_s
        self._waiting: dict[str, threading.Event] = {}
        self._found: dict[str, ApprovalRecord] = {}
        self._stopped: str | None = None  # why waiting steps were released (the run stopped)
        self._lock = threading.Lock()

    def open(self, step_id: str) -> None:
        """A person step starts waiting (released at once when the run has stopped meanwhile)."""
        with self._lock:
            self._waiting[step_id] = threading.Event()
            if self._stopped is not None:
                self._waiting[step_id].set()

    def stop(self, reason: str) -> None:
        """Wake every person step still waiting; each ends cancelled with ``reason``."""
        with self._lock:
            self._stopped = reason
            for event in self._waiting.values():
                event.set()

    def poll(self) -> None:
        """Heartbeat thread: one query for every waiting step; wake those that have a decision."""
        with self._lock:
            if not self._waiting:
                return
        found = self.store.get_approvals(self.run_id)
        with self._lock:
            for step_id, event in self._waiting.items():
                if step_id in found and not event.is_set():
                    self._found[step_id] = found[step_id]
                    event.set()

    def wake(self, decision: ApprovalRecord) -> None:
        """A decision this process has just recorded (an exercise's scripted answer): wake its step now,
        without waiting for the next :meth:`poll`.

        A step not waiting yet reads its decision from the store when it starts to wait.
        """
        with self._lock:
            event = self._waiting.get(decision.step_id)
            if event is not None and not event.is_set():
                self._found[decision.step_id] = decision
                event.set()

    def await_decision(self, planned: PlannedStep, started: datetime, deadline: datetime) -> StepOutcome:
        """Wait (in the executor) until the step's decision is in the store or its deadline passes."""
        step_id = planned.id
        with self._lock:
            event = self._waiting[step_id]
        decision = self.store.get_approval(self.run_id, step_id)
        while decision is None:
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                decision = self._time_out(planned, started, deadline)
                break
            if event.wait(min(remaining, self.deadline_check_s)):
                with self._lock:
                    decision = self._found.get(step_id)
                    stopped = self._stopped if decision is None else None
                if stopped is not None:
                    self._forget_wait(step_id)
                    return StepOutcome("cancelled", reason=stopped, ended_at=self.now())
        self._forget_wait(step_id)
        return decision_outcome(planned, decision, started)

    def _forget_wait(self, step_id: str) -> None:
        with self._lock:
            self._waiting.pop(step_id, None)
            self._found.pop(step_id, None)

    def _time_out(self, planned: PlannedStep, started: datetime, deadline: datetime) -> ApprovalRecord:
        """Record that nobody decided by the deadline (or the decision that just beat it)."""
        try:
            return self.store.record_approval(
                self.run_id,
                planned.id,
                by="nobody",
                decision="timed_out",
                note=None,
                waited_s=(deadline - started).total_seconds(),
                at=deadline,
            )
        except AlreadyDecided:
            found = self.store.get_approval(self.run_id, planned.id)
            assert found is not None
            return found


def decision_outcome(planned: PlannedStep, decision: ApprovalRecord, started: datetime) -> StepOutcome:
    """The step's outcome from its decision, ending when the person decided."""
    step = planned.step
    waited = max(0.0, (decision.at - started).total_seconds())
    if decision.decision == "timed_out":
        return StepOutcome(
            "timed_out",
            output={"approved": None, "by": None, "note": None, "waited_s": waited},
            error=f"no decision from {step.person_role} within "
            f"{format_duration(step.person_timeout or DEFAULT_PERSON_TIMEOUT)}",
            ended_at=decision.at,
        )
    approved = decision.decision != "rejected"
    output = {"approved": approved, "by": decision.by, "note": decision.note, "waited_s": waited}
    if approved:
        return StepOutcome("succeeded", output=output, actor=decision.by, ended_at=decision.at)
    if step.manual is not None:
        why = f": {decision.note}" if decision.note else ""
        return StepOutcome(
            "failed",
            output=output,
            error=f"{decision.by} could not complete it{why}",
            actor=decision.by,
            ended_at=decision.at,
        )
    return StepOutcome("rejected", output=output, actor=decision.by, ended_at=decision.at)
