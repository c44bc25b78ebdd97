"""What evaluators record on an exercise run: observations on objectives (with a rating) and the hot wash.

Only a holder (member or alternate) of one of the exercise's evaluator roles in the stakeholders
file may record; the observation is kept with the person's name and the role they recorded under,
and the store audits it (``observation.recorded``). Every refusal is an
:class:`~bcm.errors.ObservationRefused` that says what to do instead, as ``bcm approve`` and
``bcm mark`` do (:mod:`bcm.engine.approvals`).

An evaluator's rating on an objective becomes its final rating in the evaluation and the
after-action report; the rating the timeline suggests is kept beside it
(:mod:`bcm.exercises.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bcm import clock
from bcm.clock import Clock
from bcm.errors import InputError, ObservationRefused
from bcm.exercises.evaluation import (
    evaluate,
    load_played_exercise,
    read_records,
    require_exercise_run,
    unknown_objective,
)
from bcm.exercises.library import LoadedExercise
from bcm.spec.models import Person
from bcm.store import ExerciseRunRecord, ObservationRecord, RunRecord, Store
from bcm.vocabulary import RATING_MEANINGS, RATINGS, Rating

__all__ = ["OBJECTIVE_OBSERVATION_KINDS", "Recorded", "parse_rating", "record_hotwash", "record_observation"]

#: The kinds an observation on an objective may have (the hot wash has its own command).
OBJECTIVE_OBSERVATION_KINDS = ("strength", "improvement", "note")


@dataclass(frozen=True)
class Recorded:
    """An observation as recorded, the run and exercise it belongs to, and the rating the timeline suggests.

    Attributes:
        run: the run.
        exercise: the exercise the run played.
        observation: what was recorded.
        suggested: for an observation on an objective, the rating its measure suggests now (``None``
            when it has no measure or is not scored yet).
        suggested_detail: why (the figure against the threshold, or why not scored).
    """

    run: RunRecord
    exercise: LoadedExercise
    observation: ObservationRecord
    suggested: Rating | None = None
    suggested_detail: str | None = None


def parse_rating(text: str | None) -> Rating | None:
    """``P``, ``S``, ``M`` or ``U`` (any case), or ``None``.

    Raises:
        ObservationRefused: anything else.
    """
    if text is None:
        return None
    rating = text.strip().upper()
    for known in RATINGS:
        if rating == known:
            return known
    choices = "; ".join(f"{r} ({RATING_MEANINGS[r]})" for r in RATINGS)
    raise ObservationRefused(f"--rating {text}: not an HSEEP rating; use one of {choices}")


def _exercise_of(
    store: Store, run_ref: str, *, library_root: Path
) -> tuple[RunRecord, ExerciseRunRecord, LoadedExercise]:
    run = store.get_run(run_ref)
    try:
        exercise_run = require_exercise_run(store, run, why="observations are recorded on exercise runs")
    except InputError as exc:
        raise ObservationRefused(str(exc)) from None
    return run, exercise_run, load_played_exercise(exercise_run, library_root=library_root)


def _evaluator(loaded: LoadedExercise, who: str, run: RunRecord) -> tuple[Person, str]:
    """The person ``who`` names and the evaluator role they hold.

    Raises:
        ObservationRefused: ``who`` holds none of the exercise's evaluator roles.
    """
    roles = loaded.catalog.roles
    for role_id in loaded.exercise.evaluators:
        role = roles.get(role_id)
        person = None if role is None else role.holder(who)
        if person is not None:
            return person, role_id
    holders = "; ".join(
        f"{role_id} ({', '.join(p.name for p in [*roles[role_id].members, *roles[role_id].alternates])})"
        for role_id in loaded.exercise.evaluators
        if role_id in roles
    )
    raise ObservationRefused(
        f"{who} is not an evaluator of exercise {loaded.exercise.id} (run {run.short_id}); "
        f"its evaluator roles and their holders: {holders}"
    )


def _note(note: str) -> str:
    text = note.strip()
    if not text:
        raise ObservationRefused("--note is empty: say what was observed")
    return text


def record_observation(
    store: Store,
    run_ref: str,
    *,
    objective_id: str,
    note: str,
    who: str,
    kind: str = "note",
    rating: str | None = None,
    root_cause: str | None = None,
    library_root: Path,
    now: Clock = clock.now,
) -> Recorded:
    """Record ``who``'s observation on objective ``objective_id`` of exercise run ``run_ref``; audited.

    Args:
        kind: ``strength``, ``improvement`` (an area for improvement) or ``note``.
        rating: an HSEEP rating (P, S, M, U), which becomes the objective's final rating.
        root_cause: why an area for improvement happened (only with ``kind="improvement"``).

    Raises:
        ObservationRefused: the run is not an exercise run, the objective is unknown, the rating is
            not P, S, M or U, the note is empty, a root cause comes without an area for
            improvement, or ``who`` is not an evaluator of the exercise.
        RunNotFound: no run has that id.
    """
    if kind not in OBJECTIVE_OBSERVATION_KINDS:
        raise ObservationRefused(
            f"unknown kind of observation '{kind}' (known: {', '.join(OBJECTIVE_OBSERVATION_KINDS)})"
        )
    parsed = parse_rating(rating)
    text = _note(note)
    cause = root_cause.strip() if root_cause is not None and root_cause.strip() else None
    if cause is not None and kind != "improvement":
        raise ObservationRefused("--root-cause goes with --improvement: a root cause explains an area for improvement")
    run, exercise_run, loaded = _exercise_of(store, run_ref, library_root=library_root)
    if objective_id not in {o.id for o in loaded.exercise.objectives}:
        raise ObservationRefused(unknown_objective(objective_id, loaded.exercise))
    person, role_id = _evaluator(loaded, who, run)
    observation = store.add_observation(
        run.id,
        objective_id=objective_id,
        kind=kind,
        note=text,
        by=person.name,
        role=role_id,
        at=now(),
        rating=parsed,
        root_cause=cause,
    )
    records = read_records(store, run, exercise_run, loaded)
    result = evaluate(loaded.exercise, records, as_of=now()).result(objective_id)
    return Recorded(run, loaded, observation, result.suggested, result.score.detail)


def record_hotwash(
    store: Store,
    run_ref: str,
    *,
    note: str,
    who: str,
    library_root: Path,
    now: Clock = clock.now,
) -> Recorded:
    """Record a hot-wash note (what went well, what to improve, said right after ENDEX); audited.

    Raises:
        ObservationRefused: the run is not an exercise run, the note is empty, or ``who`` is not an
            evaluator of the exercise.
        RunNotFound: no run has that id.
    """
    text = _note(note)
    run, _, loaded = _exercise_of(store, run_ref, library_root=library_root)
    person, role_id = _evaluator(loaded, who, run)
    observation = store.add_observation(
        run.id, objective_id=None, kind="hotwash", note=text, by=person.name, role=role_id, at=now()
    )
    return Recorded(run, loaded, observation)
