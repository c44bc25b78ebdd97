"""The generic runbook flow: a thin Prefect adapter around :class:`bcm.engine.runner.Runner`.

Each automated step is a Prefect task (retries and retry delay from the step; never cached: steps
have side effects); approve and manual steps pause the flow run with a typed input, resumed by
``bcm approve`` (or a Slack button) from any process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.futures import PrefectFuture, as_completed
from prefect.input import RunInput
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Failed, Running

from bcm.comms import make_notifier
from bcm.config import load_settings
from bcm.engine.actions import StepOutcome
from bcm.engine.runner import Decision, Runner, RunRequest, StepFuture, start_run
from bcm.spec import InputError, load_one
from bcm.spec.models import Step
from bcm.spec.params import resolve_parameters
from bcm.store import RunNotFound, Store
from flows.publish import publish_run_results

#: How often a paused run looks for a decision, in seconds (BCM_APPROVAL_POLL_S overrides).
POLL_INTERVAL_S = 1


class DecisionInput(RunInput):
    """What a person sends to resume an approve or manual step."""

    approved: bool
    by: str
    note: str | None = None


class StepAttemptFailed(Exception):
    """Raised by a step's task so Prefect retries it; carries the attempt's outcome."""

    def __init__(self, outcome: StepOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.error or outcome.status)


@task(cache_policy=NO_CACHE, persist_result=False)
def run_step(step_id: str, attempt: Callable[[], StepOutcome]) -> StepOutcome:
    """One attempt at one step; a failed attempt raises so Prefect applies the step's retries."""
    outcome = attempt()
    if not outcome.ok:
        raise StepAttemptFailed(outcome)
    return outcome


class _Future:
    def __init__(self, future: PrefectFuture[StepOutcome]) -> None:
        self.future = future

    def outcome(self) -> StepOutcome:
        try:
            return self.future.result()
        except StepAttemptFailed as exc:
            return exc.outcome
        except Exception as exc:  # a crash in the task machinery is the step's failure, not the run's
            return StepOutcome("failed", error=f"{type(exc).__name__}: {exc}")


class PrefectExecutor:
    """Runs steps as Prefect tasks and waits for people by pausing the flow run."""

    def __init__(self, *, poll_interval_s: int = POLL_INTERVAL_S) -> None:
        self.poll_interval_s = poll_interval_s

    def submit(self, step: Step, attempt: Callable[[], StepOutcome]) -> _Future:
        configured = run_step.with_options(
            name=f"step:{step.id}",
            task_run_name=step.id,
            retries=step.retries,
            retry_delay_seconds=step.retry_delay.total_seconds(),
        )
        return _Future(configured.submit(step.id, attempt))

    def wait_any(self, futures: Sequence[StepFuture]) -> StepFuture:
        by_id = {f.future.task_run_id: f for f in futures if isinstance(f, _Future)}
        for finished in as_completed([f.future for f in by_id.values()]):
            return by_id[finished.task_run_id]
        raise RuntimeError("wait_any called with no futures")

    def wait_for_person(self, step: Step, *, timeout_s: float) -> Decision | None:
        try:
            answer = pause_flow_run(
                wait_for_input=DecisionInput,
                timeout=max(1, int(timeout_s)),
                poll_interval=self.poll_interval_s,
                key=f"{step.id}-{uuid.uuid4().hex[:6]}",
            )
        except FlowPauseTimeout:
            # The flow run stays Paused after a timeout; put it back to Running to go on.
            context = FlowRunContext.get()
            assert context is not None and context.flow_run is not None
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(context.flow_run.id, Running(), force=True)
            return None
        return Decision(approved=answer.approved, by=answer.by, note=answer.note)


def _flow_run_name() -> str:
    params = current_flow_run.parameters
    run_id = params.get("run_id") or str(current_flow_run.id).replace("-", "")
    runbook = str(params.get("runbook"))
    if runbook.endswith((".yaml", ".yml")):
        runbook = Path(runbook).stem  # library files are named after their runbook id
    return f"{runbook}/{params.get('mode', 'real')}/{run_id[:8]}"


