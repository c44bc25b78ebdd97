"""``bcm exercise run`` and ``bcm exercise end``: play an exercise on the exercise clock, stop it early.

``run`` calls the ``run-exercise`` flow (:mod:`flows.exercise`) the way ``bcm run`` calls the
runbook flow: the embedded Prefect server when no server is configured, each step shown as it
starts, waits and ends, and each inject as it is delivered or skipped (a ``console`` inject is
printed in full: the controller reads it out), then where the run stands with its injects.
``end`` marks ENDEX; the run's runner then stops it (or, when its runner is gone, it is cancelled
here). Prefect and ``flows/`` are imported inside the functions, as in :mod:`bcm.cli.runs`.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Annotated, Any

import typer

from bcm.cli.output import FAILED, OK, JsonOption, echo, err, fail, print_json
from bcm.cli.output import who as who_is
from bcm.cli.runs import PROGRESS_POLL_S, FlowCall, Progress, call_flow, check_prefect_server
from bcm.cli.status import RunArgument, open_store, print_run
from bcm.config import Settings, load_settings
from bcm.durations import format_duration
from bcm.engine.status import exercise_document, inject_document
from bcm.errors import BcmError, RunNotFound
from bcm.exercises.clock import ExerciseClock
from bcm.exercises.library import LoadedExercise, load_exercise
from bcm.exercises.play import check_resumable, end_exercise, exercise_parameters
from bcm.store import ExerciseRunRecord, InjectRecord, Store
from bcm.vocabulary import FINISHED_RUN_STATUSES

#: How long ``bcm exercise end`` waits for a live runner to stop the run, in seconds.
END_WAIT_S = 30.0
#: The fastest exercise clock whose figures are fit to score: above it, ``bcm exercise run`` warns.
SCORING_SPEED = 60.0
#: About how long bcm takes, in wall seconds, between one step ending and the next starting (with
#: Prefect tasks): at --speed 600 that is 3 minutes of exercise time.
HANDOFF_S = 0.3
#: Run statuses that end ``bcm exercise run`` with exit 0: played out, or ended early on purpose.
ENDED_WELL = ("succeeded", "cancelled")

ByOption = Annotated[str | None, typer.Option("--by", help="Who does it (default: $USER).")]


class InjectFeed:
    """Prints each inject as it is delivered or skipped, read from the store while the run goes on.

    A ``console`` inject is printed in full (the controller reads it out); with ``console_only``
    (``--json``) only those are printed. Everything goes to stderr.
    """

    def __init__(self, settings: Settings, run_id: str, *, console_only: bool = False) -> None:
        self.settings = settings
        self.run_id = run_id
        self.console_only = console_only
        self.seen: set[int] = set()
        self.played: ExerciseRunRecord | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bcm-injects")

    def __enter__(self) -> InjectFeed:
        self.store = Store.open(self.settings.database_url)
        self.seen = {i.number for i in self.store.get_injects(self.run_id)}  # a resumed run: shown before
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._show()  # the last ones
        self.store.close()

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_POLL_S):
            self._show()

    def _show(self) -> None:
        try:
            self.played = self.played or self.store.get_exercise_run(self.run_id)
            injects = self.store.get_injects(self.run_id) if self.played is not None else []
        except BcmError:
            return  # the store is busy (or the run is not recorded yet): the next poll shows it
        for inject in injects:
            if inject.number in self.seen:
                continue
            self.seen.add(inject.number)
            if self.console_only and (inject.delivery != "console" or inject.status != "delivered"):
                continue
            err.print(self._line(inject), markup=False, highlight=False)

    def _line(self, inject: InjectRecord) -> str:
        assert self.played is not None
        offset = ExerciseClock(self.played.startex_at, self.played.speed).exercise_time(inject.due_at)
        head = f"  inject {inject.number:<3} +{format_duration(offset):<7}"
        if inject.status != "delivered":
            return f"{head} skipped: {inject.reason}"
        late = inject.at - inject.due_at
        when = f" ({format_duration(late)} late)" if late >= timedelta(seconds=1) else ""
        if inject.delivery == "console":
            return f"{head} for {inject.recipient}, read it out{when}:\n            {inject.message}"
        where = "by direct message" if inject.delivery == "dm" else "in the exercise channel"
        return f"{head} delivered to {inject.recipient} {where}{when}"


def exercise_run_document(store: Store, run_id: str) -> dict[str, Any]:
    """What ``bcm exercise run --json`` prints: the run, its exercise (STARTEX, ENDEX) and its injects."""
    run = store.get_run(run_id)
    played = store.get_exercise_run(run.id)
    return {
        "run_id": run.id,
        "short_id": run.short_id,
        "exercise": played.exercise_id if played is not None else None,
        "runbook": run.runbook_id,
        "mode": run.mode,
        "status": run.status,
        "error": run.error,
        **({k: v for k, v in exercise_document(played).items() if k not in ("id", "path")} if played else {}),
        "injects": [inject_document(i) for i in store.get_injects(run.id)],
    }


def run_cmd(
    exercise: Annotated[str, typer.Argument(help="An exercise id from the library or a path to its YAML file.")],
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="How fast the exercise clock runs: 60 plays an hour of exercise time in a minute."
        ),
    ] = 1.0,
    auto_respond: Annotated[
        bool,
        typer.Option("--auto-respond", help="The exercise's scripted responses answer its person steps (a rehearsal)."),
    ] = False,
    json_out: JsonOption = False,
    by: ByOption = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN",
            help="Go on with exercise run RUN, interrupted: same clock, injects missed delivered late, none twice.",
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", hidden=True, help="Use this run id (Slack trigger).")
    ] = None,
) -> None:
    """Play an exercise: its runbook in exercise mode, every MSEL inject on the exercise clock, STARTEX to ENDEX."""
    # The engine's runner imports every step kind (httpx among them): only a real play pays for it.
    from bcm.engine.runner import new_run_id

    if not speed > 0:
        fail(f"--speed {speed:g}: give a number above 0 (60 plays an hour of exercise time in a minute)")
    settings = load_settings()
    loaded = load_exercise(exercise, library_root=settings.runbooks)
    exercise_parameters(loaded)  # the runbook must take the exercise's parameters: exit 2 before anything runs
    who = who_is(by)
    resuming: ExerciseRunRecord | None = None
    with open_store(settings, write=True) as store:
        if resume is not None or (run_id is not None and _exists(store, run_id)):
            record, resuming = check_resumable(store, loaded, resume or str(run_id))  # refused before Prefect starts
            run_id = record.id
    played = (resuming.speed, resuming.auto_respond) if resuming else (speed, auto_respond)
    if (warning := speed_warning(played[0])) is not None:
        echo(warning, stderr=True)
    check_prefect_server()
    run_id = run_id or new_run_id()
    if not json_out:
        _announce(loaded, run_id, speed=played[0], auto_respond=played[1], resuming=resuming is not None)
    # Prefect: imported once the run is announced (as it takes seconds), unless bcm serve's launcher runs it.
    call = FlowCall(
        "run-exercise",
        {
            "exercise": str(loaded.path),
            "speed": speed,
            "auto_respond": auto_respond,
            "triggered_by": who,
            "run_id": run_id,
            "leave_on_signal": True,
        },
    )
    with InjectFeed(settings, run_id, console_only=json_out):
        if json_out:
            ended = call_flow(call, quiet=True)
        else:
            with Progress(settings, run_id, loaded.runbook, loaded.catalog):
                ended = call_flow(call, quiet=False)
    if ended.refusal is not None:  # a flow that refused to start (a resume of an ended run, say): say why
        raise ended.refusal
    with open_store(settings) as store:
        if json_out:
            doc = exercise_run_document(store, run_id)
            print_json(doc, default=str)
            status = str(doc["status"])
        else:
            status = print_run(store, run_id, json_out=False, library_root=settings.runbooks)
    raise typer.Exit(OK if status in ENDED_WELL else FAILED)


def speed_warning(speed: float) -> str | None:
    """What ``bcm exercise run`` says on stderr above --speed 60: each hand-off between steps takes bcm a
    fraction of a second, which the exercise clock multiplies into minutes."""
    if speed <= SCORING_SPEED:
        return None
    handoff = format_duration(timedelta(seconds=HANDOFF_S * speed))
    return (
        f"at --speed {speed:g} each hand-off between steps (about {HANDOFF_S:g} s) counts as about {handoff} of "
        f"exercise time: figures are for rehearsal; score at --speed {SCORING_SPEED:g} or less"
    )


def _announce(loaded: LoadedExercise, run_id: str, *, speed: float, auto_respond: bool, resuming: bool) -> None:
    exercise, short = loaded.exercise, run_id[:8]
    what = f"resuming run {short}" if resuming else f"run {short} starting"
    echo(
        f"exercise {exercise.id} ({exercise.type} of {loaded.runbook.runbook.id}): {what} at speed {speed:g} "
        f"(an hour of exercise time in {format_duration(timedelta(hours=1) / speed)})"
        + (", scripted responses answering" if auto_respond else "")
        + f"; `bcm exercise end {short}` ends it",
        stderr=True,
    )


def _exists(store: Store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except RunNotFound:
        return False
    return True


def end_cmd(
    run: RunArgument,
    by: Annotated[
        str,
        typer.Option(
            "--by",
            help="Who ends it: a holder of the exercise's controller, evaluator or sponsor role.",
        ),
    ],
) -> None:
    """End an exercise now (ENDEX): the run stops, its remaining steps cancelled, waiting people released."""
    settings = load_settings()
    with open_store(settings, write=True) as store:
        ended = end_exercise(store, run, by=by, library_root=settings.runbooks)
        short = ended.run.short_id
        played = ended.played
        assert played.endex_at is not None
        who = played.ended_by
        echo(f"ENDEX at {played.endex_at:%H:%M:%S} UTC: {who} ended exercise {played.exercise_id}, run {short}")
        if ended.cancelled:
            echo(
                f"run {short} had no runner: cancelled here, its remaining steps cancelled and injects to come skipped"
            )
        elif ended.runner_alive:
            _wait_for_stop(store, ended.run.id, short)
        else:
            echo(f"run {short} had ended already ({ended.run.status})")


def _wait_for_stop(store: Store, run_id: str, short: str) -> None:
    """Wait for the live runner to stop the run, and say how it ended."""
    deadline = time.monotonic() + END_WAIT_S
    while time.monotonic() < deadline:
        record = store.get_run(run_id)
        if record.status in FINISHED_RUN_STATUSES:
            cancelled = sum(1 for s in store.get_steps(run_id) if s.status == "cancelled")
            echo(f"run {short} {record.status}: {cancelled} steps cancelled, people waiting on it released")
            return
        time.sleep(0.2)
    echo(
        f"the runner of run {short} is finishing the steps in flight before it stops: "
        f"`bcm status {short}` shows when it has"
    )
