"""Is a run's runner alive? The heartbeat it writes, and how its silence is read.

A run the store says is running or waiting may have lost its runner (``kill -9``, a reboot, an
out-of-memory kill). Nothing else would ever say so: the run would show "waiting" for ever. The
runner writes a heartbeat every :data:`HEARTBEAT_S` seconds; a run whose runner is known dead (same
host, process gone) or silent for longer than :data:`STALE_AFTER_S` is **interrupted**, and the way
on is ``bcm resume RUN``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bcm import clock
from bcm.clock import Clock
from bcm.engine.processes import ProcessId, stop_leftover
from bcm.errors import InputError
from bcm.store import RunRecord, Store
from bcm.vocabulary import ACTIVE_RUN_STATUSES, INTERRUPTED

#: How often a runner says it is alive, in seconds (BCM_HEARTBEAT_S overrides).
HEARTBEAT_S = float(os.environ.get("BCM_HEARTBEAT_S", "5"))
#: A runner silent for longer than this is taken for dead (four missed heartbeats).
STALE_AFTER_S = 4 * HEARTBEAT_S
#: Statuses of a run that has a runner working on it.
ACTIVE = ACTIVE_RUN_STATUSES


@dataclass(frozen=True)
class Liveness:
    """What is known of a run's runner.

    Attributes:
        state: ``alive``, ``interrupted`` (the runner died: resume the run), ``stalled`` (its
            process exists on this host but has stopped beating: stop it before resuming) or
            ``ended`` (the run is not running or waiting).
        why: for an interrupted run, how we know.
    """

    state: str
    why: str | None = None

    @property
    def interrupted(self) -> bool:
        """True when the run needs ``bcm resume``."""
        return self.state == "interrupted"


def assess(run: RunRecord, *, now: datetime | None = None) -> Liveness:
    """Whether ``run``'s runner is alive, from its heartbeat and (on this host) its process."""
    if run.status not in ACTIVE:
        return Liveness("ended")
    runner = ProcessId.parse(run.runner) if run.runner else None
    alive = runner.alive() if runner is not None else None
    if runner is not None and alive is False:
        return Liveness("interrupted", f"its runner (pid {runner.pid} on {runner.host}) is gone")
    beat = run.heartbeat_at or run.started_at
    silent = ((now or clock.now()) - beat).total_seconds()
    if silent > STALE_AFTER_S:
        if runner is not None and alive:
            # Its process still exists here: resuming would make two runners. Someone must stop it.
            return Liveness(
                "stalled", f"its runner (pid {runner.pid}) still exists on this host but is silent for {silent:.0f}s"
            )
        return Liveness("interrupted", f"no heartbeat from its runner for {silent:.0f}s")
    return Liveness("alive")


def shown_status(run: RunRecord, liveness: Liveness) -> str:
    """The status people see: the stored one, or ``interrupted``."""
    return INTERRUPTED if liveness.interrupted else run.status


class Heartbeat:
    """A thread that writes the runner's heartbeat and runs ``poll`` often in between.

    ``poll`` is how a waiting run learns of decisions: one store query per ``poll_s`` for all the
    steps that wait, however many they are.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        poll: Callable[[], None] | None = None,
        beat_s: float | None = None,
        poll_s: float = 0.25,
        now: Clock = clock.now,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.poll = poll
        self.beat_s = HEARTBEAT_S if beat_s is None else beat_s
        self.poll_s = poll_s
        self.now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"bcm-heartbeat-{run_id[:8]}")

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (the run ended or the runner is leaving)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _loop(self) -> None:
        last_beat = 0.0
        elapsed = 0.0
        while not self._stop.wait(self.poll_s):
            elapsed += self.poll_s
            try:
                if self.poll is not None:
                    self.poll()
                if elapsed - last_beat >= self.beat_s:
                    self.store.heartbeat(self.run_id, at=self.now())
                    last_beat = elapsed
            except Exception:  # a store hiccup must not kill the heartbeat; the next tick retries
                continue


def leftover_attempts(store: Store, run_id: str, *, take_over: bool = False) -> list[tuple[str, ProcessId]]:
    """Steps of ``run_id`` whose last attempt's process may still be alive.

    Raises:
        InputError: an attempt ran on another host, where bcm cannot check it (unless ``take_over``).
    """
    found: list[tuple[str, ProcessId]] = []
    for step in store.get_steps(run_id):
        if step.status != "running" or not step.process:
            continue
        process = ProcessId.parse(step.process)
        if process is None:
            continue
        if not process.local:
            if take_over:
                continue
            raise InputError(
                f"step '{step.step_id}' was last attempted by pid {process.pid} on host {process.host}, which bcm "
                f"cannot check from here: resume the run on {process.host}, or make sure that attempt has "
                "stopped and resume with --take-over"
            )
        if process.group_alive():
            found.append((step.step_id, process))
    return found


def stop_leftover_attempts(
    store: Store, run_id: str, *, take_over: bool = False, report: Callable[[str], None] = lambda _: None
) -> None:
    """Before a resumed run re-runs a step, stop what its last attempt left running (saying what)."""
    for step_id, process in leftover_attempts(store, run_id, take_over=take_over):
        report(f"step '{step_id}': its last attempt is still running; waiting before running it again")
        report(f"step '{step_id}': {stop_leftover(process)}")