@flow(name="run-runbook", flow_run_name=_flow_run_name, persist_result=False, log_prints=True)
def run_runbook(
    runbook: str,
    parameters: dict[str, Any] | None = None,
    mode: str = "real",
    triggered_by: str = "prefect",
    auto_approve: bool = False,
    run_id: str | None = None,
    resume: bool = False,
) -> State[Any] | dict[str, Any]:
    """Run (or resume) a runbook from the library.

    Args:
        runbook: a runbook id from the library (BCM_RUNBOOKS) or a path to a YAML file.
        parameters: trigger-time parameters, checked against the runbook's declared types.
        mode: ``real`` or ``exercise``.
        triggered_by: who started it.
        auto_approve: approve every approve/manual step automatically (exercise mode only).
        run_id: the bcm run id to use (default: derived from the flow run id).
        resume: continue the run ``run_id``; finished steps are not repeated.

    Returns:
        ``{"run_id", "status"}``, or a Failed state when the run failed.
    """
    settings = load_settings()
    loaded, catalog = load_one(runbook, library_root=settings.runbooks)
    if auto_approve and mode != "exercise":
        raise InputError("--auto-approve is only for exercise mode")
    flow_run_id = str(current_flow_run.id)
    with Store.open(settings.database_url) as store:
        if resume:
            if not run_id:
                raise InputError("resume needs the run id")
            record = store.get_run(run_id)
            if record.runbook_hash != loaded.sha256:
                raise InputError(
                    f"runbook {loaded.runbook.id} changed since run {record.short_id} started; "
                    "resuming would mix two versions of the plan: start a new run instead"
                )
            request = RunRequest(
                loaded=loaded,
                catalog=catalog,
                params=dict(record.parameters),
                mode=record.mode,
                triggered_by=record.triggered_by,
                auto_approve=auto_approve,
                run_id=record.id,
            )
        else:
            values, problems = resolve_parameters(loaded.runbook, {k: v for k, v in (parameters or {}).items()})
            if problems:
                raise InputError("; ".join(problems))
            request = RunRequest(
                loaded=loaded,
                catalog=catalog,
                params=values,
                mode=mode,
                triggered_by=triggered_by,
                auto_approve=auto_approve,
                run_id=run_id or flow_run_id.replace("-", ""),
            )
            try:
                record = store.get_run(request.run_id or "")
                raise InputError(f"run {record.short_id} exists already: use `bcm resume {record.short_id}`")
            except RunNotFound:
                record = start_run(store, request)
        store.update_run(record.id, flow_run_id=flow_run_id)
        _tag(flow_run_id, loaded.runbook.id, record.mode, loaded.runbook.severity, loaded.runbook.services)
        notifier = make_notifier(settings, store, catalog)
        runner = Runner(record, request, store=store, executor=PrefectExecutor(), notifier=notifier)
        result = runner.execute(resume=resume)
    publish_run_results(result.run_id)
    if result.status == "failed":
        return Failed(message=f"run {result.run_id[:8]} failed at: {', '.join(result.failed_steps) or 'a step'}")
    return {"run_id": result.run_id, "status": result.status}


def _tag(flow_run_id: str, runbook_id: str, mode: str, severity: str, services: Sequence[str]) -> None:
    tags = sorted(
        {f"runbook:{runbook_id}", f"mode:{mode}", f"severity:{severity}", *(f"service:{s}" for s in services)}
    )
    with get_client(sync_client=True) as client:
        client.update_flow_run(uuid.UUID(flow_run_id), tags=tags)


def deliver_decision(
    flow_run_id: str,
    decision: Decision,
    *,
    wait_s: float = 60.0,
    consumed: Callable[[], bool] | None = None,
) -> bool:
    """Resume the paused flow run with a person's decision.

    The run may not have reached its pause yet (the decision can race the pause), so this tries
    for ``wait_s`` seconds. A run that finds the decision in the store before pausing never pauses
    for it: ``consumed`` (e.g. "the step is no longer waiting") tells that apart from a run whose
    process is gone.

    Returns:
        True when the run took the decision; False when the flow run is neither paused nor
        running (its process is gone: ``bcm resume`` continues it with the recorded decision).
    """
    from prefect.exceptions import NotPausedError, ObjectNotFound

    deadline = time.monotonic() + wait_s
    payload = {"approved": decision.approved, "by": decision.by, "note": decision.note}
    while True:
        try:
            resume_flow_run(uuid.UUID(flow_run_id), run_input=payload)
            return True
        except (NotPausedError, FlowPauseTimeout, RuntimeError):
            # Not paused (yet, or any more), or the pause just timed out: see where the run is.
            if consumed is not None and consumed():
                return True
            with get_client(sync_client=True) as client:
                try:
                    state = client.read_flow_run(uuid.UUID(flow_run_id)).state
                except ObjectNotFound:
                    return False
            if state is None or time.monotonic() > deadline:
                return False
            if not (state.is_running() or state.is_pending() or state.is_paused()):
                return False  # finished or crashed: `bcm resume` picks the recorded decision up
            time.sleep(0.5)
