"""Run a runbook in this process, without Prefect: an executor on threads and a clock moved by hand.

In production each step is a Prefect task (``flows/runbook.py``: ``PrefectExecutor``). The engine
only needs an :class:`~bcm.engine.runner.Executor`, so, like ``httpx.MockTransport`` stands in for
the network, :class:`InProcessExecutor` stands in for Prefect: every step runs on a thread of its
own (people steps wait on theirs while automated work goes on), an automated step is tried again as
its ``retries`` and ``retry_delay`` say, and the delay is waited through an injectable ``sleep``.
Everything else is the real engine: the :class:`~bcm.engine.runner.Runner`, the store, templates,
commands. It is for bcm's own engine tests and for yours (a runbook library's CI, say)::

    from bcm.spec import load_one
    from bcm.store import Store
    from bcm.testing import run_in_process

    loaded, catalog = load_one("runbooks/dc-power-loss.yaml", library_root=Path("runbooks"))
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        result = run_in_process(
            loaded, catalog, {"site": "lon-dc1"}, store=store, mode="exercise", auto_approve=True,
            sleep=lambda seconds: None,  # wait steps and retry delays take no time
        )
        assert result.status == "succeeded"

A person deciding while the run waits, with every recorded time exact (:class:`ManualClock`)::

    clock = ManualClock()
    run = start_in_process(loaded, catalog, {"site": "lon-dc1"}, store=store, now=clock)
    run.wait_for_step("failover", "waiting")
    clock.advance(30)
    decide(store, run.run_id, "failover", who="Ada Lovelace", approve=True, note=None,
           library_root=Path("runbooks"), now=clock)
    assert run.result().status == "succeeded"
    assert store.get_step(run.run_id, "failover").output["waited_s"] == 30.0

What it does not do: Prefect's part (flow and task runs, their names, tags and states) and what
``bcm run`` and ``bcm resume`` check around the engine (a runbook changed since the run started, a
runner still alive). The clock stamps what the run records and sets people's deadlines; a
command's or HTTP call's ``timeout`` is still real seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import UTC, datetime, timedelta
from typing import Any

from bcm import clock as bcm_clock
from bcm.clock import Clock, as_utc
from bcm.comms.notifier import Notifier, RecordingNotifier
from bcm.engine.actions import StepOutcome
from bcm.engine.runner import Runner, RunRequest, RunResult, StepFuture, start_run
from bcm.errors import InputError
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.models import Step
from bcm.spec.params import resolve_parameters
from bcm.store import RunRecord, StepRecord, Store

#: Where a :class:`ManualClock` starts unless told otherwise (a Monday morning, UTC).
DEFAULT_START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
#: How often an in-process run looks for decisions and reads the clock for people's deadlines, in
#: seconds: small, so a decision or a moved clock is taken within milliseconds.
POLL_S = 0.01


class ManualClock:
    """A clock that stands still until it is moved: pass it as ``now=`` and every time is exact.

    Thread-safe; call it like :func:`bcm.clock.now`.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._at = as_utc(start)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The current (manual) time."""
        with self._lock:
            return self._at

    def advance(self, by: float | timedelta) -> datetime:
        """Move the clock forward by ``by`` (seconds or a timedelta) and return the new time."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError(f"a clock only moves forward, not by {step}")
        with self._lock:
            self._at += step
            return self._at


class InProcessFuture:
    """A step running on a thread of an :class:`InProcessExecutor`."""

    def __init__(self, step_id: str, future: Future[StepOutcome]) -> None:
        self.step_id = step_id
        self._future = future

    def outcome(self) -> StepOutcome:
        """Block until the step is done and return its (last attempt's) outcome."""
        return self._future.result()

    def done(self) -> bool:
        """True once the step is done."""
        return self._future.done()


