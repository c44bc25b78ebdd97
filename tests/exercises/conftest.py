"""Exercise fixtures: the library's tabletop exercise, a store, and exercises played in this process
(threads for the steps, no Prefect, a clock moved by hand when a test needs exact times)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bcm import clock as bcm_clock
from bcm.clock import Clock
from bcm.comms import Notifier, RecordingNotifier
from bcm.engine.runner import Runner, RunResult
from bcm.exercises.library import LoadedExercise, load_exercise
from bcm.exercises.play import ExercisePlay, begin_exercise, resume_exercise
from bcm.store import InjectRecord, StepRecord, Store
from bcm.testing.executor import DEFAULT_START, InProcessExecutor
from tests.conftest import ROOT

#: The runbook library shipped with bcm: its tabletop exercise is what these tests play.
LIBRARY = ROOT / "runbooks"
TABLETOP = "dc-power-loss-tabletop"
#: Where a ManualClock starts: STARTEX of the runs it stamps.
T0 = DEFAULT_START
#: How often, in real seconds, runs and plays in tests look at the store and the clock.
POLL_S = 0.01


def at(seconds: float) -> datetime:
    """``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


@functools.cache
def tabletop() -> LoadedExercise:
    """The library's data-centre power-loss tabletop, validated (by path: only this exercise is read)."""
    return load_exercise(str(LIBRARY / "exercises" / f"{TABLETOP}.yaml"), library_root=LIBRARY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty SQLite store."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as opened:
        yield opened


@dataclass(frozen=True)
class CliEnv:
    """Where a test's ``bcm`` processes keep their state, and the environment they run with."""

    home: Path
    database_url: str
    environ: dict[str, str]

    def bcm(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``python -m bcm ARGS`` as people do, in the repository, and wait for it."""
        return subprocess.run(
            [sys.executable, "-m", "bcm", *args],
            capture_output=True,
            text=True,
            env=self.environ,
            cwd=ROOT,
            timeout=timeout,
        )


def _cli_env(tmp_path: Path, **extra: str) -> CliEnv:
    home = tmp_path / "bcm-home"
    url = f"sqlite:///{home / 'bcm.db'}"
    environ = {k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "PREFECT_API_URL")}
    environ |= {"BCM_HOME": str(home), "BCM_DATABASE_URL": url, "BCM_RUNBOOKS": str(LIBRARY), **extra}
    home.mkdir(parents=True)
    return CliEnv(home=home, database_url=url, environ=environ)


@pytest.fixture
def cli_env(tmp_path: Path) -> CliEnv:
    """A bcm environment on the shipped library, for commands that run no flow."""
    return _cli_env(tmp_path)


@pytest.fixture
def prefect_cli_env(tmp_path: Path, prefect_server: str) -> CliEnv:
    """A bcm environment on the shipped library whose flows run on the session's Prefect test server."""
    return _cli_env(tmp_path, PREFECT_API_URL=prefect_server)


class PlayedExercise:
    """An exercise run played on a thread of this process (see :func:`play_in_process`)."""

    def __init__(self, play: ExercisePlay, *, resume: bool) -> None:
        self.play = play
        self.run_id = play.run_id
        self.store = play.store
        self.notifier = play.notifier
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._play, args=(resume,), daemon=True)
        self._thread.start()

    def _play(self, resume: bool) -> None:
        try:
            self._result = self.play.play(resume=resume)
        except BaseException as exc:  # re-raised in the test's thread
            self._error = exc

    def _wait(self, what: str, found: Callable[[], object], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not found():
            if self._error is not None:
                raise self._error
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_id[:8]}: {what} did not happen within {timeout:g}s")
            time.sleep(0.005)

    def wait_for_inject(self, number: int, timeout: float = 10.0) -> InjectRecord:
        """Block until inject ``number`` is recorded; return its record."""
        self._wait(f"inject {number}", lambda: self.inject(number), timeout)
        found = self.inject(number)
        assert found is not None
        return found

    def inject(self, number: int) -> InjectRecord | None:
        """Inject ``number`` as recorded, if it is."""
        return next((i for i in self.store.get_injects(self.run_id) if i.number == number), None)

    def wait_for_step(self, step_id: str, status: str, timeout: float = 10.0) -> StepRecord:
        """Block until step ``step_id`` has ``status``; return its record."""

        def reached() -> bool:
            step = self.store.get_step(self.run_id, step_id)
            return step is not None and step.status == status

        self._wait(f"step {step_id} {status}", reached, timeout)
        found = self.store.get_step(self.run_id, step_id)
        assert found is not None
        return found

    def done(self) -> bool:
        """True once the play has ended."""
        return not self._thread.is_alive()

    def result(self, timeout: float = 20.0) -> RunResult:
        """Block until the play ends; return how the run ended."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"run {self.run_id[:8]} still playing after {timeout:g}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def play_in_process(
    store: Store,
    *,
    speed: float,
    auto_respond: bool = False,
    now: Clock = bcm_clock.now,
    notifier: Notifier | None = None,
    resume_run: str | None = None,
    exercise: LoadedExercise | None = None,
) -> PlayedExercise:
    """Start (or, with ``resume_run``, resume) an exercise run of the tabletop in this process."""
    loaded = exercise or tabletop()
    if resume_run is not None:
        start = resume_exercise(store, loaded, resume_run, now=now)
    else:
        start = begin_exercise(store, loaded, speed=speed, auto_respond=auto_respond, triggered_by="test", now=now)
    runner = Runner(
        start.record,
        start.request,
        store=store,
        executor=InProcessExecutor(sleep=lambda _: None),
        notifier=notifier if notifier is not None else RecordingNotifier(),
        now=now,
        poll_s=POLL_S,
        deadline_check_s=POLL_S,
    )
    play = ExercisePlay(runner, loaded, start.played, library_root=LIBRARY, now=now, check_s=POLL_S)
    return PlayedExercise(play, resume=start.resume)
