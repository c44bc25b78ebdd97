"""Executing a run: the scheduling loop, step records, stop and resume (people: ``bcm.engine.people``).

The loop is Prefect-free: it hands work to an :class:`Executor` (``flows/runbook.py`` provides one
that runs each step as a Prefect task; tests can use a thread pool). Everything a run does is
written to the store as it happens, so a run whose process dies can be resumed: finished steps are
read back and never repeated, and times keep what really happened.

People steps (``approve``, ``manual``) are work like any other: each waits on its own, in a task of
its own, for its decision to appear in the store (``bcm approve`` and the Slack buttons write it
there), with its own deadline. So the comms lead, the operations lead and the commander decide in
parallel, and automated steps go on meanwhile. One heartbeat thread per run looks for decisions
for every waiting step in one query and wakes the step concerned. A step's end and its milestone
are the **decision's** time, not the time the runner noticed: a decision taken while the runner
was dead keeps its true time when the run is resumed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bcm import clock
from bcm.clock import Clock
from bcm.comms.notifier import Notifier
from bcm.engine import machine
from bcm.engine.actions import StepOutcome, action_env, execute, simulate
from bcm.engine.comms import RunComms
from bcm.engine.context import RunContext, RunInfo, StepState
from bcm.engine.liveness import Heartbeat, stop_leftover_attempts
from bcm.engine.people import DEFAULT_PERSON_TIMEOUT, DecisionBoard
from bcm.engine.plan import Plan, PlannedStep
from bcm.engine.processes import process_id
from bcm.errors import AlreadyDecided, TemplateRenderError
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.models import Step
from bcm.spec.targets import runbook_targets
from bcm.store import RunRecord, Store
from bcm.templates import evaluate, truthy

AUTO_APPROVER = "auto-approve (exercise)"
#: How often a run looks in the store for decisions on its waiting steps, in seconds.
DECISION_POLL_S = 0.25
#: A waiting step reads the clock for its deadline at least this often, in seconds.
DEADLINE_CHECK_S = 1.0


class StepFuture(Protocol):
    """A step running somewhere."""

    def outcome(self) -> StepOutcome:
        """Block until the step is done and return its outcome."""


class Executor(Protocol):
    """Where steps run (Prefect tasks in production, a thread pool in tests)."""

    def submit(self, step: Step, attempt: Callable[[], StepOutcome], *, waits_for: str | None = None) -> StepFuture:
        """Start ``attempt`` for ``step``; retry it as the step says until it succeeds.

        ``waits_for`` is the role a person step waits for (the attempt then only waits: no
        retries); executors use it to say what the run is waiting on.
        """

    def wait_any(self, futures: Sequence[StepFuture]) -> StepFuture:
        """Block until one of ``futures`` is done and return it."""


@dataclass(frozen=True)
class RunRequest:
    """What to run: a validated runbook, typed parameters and how."""

    loaded: LoadedRunbook
    catalog: Catalog
    params: dict[str, object]
    mode: str = "real"
    triggered_by: str = "unknown"
    auto_approve: bool = False
    run_id: str | None = None


@dataclass(frozen=True)
class RunResult:
    """How a run ended."""

    run_id: str
    status: str
    failed_steps: tuple[str, ...]


def new_run_id() -> str:
    """A new run id (32 hex characters; people use the first 8)."""
    return uuid.uuid4().hex


def start_run(
    store: Store,
    request: RunRequest,
    *,
    known_times: dict[str, datetime] | None = None,
    now: Clock = clock.now,
) -> RunRecord:
    """Record a new run in the store (status running) and return it.

    Args:
        known_times: milestones known when the run is triggered (``impact_started``,
            ``detected``), recorded with source ``trigger``.
    """
    rb = request.loaded.runbook
    record = store.create_run(
        run_id=request.run_id or new_run_id(),
        runbook_id=rb.id,
        runbook_title=rb.title,
        runbook_hash=request.loaded.sha256,
        runbook_path=str(request.loaded.path),
        mode=request.mode,
        parameters=dict(request.params),
        triggered_by=request.triggered_by,
        services=list(rb.services),
        severity=rb.severity,
        started_at=now(),
        targets=runbook_targets(request.loaded, request.catalog),
    )
    for milestone, at in sorted((known_times or {}).items(), key=lambda item: item[1]):
        store.add_mark(record.id, milestone, at, "trigger", note=f"given by {request.triggered_by} at trigger")
    return record


class Runner:
    """Runs one run of a runbook to its end (or until its process dies: then ``bcm resume``)."""

    def __init__(
        self,
        run: RunRecord,
        request: RunRequest,
        *,
        store: Store,
        executor: Executor,
        notifier: Notifier,
        now: Clock = clock.now,
        sleep: Callable[[float], None] | None = None,
        report: Callable[[str], None] = lambda _: None,
        poll_s: float = DECISION_POLL_S,
        deadline_check_s: float = DEADLINE_CHECK_S,
    ) -> None:
        """Prepare the run (nothing is written until :meth:`execute`).

        Args:
            sleep: how wait steps wait (default: really).
            report: where to say what a resume found left running.
            poll_s: how often to look in the store for decisions on waiting steps.
            deadline_check_s: how often, at least, a waiting step reads ``now`` for its deadline
                (tests that move their clock by hand pass a small value).
        """
        self.record = run
        self.request = request
        self.store = store
        self.executor = executor
        self.notifier = notifier
        self.now = now
        self.report = report
        self.poll_s = poll_s
        self.deadline_check_s = deadline_check_s
        self.plan = Plan.build(request.loaded.runbook)
        self.ctx = RunContext(
            loaded=request.loaded,
            catalog=request.catalog,
            run=RunInfo(id=run.id, mode=run.mode, started_at=run.started_at, triggered_by=run.triggered_by),
            params=dict(run.parameters),
            steps={p.id: StepState() for p in self.plan.steps},
        )
        self.comms = RunComms(self.ctx, self.plan, notifier, now=now)
        self.env = action_env(notifier, self.ctx, message=self.comms.notify, started_process=self._started_process)
        self.env.elapsed = self._elapsed
        if sleep is not None:
            self.env.sleep = sleep
        self._status = run.status
        self._board = DecisionBoard(store, run.id, now=now, deadline_check_s=deadline_check_s)
        self._stop_reason: str | None = None

    @property
    def decisions(self) -> DecisionBoard:
        """Where the run's person steps wait for their decisions (``wake`` one at once)."""
        return self._board

    def stop(self, reason: str) -> None:
        """End the run early, from any thread (``bcm exercise end``): no further step starts, the person
        steps that wait are released, automated steps in flight finish, and the run ends ``cancelled``
        with every step left over cancelled with ``reason``."""
        self._stop_reason = reason
        self._board.stop(reason)

    # ------------------------------------------------------------------ records

    def _set_run_status(self, status: str, *, error: str | None = None, ended: bool = False) -> None:
        if status == self._status and error is None and not ended:
            return
        machine.check_run(self.record.id, self._status, status)
        self.store.update_run(self.record.id, status=status, error=error, ended_at=self.now() if ended else None)
        self._status = status
        self.comms.set_status(status)

    def _step_status(self, step_id: str) -> str:
        return self.ctx.steps[step_id].status

    def _set_step(self, planned: PlannedStep, status: str, **fields: Any) -> None:
        machine.check_step(planned.id, self._step_status(planned.id), status)
        self.store.upsert_step(
            self.record.id, planned.id, phase=planned.phase, kind=planned.step.kind, status=status, **fields
        )
        self.ctx.steps[planned.id].status = status
        if "output" in fields:
            self.ctx.steps[planned.id].output = fields["output"]
        if status == "cancelled":
            return  # the final board shows them; a thread line each would only be noise
        record = self.store.get_step(self.record.id, planned.id)
        took = record.duration.total_seconds() if record and record.duration is not None else None
        note = fields.get("error") or fields.get("reason") or _actor_note(fields.get("actor"), fields.get("output"))
        attempts = record.attempts if record else 0
        self.comms.step_changed(planned.id, status, attempts=attempts, took=took, note=note)

    def _finish(self, planned: PlannedStep, outcome: StepOutcome) -> None:
        ended = outcome.ended_at or self.now()
        marked = planned.step.marks and outcome.status in machine.MARKS_MILESTONE
        if marked:
            assert planned.step.marks is not None
            self.comms.milestone(planned.step.marks, ended)
        self._set_step(
            planned,
            outcome.status,
            ended_at=ended,
            output=outcome.output,
            error=outcome.error,
            reason=outcome.reason,
            actor=outcome.actor,
        )
        if marked:
            assert planned.step.marks is not None
            self.store.add_mark(self.record.id, planned.step.marks, ended, f"step:{planned.id}")
        # After the store: telling Slack must never delay the run recording what happened.
        if planned.needs_person and outcome.actor != AUTO_APPROVER and outcome.status != "cancelled":
            self._tell_decided(planned.step, outcome)

    def _tell_decided(self, step: Step, outcome: StepOutcome) -> None:
        """Edit the step's request to say who decided what (button or ``bcm approve`` alike)."""
        output = outcome.output if isinstance(outcome.output, dict) else {}
        if outcome.status == "timed_out":
            self.comms.decided(step, decision="timed out", by="nobody", note=None, at=outcome.ended_at)
            return
        decision = ("approved" if step.approve else "done") if output.get("approved") else "rejected"
        self.comms.decided(
            step, decision=decision, by=outcome.actor or "", note=output.get("note"), at=outcome.ended_at
        )

    def _elapsed(self, step: Step) -> float:
        """Seconds since the step's recorded start (kept across a resume)."""
        record = self.store.get_step(self.record.id, step.id)
        if record is None or record.started_at is None:
            return 0.0
        return max(0.0, (self.now() - record.started_at).total_seconds())

    def _started_process(self, step: Step, pid: int) -> None:
        planned = self.plan.get(step.id)
        self.store.upsert_step(
            self.record.id, step.id, phase=planned.phase, kind=step.kind, status="running", process=str(process_id(pid))
        )

    # ------------------------------------------------------------------ loop

    def _restore(self) -> None:
        """On resume: read back where every step was."""
        for record in self.store.get_steps(self.record.id):
            if record.step_id in self.ctx.steps:
                self.ctx.steps[record.step_id] = StepState(status=record.status, output=record.output)

    def _is_done(self, planned: PlannedStep) -> bool:
        status = self._step_status(planned.id)
        if status in machine.DONE_OK:
            return True
        if status in machine.FAILURES:
            return self._failure_tolerated(planned, status)
        return False

    def _failure_tolerated(self, planned: PlannedStep, status: str) -> bool:
        step = planned.step
        if status == "timed_out" and step.approve is not None and step.approve.on_timeout == "continue":
            return True
        return step.on_failure == "continue"

    def execute(self, *, resume: bool = False, take_over: bool = False) -> RunResult:
        """Run every step that has not finished; return how the run ended.

        Args:
            resume: continue a run that was interrupted or failed; finished steps are kept.
            take_over: on resume, do not refuse when a step's last attempt ran on another host.
        """
        self.store.claim_runner(self.record.id, runner=str(process_id()), at=self.now())
        if resume:
            stop_leftover_attempts(self.store, self.record.id, take_over=take_over, report=self.report)
            self._restore()
            self.store.update_run(self.record.id, clear_error=True)
            if self._status not in ("running", "waiting"):
                self._set_run_status("running")
            for mark in self.store.get_marks(self.record.id):
                self.comms.milestone(mark.milestone, mark.at)
        self.comms.open()
        self.comms.start_watch()
        try:
            with Heartbeat(self.store, self.record.id, poll=self._board.poll, poll_s=self.poll_s, now=self.now):
                return self._loop()
        finally:
            self.comms.stop_watch()

    def _loop(self) -> RunResult:
        futures: dict[int, tuple[StepFuture, PlannedStep]] = {}
        done = {p.id for p in self.plan.steps if self._is_done(p)}
        stopped_by: str | None = None
        while True:
            if stopped_by is None and self._stop_reason is None:
                started = {p.id for _, p in futures.values()}
                skipped = False
                for planned in self.plan.ready(done=done, started=started):
                    if self._maybe_skip(planned):
                        done.add(planned.id)
                        skipped = True
                        continue
                    future = self._start_person(planned) if planned.needs_person else self._submit(planned)
                    futures[id(future)] = (future, planned)
                if skipped:
                    continue  # a skip may make more steps ready
            if not futures:
                break
            in_flight = [p for _, p in futures.values()]
            self._set_run_status("waiting" if all(p.needs_person for p in in_flight) else "running")
            future = self.executor.wait_any([f for f, _ in futures.values()])
            _, planned = futures.pop(id(future))
            self._finish(planned, future.outcome())
            if self._is_done(planned):
                done.add(planned.id)
            elif stopped_by is None and self._stop_reason is None:
                stopped_by = planned.id
                # Nobody should go on deciding for a run that has stopped: release the waits now.
                self._board.stop(f"not needed: the run stopped after step '{stopped_by}' failed")
        return self._conclude(stopped_by, done)

    def _conclude(self, stopped_by: str | None, done: set[str]) -> RunResult:
        failed = tuple(p.id for p in self.plan.steps if self._step_status(p.id) in machine.FAILURES)
        if self._stop_reason is not None:
            reason = self._stop_reason
        else:
            reason = f"not run: the run stopped after step '{stopped_by}' failed" if stopped_by else "not run"
        for planned in self.plan.steps:
            if planned.id not in done and self._step_status(planned.id) not in machine.FAILURES:
                self._set_step(planned, "cancelled", reason=reason)
        if self._stop_reason is not None:
            self._set_run_status("cancelled", error=reason, ended=True)
            self.comms.finished("cancelled", reason)
            return RunResult(self.record.id, "cancelled", failed)
        if stopped_by is not None:
            step = self.plan.get(stopped_by)
            error = self.store.get_step(self.record.id, stopped_by)
            detail = error.error if error and error.error else self._step_status(stopped_by)
            error_text = f"step '{step.id}' {detail}"
            self._set_run_status("failed", error=error_text, ended=True)
            self.comms.finished("failed", error_text)
            return RunResult(self.record.id, "failed", failed)
        self._set_run_status("succeeded", ended=True)
        self.comms.finished("succeeded", None)
        return RunResult(self.record.id, "succeeded", failed)

    # ------------------------------------------------------------------ automated steps

    def _maybe_skip(self, planned: PlannedStep) -> bool:
        step = planned.step
        reason: str | None = None
        if self.ctx.exercise and step.exercise_behaviour == "skip":
            reason = "exercise: skip"
        elif step.when is not None:
            try:
                if not truthy(evaluate(step.when, self.ctx.template_context())):
                    reason = f"when {step.when} was false"
            except TemplateRenderError as exc:
                reason = f"when could not be evaluated: {exc.reason}"
        if reason is None:
            return False
        now = self.now()
        self._set_step(planned, "skipped", started_at=now, ended_at=now, reason=reason)
        return True

    def _begin(self, planned: PlannedStep, status: str) -> tuple[datetime, int]:
        """Record that a step starts (or, on resume, goes on): returns when it really started and
        how many attempts it has had.

        A step the runner was in the middle of when it died keeps its start time; a step that
        failed and runs again starts afresh, without the old error (its attempts go on counting).
        """
        previous = self.store.get_step(self.record.id, planned.id)
        attempts = previous.attempts if previous is not None else 0
        if previous is not None and previous.status == status and previous.started_at is not None:
            return previous.started_at, attempts
        started = self.now()
        self._set_step(planned, status, started_at=started, fresh=True)
        return started, attempts

    def _submit(self, planned: PlannedStep) -> StepFuture:
        step = planned.step
        attempts = [self._begin(planned, "running")[1]]
        simulated = self.ctx.exercise and step.exercise_behaviour == "simulate"

        def attempt() -> StepOutcome:
            attempts[0] += 1
            self.store.upsert_step(
                self.record.id, planned.id, phase=planned.phase, kind=step.kind, status="running", attempts=attempts[0]
            )
            if simulated:
                return simulate(step, self.ctx)
            return execute(step, self.ctx, env=self.env)

        return self.executor.submit(step, attempt)

    # ------------------------------------------------------------------ people

    def _start_person(self, planned: PlannedStep) -> StepFuture:
        """Ask the step's role and hand the wait to the executor: the loop goes on meanwhile."""
        step = planned.step
        if self._step_status(planned.id) in machine.FAILURES:
            self.store.reopen_approval(self.record.id, planned.id)  # a resumed run asks again after a timeout
        started, _ = self._begin(planned, "waiting")
        deadline = started + (step.person_timeout or DEFAULT_PERSON_TIMEOUT)
        if self.request.auto_approve and self.ctx.exercise:
            # A decision taken before the run was resumed stands.
            with contextlib.suppress(AlreadyDecided):
                self.store.record_approval(
                    self.record.id,
                    planned.id,
                    by=AUTO_APPROVER,
                    decision="approved" if step.approve else "done",
                    note=None,
                    waited_s=0.0,
                    at=started,
                )
        if self.store.get_approval(self.record.id, planned.id) is None:
            self.comms.request_decision(step)
        self._board.open(planned.id)
        return self.executor.submit(
            step, lambda: self._board.await_decision(planned, started, deadline), waits_for=step.person_role
        )


def _actor_note(actor: object, output: object) -> str | None:
    """``by NAME`` (and the person's note) for the board and thread."""
    if not actor:
        return None
    note = output.get("note") if isinstance(output, dict) else None
    return f"by {actor}" + (f": {note}" if note else "")
