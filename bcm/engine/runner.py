"""Executing a run: the scheduling loop, step records, approvals, stop and resume.

The loop is Prefect-free: it hands work to an :class:`Executor` (``flows/runbook.py`` provides one
that runs each step as a Prefect task and pauses the flow run for people; tests can use a thread
pool). Everything a run does is written to the store as it happens, so a run whose process dies
can be resumed: finished steps are read back and never repeated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bcm import clock
from bcm.clock import Clock
from bcm.comms.notifier import Notifier
from bcm.engine import machine
from bcm.engine.actions import ActionEnv, StepOutcome, execute, simulate
from bcm.engine.comms import RunComms
from bcm.engine.context import RunContext, RunInfo, StepState
from bcm.engine.plan import Plan, PlannedStep
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.models import Step
from bcm.store import AlreadyDecided, RunRecord, Store
from bcm.templates import TemplateRenderError, evaluate, truthy
from bcm.timelines import runbook_targets

AUTO_APPROVER = "auto-approve (exercise)"


@dataclass(frozen=True)
class Decision:
    """A person's answer to an approve or manual step."""

    approved: bool
    by: str
    note: str | None = None


class StepFuture(Protocol):
    """A step running somewhere."""

    def outcome(self) -> StepOutcome:
        """Block until the step is done and return its outcome."""


class Executor(Protocol):
    """Where steps run and how the run waits for people (Prefect in production)."""

    def submit(self, step: Step, attempt: Callable[[], StepOutcome]) -> StepFuture:
        """Start ``attempt`` for ``step``; retry it as the step says until it succeeds."""

    def wait_any(self, futures: Sequence[StepFuture]) -> StepFuture:
        """Block until one of ``futures`` is done and return it."""

    def wait_for_person(self, step: Step, *, timeout_s: float) -> Decision | None:
        """Block until a person decides on ``step``; None when ``timeout_s`` passes first."""


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