class InProcessExecutor:
    """The engine's :class:`~bcm.engine.runner.Executor` on threads of this process.

    Each submitted step gets a daemon thread of its own, so every step the plan makes ready runs at
    once, however many people steps are waiting (a bounded pool could starve them), and a test that
    fails half-way never leaves the interpreter waiting for a person who will not come.

    Args:
        sleep: how the wait between two attempts of a step (its ``retry_delay``) is waited.

    Attributes:
        submitted: ``(step id, role waited for or None)`` for every step submitted, in order.
    """

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep
        self.submitted: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def submit(
        self, step: Step, attempt: Callable[[], StepOutcome], *, waits_for: str | None = None
    ) -> InProcessFuture:
        """Start ``attempt`` for ``step`` on a new thread; retry it as the step says until it is ok.

        A person step (``waits_for`` given) is attempted once: its attempt is the wait. An attempt
        that raises is a failed attempt (and retried), as a Prefect task that raises is.
        """
        with self._lock:
            self.submitted.append((step.id, waits_for))
        tries = 1 if waits_for is not None else step.retries + 1
        future: Future[StepOutcome] = Future()
        future.set_running_or_notify_cancel()
        worker = threading.Thread(
            target=self._work,
            args=(future, attempt, tries, step.retry_delay.total_seconds()),
            daemon=True,
            name=f"bcm-step-{step.id}",
        )
        worker.start()
        return InProcessFuture(step.id, future)

    def _work(self, future: Future[StepOutcome], attempt: Callable[[], StepOutcome], tries: int, delay: float) -> None:
        try:
            outcome = _try(attempt)
            for _ in range(tries - 1):
                if outcome.ok:
                    break
                self.sleep(delay)
                outcome = _try(attempt)
        except BaseException as exc:  # handed to the runner's thread by outcome(), not lost in this one
            future.set_exception(exc)
        else:
            future.set_result(outcome)

    def wait_any(self, futures: Sequence[StepFuture]) -> StepFuture:
        """Block until one of ``futures`` is done; of several done, the first in ``futures``."""
        own = [f for f in futures if isinstance(f, InProcessFuture)]
        if len(own) != len(futures):
            raise TypeError("wait_any was given futures of another executor")
        if not own:
            raise RuntimeError("wait_any called with no futures")
        wait([f._future for f in own], return_when=FIRST_COMPLETED)
        return next(f for f in own if f.done())


def _try(attempt: Callable[[], StepOutcome]) -> StepOutcome:
    try:
        return attempt()
    except Exception as exc:  # the same words PrefectExecutor gives a task that crashed
        return StepOutcome("failed", error=f"{type(exc).__name__}: {exc}")


