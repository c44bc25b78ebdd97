"""The exercise flow: a thin Prefect adapter around :class:`bcm.exercises.play.ExercisePlay`.

An exercise run is a run of the exercise's runbook in exercise mode, through the same engine and
executor as ``run-runbook`` (each step a Prefect task, people deciding in parallel), with the MSEL
delivered beside it on the exercise clock, scripted responses when asked, and STARTEX and ENDEX
recorded. Scheduled exercises (``prefect.yaml``, ``exercise-<id>``) and ``bcm exercise run`` both
call :func:`run_exercise`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Cancelled, Failed

from bcm.comms import make_notifier
from bcm.config import load_settings
from bcm.engine.runner import Runner
from bcm.errors import RunNotFound
from bcm.exercises.library import LoadedExercise, load_exercise
from bcm.exercises.play import ExercisePlay, ExerciseStart, begin_exercise, resume_exercise
from bcm.store import Store
from flows.publish import publish_run_results
from flows.runbook import PrefectExecutor, leave_on_signals, mark_crashed, tag_flow_run


def _flow_run_name() -> str:
    params = current_flow_run.parameters
    run_id = params.get("run_id") or str(current_flow_run.id).replace("-", "")
    exercise = str(params.get("exercise"))
    if exercise.endswith((".yaml", ".yml")):
        exercise = Path(exercise).stem  # library files are named after their exercise id
    return f"{exercise}/exercise/{run_id[:8]}"


@flow(name="run-exercise", flow_run_name=_flow_run_name, persist_result=False, log_prints=True)
def run_exercise(
    exercise: str,
    speed: float = 1.0,
    auto_respond: bool = False,
    triggered_by: str = "schedule",
    run_id: str | None = None,
    leave_on_signal: bool = False,
) -> State[Any] | dict[str, Any]:
    """Play an exercise: its runbook in exercise mode, the MSEL on the exercise clock, STARTEX to ENDEX.

    Args:
        exercise: an exercise id from the library (BCM_RUNBOOKS/exercises) or a path to its YAML file.
        speed: how much faster than the wall clock the exercise clock runs (60: an inject at 15m is
            delivered 15 s after STARTEX; scripted responses' delays are compressed the same way).
        auto_respond: the exercise's scripted responses answer its person steps (a rehearsal);
            without it, people answer with ``bcm approve`` or Slack.
        triggered_by: who started it (``schedule`` for the scheduled deployments).
        run_id: the bcm run id to use (default: derived from the flow run id). When a run with this
            id exists, it is an exercise run whose runner died, and it is resumed: same clock, no
            inject delivered twice, those whose time passed delivered late with their true due time.
        leave_on_signal: (``bcm exercise run`` in a terminal) Ctrl-C or SIGTERM ends the runner at
            once, leaving the run resumable.

    Returns:
        ``{"run_id", "exercise", "status"}``; a Failed state when the run failed, a Cancelled state
        when a person ended the exercise early (``bcm exercise end``).
    """
    settings = load_settings()
    loaded = load_exercise(exercise, library_root=settings.runbooks)
    flow_run_id = str(current_flow_run.id)
    logger = get_run_logger()
    with Store.open(settings.database_url) as store:
        start = _start(store, loaded, speed, auto_respond, triggered_by, run_id or flow_run_id.replace("-", ""))
        record = start.record
        if leave_on_signal:
            leave_on_signals(record.short_id)
        store.update_run(record.id, flow_run_id=flow_run_id)
        rb = loaded.runbook.runbook
        tag_flow_run(flow_run_id, rb.id, record.mode, rb.severity, rb.services)
        notifier = make_notifier(settings, store, loaded.catalog)
        runner = Runner(
            record, start.request, store=store, executor=PrefectExecutor(), notifier=notifier, report=logger.warning
        )
        play = ExercisePlay(
            runner, loaded, start.played, library_root=settings.runbooks, report=logger.info, warn=logger.warning
        )
        result = play.play(resume=start.resume)
        played = store.get_exercise_run(record.id)
    publish_run_results(result.run_id)
    short = result.run_id[:8]
    if result.status == "failed":
        return Failed(message=f"exercise run {short} failed at: {', '.join(result.failed_steps) or 'a step'}")
    if result.status == "cancelled":
        by = played.ended_by if played is not None else "a person"
        return Cancelled(message=f"exercise run {short} ended early: ENDEX by {by}")
    return {"run_id": result.run_id, "exercise": loaded.exercise.id, "status": result.status}


def _start(
    store: Store, loaded: LoadedExercise, speed: float, auto_respond: bool, triggered_by: str, run_id: str
) -> ExerciseStart:
    """A new exercise run (STARTEX now), or the interrupted one with this id, resumed."""
    try:
        existing = store.get_run(run_id)
    except RunNotFound:
        return begin_exercise(
            store, loaded, speed=speed, auto_respond=auto_respond, triggered_by=triggered_by, run_id=run_id
        )
    start = resume_exercise(store, loaded, existing.id, speed=speed, auto_respond=auto_respond)
    mark_crashed(existing.flow_run_id, existing.short_id)
    return start