def start_run(store: Store, request: RunRequest, *, now: Clock = clock.now) -> RunRecord:
    """Record a new run in the store (status running) and return it."""
    rb = request.loaded.runbook
    return store.create_run(
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


class Runner:
    """Runs one run of a runbook to its end (or until it must wait and its process dies)."""

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
    ) -> None:
        self.record = run
        self.request = request
        self.store = store
        self.executor = executor
        self.notifier = notifier
        self.now = now
        self.plan = Plan.build(request.loaded.runbook)
        self.ctx = RunContext(
            loaded=request.loaded,
            catalog=request.catalog,
            run=RunInfo(id=run.id, mode=run.mode, started_at=run.started_at, triggered_by=run.triggered_by),
            params=dict(run.parameters),
            steps={p.id: StepState() for p in self.plan.steps},
        )
        self.comms = RunComms(self.ctx, self.plan, notifier, now=now)
        self.env = ActionEnv(notifier=notifier, announce=self.comms.notify)
        if sleep is not None:
            self.env.sleep = sleep
        self._status = run.status

    # ------------------------------------------------------------------ records

    def _set_run_status(self, status: str, *, error: str | None = None, ended: bool = False) -> None:
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
        note = fields.get("error") or fields.get("reason") or (f"by {fields['actor']}" if fields.get("actor") else None)
        attempts = record.attempts if record else 0
        self.comms.step_changed(planned.id, status, attempts=attempts, took=took, note=note)

    def _finish(self, planned: PlannedStep, outcome: StepOutcome, attempts: int | None = None) -> None:
        ended = self.now()
        if planned.step.marks and outcome.status == "succeeded":
            self.comms.milestone(planned.step.marks, ended)
        self._set_step(
            planned,
            outcome.status,
            ended_at=ended,
            output=outcome.output,
            error=outcome.error,
            reason=outcome.reason,
            actor=outcome.actor,
            attempts=attempts,
        )
        if planned.step.marks and outcome.status == "succeeded":
            self.store.add_mark(self.record.id, planned.step.marks, ended, f"step:{planned.id}")

    # ------------------------------------------------------------------ loop

    def _restore(self) -> None:
        """On resume: read back what finished; steps that did not finish will run again."""
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

    def execute(self, *, resume: bool = False) -> RunResult:
        """Run every step that has not finished; return how the run ended."""
        if resume:
            self._restore()
            if self._status != "running":
                self._set_run_status("running")
            for mark in self.store.get_marks(self.record.id):
                self.comms.milestone(mark.milestone, mark.at)
        self.comms.open()
        self.comms.start_watch()
        try:
            return self._loop()
        finally:
            self.comms.stop_watch()

    def _loop(self) -> RunResult:
        futures: dict[int, tuple[StepFuture, PlannedStep]] = {}
        done = {p.id for p in self.plan.steps if self._is_done(p)}
        stopped_by: str | None = None
        while True:
            if stopped_by is None:
                started = {p.id for _, p in futures.values()}
                waiting_people: list[PlannedStep] = []
                skipped = False
                for planned in self.plan.ready(done=done, started=started):
                    if self._maybe_skip(planned):
                        done.add(planned.id)
                        skipped = True
                    elif planned.needs_person:
                        waiting_people.append(planned)
                    else:
                        future = self._submit(planned)
                        futures[id(future)] = (future, planned)
                if skipped:
                    continue  # a skip may make more steps ready
                if waiting_people and not futures:
                    # People decide one at a time with nothing else in flight: a pause holds the flow.
                    planned = waiting_people[0]
                    self._finish(planned, self._ask_person(planned))
                    if self._is_done(planned):
                        done.add(planned.id)
                    else:
                        stopped_by = planned.id
                    continue
            if not futures:
                break
            future = self.executor.wait_any([f for f, _ in futures.values()])
            _, planned = futures.pop(id(future))
            outcome = future.outcome()
            self._finish(planned, outcome)
            if self._is_done(planned):
                done.add(planned.id)
            elif stopped_by is None:
                stopped_by = planned.id
        return self._conclude(stopped_by, done)

    def _conclude(self, stopped_by: str | None, done: set[str]) -> RunResult:
        failed = tuple(p.id for p in self.plan.steps if self._step_status(p.id) in machine.FAILURES)
        for planned in self.plan.steps:
            if planned.id not in done and self._step_status(planned.id) not in machine.FAILURES:
                reason = f"not run: the run stopped after step '{stopped_by}' failed" if stopped_by else "not run"
                self._set_step(planned, "cancelled", reason=reason)
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

    # ------------------------------------------------------------------ steps

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

    def _submit(self, planned: PlannedStep) -> StepFuture:
        step = planned.step
        previous = self.store.get_step(self.record.id, planned.id)
        attempts = [previous.attempts if previous else 0]
        self._set_step(planned, "running", started_at=self.now(), attempts=attempts[0])
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

    def _ask_person(self, planned: PlannedStep) -> StepOutcome:
        step = planned.step
        role = step.person_role or ""
        started = self.now()
        self.store.reopen_approval(self.record.id, planned.id)  # a resumed run asks again after a timeout
        existing = self.store.get_approval(self.record.id, planned.id)
        if existing is None and self.request.auto_approve and self.ctx.exercise:
            existing = self.store.record_approval(
                self.record.id,
                planned.id,
                by=AUTO_APPROVER,
                decision="approved" if step.approve else "done",
                note=None,
                waited_s=0.0,
                at=started,
            )
        if existing is not None:
            self._set_step(planned, "waiting", started_at=started)
            return self._decided(
                planned, Decision(existing.decision != "rejected", existing.by, existing.note), started
            )
        self._set_step(planned, "waiting", started_at=started)
        self._set_run_status("waiting")
        self.comms.request_decision(step)
        timeout = step.person_timeout
        recorded = self.store.get_approval(self.record.id, planned.id)
        if recorded is not None:
            # Decided between the request going out and the pause: no need to pause at all.
            self._set_run_status("running")
            return self._decided(
                planned, Decision(recorded.decision != "rejected", recorded.by, recorded.note), started
            )
        decision = self.executor.wait_for_person(step, timeout_s=timeout.total_seconds() if timeout else 7 * 86400.0)
        self._set_run_status("running")
        if decision is None:
            try:
                self.store.record_approval(
                    self.record.id,
                    planned.id,
                    by="nobody",
                    decision="timed_out",
                    note=None,
                    waited_s=(self.now() - started).total_seconds(),
                    at=self.now(),
                )
            except AlreadyDecided:
                # Decided in the instant the pause timed out: the decision stands.
                recorded = self.store.get_approval(self.record.id, planned.id)
                assert recorded is not None
                return self._decided(
                    planned, Decision(recorded.decision != "rejected", recorded.by, recorded.note), started
                )
            waited = (self.now() - started).total_seconds()
            self.comms.decided(step, decision="timed out", by="nobody", note=None)
            return StepOutcome(
                "timed_out",
                output={"approved": None, "by": None, "note": None, "waited_s": waited},
                error=f"no decision from {role} within {timeout}",
            )
        return self._decided(planned, decision, started)

    def _decided(self, planned: PlannedStep, decision: Decision, started: datetime) -> StepOutcome:
        recorded = self.store.get_approval(self.record.id, planned.id)
        waited = recorded.waited_s if recorded else (self.now() - started).total_seconds()
        if recorded is not None and recorded.by != AUTO_APPROVER:
            self.comms.decided(planned.step, decision=recorded.decision, by=recorded.by, note=recorded.note)
        output = {"approved": decision.approved, "by": decision.by, "note": decision.note, "waited_s": waited}
        if planned.step.manual is not None and not decision.approved:
            return StepOutcome("failed", output=output, error=f"{decision.by} could not complete it", actor=decision.by)
        return StepOutcome("succeeded", output=output, actor=decision.by)
