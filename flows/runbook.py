"""The generic runbook flow: a thin Prefect adapter around :class:`bcm.engine.runner.Runner`.

Each step is a Prefect task: automated steps with the step's retries and retry delay (never
cached: steps have side effects), approve and manual steps as tasks that wait for their decision
in the store, so people decide in parallel with each other and with automated work.
"""

from __future__ import annotations

import functools
import os
import queue
import signal
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Crashed, Failed

from bcm.comms import make_notifier
from bcm.config import load_settings
from bcm.engine.actions import StepOutcome
from bcm.engine.liveness import assess
from bcm.engine.runner import Runner, RunRequest, StepFuture, start_run
from bcm.errors import InputError, RunNotFound
from bcm.spec import load_one
from bcm.spec.models import Step
from bcm.spec.params import resolve_parameters
from bcm.store import Store
from flows.publish import publish_run_results

WAIT_SLICE_S = 0.5
"""How long the flow's main thread waits for a step before it looks at signals again."""


class StepAttemptFailed(Exception):
    """Raised by a step's task so Prefect retries it; carries the attempt's outcome."""

    def __init__(self, outcome: StepOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.error or outcome.status)


@task(cache_policy=NO_CACHE, persist_result=False)
def run_step(step_id: str, attempt: Callable[[], StepOutcome], retried: bool = True) -> StepOutcome:
    """One attempt at one step; a failed attempt raises so Prefect applies the step's retries.

    A person step (``retried=False``) returns its outcome, whatever it is: a timeout or a "could
    not do it" is an answer, not a crash, and must not print a traceback in the commander's terminal.
    """
    outcome = attempt()
    if retried and not outcome.ok:
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
    """Runs every step as a Prefect task, people steps included.

    A person step is a task that waits for its decision (see ``bcm.engine.runner``), named after
    the role it waits for: Prefect's UI shows the flow run Running with one task run per step in
    flight, and ``confirm-power (awaiting dc_ops)`` for what people still have to decide. The flow
    run is never paused, so nothing else is held up while someone decides.
    """

    def submit(self, step: Step, attempt: Callable[[], StepOutcome], *, waits_for: str | None = None) -> _Future:
        if waits_for is not None:
            configured = run_step.with_options(
                name=f"person:{step.id}", task_run_name=f"{step.id} (awaiting {waits_for})", retries=0
            )
        else:
            configured = run_step.with_options(
                name=f"step:{step.id}",
                task_run_name=step.id,
                retries=step.retries,
                retry_delay_seconds=step.retry_delay.total_seconds(),
            )
        return _Future(configured.submit(step.id, attempt, retried=waits_for is None))

    def wait_any(self, futures: Sequence[StepFuture]) -> StepFuture:
        """The first of ``futures`` to finish, waiting in short slices.

        A signal can be delivered to any thread; its Python handler (Ctrl-C, SIGTERM: leave now)
        then runs only when the main thread next runs Python code. An unbounded wait here would hold
        it back for as long as a person takes to decide, so the wait wakes every half second.
        """
        pending = [f for f in futures if isinstance(f, _Future)]
        if not pending:
            raise RuntimeError("wait_any called with no futures")
        finished: queue.SimpleQueue[_Future] = queue.SimpleQueue()
        for each in pending:
            each.future.add_done_callback(functools.partial(_put_when_done, finished, each))
        while True:
            try:
                return finished.get(timeout=WAIT_SLICE_S)
            except queue.Empty:
                continue


def _put_when_done(finished: queue.SimpleQueue[_Future], future: _Future, _done: object) -> None:
    finished.put(future)


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
    known_times: dict[str, str] | None = None,
    take_over: bool = False,
    leave_on_signal: bool = False,
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
        known_times: milestones known at trigger (``impact_started``, ``detected``) as ISO 8601
            times with an offset; recorded with source ``trigger``.
        take_over: on resume, go on even when a step's last attempt ran on another host.
        leave_on_signal: (``bcm run``/``bcm resume`` in a terminal) Ctrl-C or SIGTERM ends the
            runner at once, leaving the run resumable, instead of waiting for every step in flight.

    Returns:
        ``{"run_id", "status"}``, or a Failed state when the run failed.
    """
    settings = load_settings()
    loaded, catalog = load_one(runbook, library_root=settings.runbooks)
    if auto_approve and mode != "exercise":
        raise InputError("--auto-approve is only for exercise mode")
    flow_run_id = str(current_flow_run.id)
    logger = get_run_logger()
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
            liveness = assess(record)
            if liveness.state == "alive":
                raise InputError(f"run {record.short_id} is still running (its runner is alive): nothing to resume")
            mark_crashed(record.flow_run_id, record.short_id)
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
                times = {name: datetime.fromisoformat(at) for name, at in (known_times or {}).items()}
                record = start_run(store, request, known_times=times)
        if leave_on_signal:
            leave_on_signals(record.short_id)
        store.update_run(record.id, flow_run_id=flow_run_id)
        tag_flow_run(flow_run_id, loaded.runbook.id, record.mode, loaded.runbook.severity, loaded.runbook.services)
        notifier = make_notifier(settings, store, catalog)
        runner = Runner(
            record, request, store=store, executor=PrefectExecutor(), notifier=notifier, report=logger.warning
        )
        result = runner.execute(resume=resume, take_over=take_over)
    publish_run_results(result.run_id)
    if result.status == "failed":
        return Failed(message=f"run {result.run_id[:8]} failed at: {', '.join(result.failed_steps) or 'a step'}")
    return {"run_id": result.run_id, "status": result.status}


def leave_on_signals(short_id: str) -> None:
    """Ctrl-C or SIGTERM ends this runner now, saying how to go on.

    Everything a run does is in the store as it happens, so leaving at once loses nothing: the run
    shows as interrupted and ``bcm resume`` continues it with its true times. Waiting instead would
    hang: the task runner joins its threads, and a person step may wait for days. Step commands die
    with the runner (PR_SET_PDEATHSIG), the embedded server with its watchdog. Installed in the
    flow (Prefect puts its own SIGTERM handler in place when the flow starts); main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def leave(signum: int, _frame: object) -> None:
        # os.write, not sys.stderr: the handler may interrupt a thread in the middle of a write to
        # stderr, and Python's buffered writer refuses a re-entrant call.
        os.write(
            2,
            f"\ninterrupted: run {short_id} is kept in the store as it was; "
            f"`bcm resume {short_id}` continues it where it stopped\n".encode(),
        )
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)


def mark_crashed(flow_run_id: str | None, short_id: str) -> None:
    """The flow run of a runner that died still says Running in Prefect: say it crashed."""
    if flow_run_id is None:
        return
    with get_client(sync_client=True) as client:
        try:
            state = client.read_flow_run(uuid.UUID(flow_run_id)).state
        except ObjectNotFound:
            return
        if state is not None and not state.is_final():
            message = f"its runner died; run {short_id} was resumed in another flow run"
            client.set_flow_run_state(uuid.UUID(flow_run_id), Crashed(message=message), force=True)


def tag_flow_run(flow_run_id: str, runbook_id: str, mode: str, severity: str, services: Sequence[str]) -> None:
    tags = sorted(
        {f"runbook:{runbook_id}", f"mode:{mode}", f"severity:{severity}", *(f"service:{s}" for s in services)}
    )
    with get_client(sync_client=True) as client:
        client.update_flow_run(uuid.UUID(flow_run_id), tags=tags)