class InProcessRun:
    """A run going on in a thread of this process (see :func:`start_in_process`).

    Attributes:
        run_id: the run's id in the store.
        store: the store the run writes to.
        notifier: where its messages went (a :class:`~bcm.comms.RecordingNotifier` unless given).
        executor: the executor its steps ran on.
    """

    def __init__(self, runner: Runner, executor: InProcessExecutor, *, resume: bool, take_over: bool) -> None:
        self.run_id = runner.record.id
        self.store = runner.store
        self.notifier = runner.notifier
        self.executor = executor
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._execute, args=(runner, resume, take_over), daemon=True, name=f"bcm-run-{self.run_id[:8]}"
        )
        self._thread.start()

    def _execute(self, runner: Runner, resume: bool, take_over: bool) -> None:
        try:
            self._result = runner.execute(resume=resume, take_over=take_over)
        except BaseException as exc:  # re-raised by result() and wait_for_step() in the test's thread
            self._error = exc

    def wait_for_step(self, step_id: str, status: str, *, timeout: float = 10.0) -> StepRecord:
        """Block until step ``step_id`` has ``status`` in the store and return its record.

        Raises:
            TimeoutError: when it does not within ``timeout`` seconds, or the run ended first.
        """
        deadline = time.monotonic() + timeout
        while True:
            ended = not self._thread.is_alive()
            found = self.store.get_step(self.run_id, step_id)
            if found is not None and found.status == status:
                return found
            if self._error is not None:
                raise self._error
            if ended or time.monotonic() > deadline:
                now_status = found.status if found is not None else "not started"
                why = "the run ended" if ended else f"{timeout:g}s passed"
                raise TimeoutError(f"step '{step_id}' of run {self.run_id[:8]} is {now_status}, not {status}: {why}")
            time.sleep(0.005)

    def result(self, *, timeout: float = 30.0) -> RunResult:
        """Block until the run ends and return how it ended (re-raising what stopped the runner).

        Raises:
            TimeoutError: when it has not ended within ``timeout`` seconds.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"run {self.run_id[:8]} still going after {timeout:g}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def start_in_process(
    loaded: LoadedRunbook,
    catalog: Catalog,
    params: Mapping[str, Any],
    *,
    store: Store,
    mode: str = "real",
    auto_approve: bool = False,
    triggered_by: str = "test",
    run_id: str | None = None,
    known_times: dict[str, datetime] | None = None,
    now: Clock = bcm_clock.now,
    sleep: Callable[[float], None] = time.sleep,
    notifier: Notifier | None = None,
    poll_s: float = POLL_S,
) -> InProcessRun:
    """Record a new run of ``loaded`` and start it on a thread; return at once.

    The run is in the store when this returns, so a test can act on it (decide its people steps,
    look at its steps) and then take :meth:`InProcessRun.result`.

    Args:
        params: parameter values, as typed on the command line or already typed; defaults are
            filled in and each is checked against the runbook's declaration.
        mode: ``real`` or ``exercise``.
        auto_approve: approve people steps at once (exercise mode only, as ``bcm run``).
        known_times: milestones known at trigger (``impact_started``, ``detected``).
        now: the clock for everything the run records (see :class:`ManualClock`).
        sleep: how wait steps and the delays between retries wait.
        notifier: where messages go (default: kept in memory, see ``InProcessRun.notifier``).
        poll_s: how often the run looks for decisions and reads ``now`` for people's deadlines.

    Raises:
        InputError: a parameter is missing, unknown or mistyped (every one named), or
            ``auto_approve`` outside exercise mode.
    """
    values, problems = resolve_parameters(loaded.runbook, dict(params))
    if auto_approve and mode != "exercise":
        problems.append("auto_approve is only for exercise mode")
    if problems:
        raise InputError("; ".join(problems))
    request = RunRequest(
        loaded=loaded,
        catalog=catalog,
        params=values,
        mode=mode,
        triggered_by=triggered_by,
        auto_approve=auto_approve,
        run_id=run_id,
    )
    record = start_run(store, request, known_times=known_times, now=now)
    executor = InProcessExecutor(sleep=sleep)
    runner = _runner(record, request, store, executor, now=now, sleep=sleep, notifier=notifier, poll_s=poll_s)
    return InProcessRun(runner, executor, resume=False, take_over=False)


def run_in_process(
    loaded: LoadedRunbook,
    catalog: Catalog,
    params: Mapping[str, Any],
    *,
    store: Store,
    mode: str = "real",
    auto_approve: bool = False,
    triggered_by: str = "test",
    run_id: str | None = None,
    known_times: dict[str, datetime] | None = None,
    now: Clock = bcm_clock.now,
    sleep: Callable[[float], None] = time.sleep,
    notifier: Notifier | None = None,
    poll_s: float = POLL_S,
    timeout: float = 60.0,
) -> RunResult:
    """Run ``loaded`` to its end in this process and return how it ended.

    The arguments are those of :func:`start_in_process`; ``timeout`` is how long to wait for the
    end (a run waiting for a person nobody plays would otherwise wait out the step's timeout).
    """
    run = start_in_process(
        loaded,
        catalog,
        params,
        store=store,
        mode=mode,
        auto_approve=auto_approve,
        triggered_by=triggered_by,
        run_id=run_id,
        known_times=known_times,
        now=now,
        sleep=sleep,
        notifier=notifier,
        poll_s=poll_s,
    )
    return run.result(timeout=timeout)


def resume_in_process(
    loaded: LoadedRunbook,
    catalog: Catalog,
    run_id: str,
    *,
    store: Store,
    auto_approve: bool = False,
    take_over: bool = False,
    now: Clock = bcm_clock.now,
    sleep: Callable[[float], None] = time.sleep,
    notifier: Notifier | None = None,
    poll_s: float = POLL_S,
    timeout: float = 60.0,
) -> RunResult:
    """Resume run ``run_id`` of ``loaded`` (as ``bcm resume`` does) to its end: finished steps stay.

    Parameters, mode and who triggered it are the run's own. Unlike ``bcm resume``, it does not
    check that the runbook is unchanged or that the run's runner is gone.
    """
    record = store.get_run(run_id)
    request = RunRequest(
        loaded=loaded,
        catalog=catalog,
        params=dict(record.parameters),
        mode=record.mode,
        triggered_by=record.triggered_by,
        auto_approve=auto_approve,
        run_id=record.id,
    )
    executor = InProcessExecutor(sleep=sleep)
    runner = _runner(record, request, store, executor, now=now, sleep=sleep, notifier=notifier, poll_s=poll_s)
    return InProcessRun(runner, executor, resume=True, take_over=take_over).result(timeout=timeout)


def _runner(
    record: RunRecord,
    request: RunRequest,
    store: Store,
    executor: InProcessExecutor,
    *,
    now: Clock,
    sleep: Callable[[float], None],
    notifier: Notifier | None,
    poll_s: float,
) -> Runner:
    return Runner(
        record,
        request,
        store=store,
        executor=executor,
        notifier=notifier if notifier is not None else RecordingNotifier(),
        now=now,
        sleep=sleep,
        poll_s=poll_s,
        deadline_check_s=poll_s,
    )
