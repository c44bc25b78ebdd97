"""Scoring an exercise's objectives from the run's timeline, with the evaluators' ratings beside it.

:func:`evaluate` is a pure function over the records the store hands back for one exercise run
(:class:`ExerciseRecords`: the run, the exercise run with its speed, steps, marks, injects,
observations, stakeholder updates and targets) and a time ``as_of``. Every objective with a
measure is **met**, **missed** or **not scored** (always with why), with the figure, the threshold
and a suggested HSEEP rating. Figures and thresholds are in *exercise time*: wall durations times
the run's speed (at speed 60 a minute of play is an hour of exercise time).

The suggested rating (HSEEP: P performed without challenges, S with some challenges, M with major
challenges, U unable to be performed):

==========================  ==========================================================================
measure                     rule
==========================  ==========================================================================
milestone / step within T   reached within T with at least 25 % of T to spare → P; within T but in its
                            last 25 % → S; later than T but within 2 × T → M; later than 2 × T, or
                            never (by ENDEX) → U. Exactly 75 % of T is P, exactly T is S, exactly
                            2 × T is M.
step (no time)              succeeded → P; failed, timed out, rejected or never ran by ENDEX → U;
                            skipped (its ``when`` did not hold) → not scored: it was not tested.
cadence kept, at_least A    share of updates due that went out on time ≥ A → P when every one was
                            on time, else S; below A → M when the share ≥ A / 2, else U; no update at
                            all while one was due → U. An update is on time when it came within the
                            cadence (in exercise time) of the one before (the first: of declared, else
                            STARTEX). A due update that never came counts too: every gap longer than
                            the cadence holds ⌊gap / cadence⌋ updates due; a gap ending in an update
                            has that update as its late one and the rest missed, the gap from the last
                            update to the end (resolved or stood_down, else ENDEX; now while in play)
                            has all of them missed. The share is on time / (sent + missed).
target rto / mtpd           time to recover (exercise time) against the run's stored RTO or MTPD, by
                            the same rule as a milestone within T. It counts from impact_started when
                            that was marked, else from STARTEX (the scenario's impact starts at
                            STARTEX); the score says which.
==========================  ==========================================================================

Not scored, with the reason: an objective without a measure (evaluators rate it); a measure
counted ``of`` a milestone that never happened; a skipped step; a target the run has no value
for; while the exercise is still in play (no ENDEX, the run not finished), anything not reached
yet that could still be reached within twice its threshold; and, when a person ended play early
(ENDEX by ``bcm exercise end``, not ``played out``), anything that had not happened and was not
due yet at ENDEX (its origin plus its threshold still ahead; a step with no time limit that had
not finished). Once a timed event happened, or its deadline passed before ENDEX, its score is
final. A run that played out (the runbook finished) is scored on what happened by then.

An evaluator's rating (``bcm exercise observe --rating``) is the final rating; the suggestion is
kept beside it, and the report shows both and who rated. The latest rating given wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from difflib import get_close_matches
from pathlib import Path
from typing import Literal

from bcm.clock import as_utc
from bcm.durations import format_duration
from bcm.engine.context import RunContext, RunInfo, StepState
from bcm.engine.plan import Plan
from bcm.errors import InputError, TemplateRenderError
from bcm.exercises.library import EXERCISES_DIR, LoadedExercise, load_exercise
from bcm.exercises.models import (
    CadenceMeasure,
    Exercise,
    Inject,
    Measure,
    MilestoneMeasure,
    Objective,
    StepMeasure,
    TargetMeasure,
)
from bcm.exercises.play import PLAYED_OUT
from bcm.metrics import FIGURES
from bcm.spec.targets import runbook_targets
from bcm.store import (
    ExerciseRunRecord,
    InjectRecord,
    MarkRecord,
    ObservationRecord,
    RunRecord,
    RunTargets,
    StepRecord,
    Store,
)
from bcm.templates import render
from bcm.vocabulary import FINISHED_RUN_STATUSES, FINISHED_STEP_STATUSES, RATING_MEANINGS, Rating

__all__ = [
    "Evaluation",
    "ExerciseRecords",
    "InjectRow",
    "ObjectiveResult",
    "Outcome",
    "Score",
    "evaluate",
    "inject_context",
    "inject_timeline",
    "load_played_exercise",
    "measure_text",
    "offset_text",
    "read_records",
    "render_expected_action",
    "require_exercise_run",
    "suggest_cadence_rating",
    "suggest_rating",
    "unknown_objective",
]

Outcome = Literal["met", "missed", "not_scored"]

#: How the report names an outcome.
OUTCOME_LABELS: dict[Outcome, str] = {"met": "met", "missed": "missed", "not_scored": "not scored"}

_TIME_TO_RECOVER = next(f for f in FIGURES if f.key == "time_to_recover").label
#: How the play words an inject skipped because play ended before it was due (``skip_remaining``).
_ENDEX_SKIP = "not delivered before ENDEX"


# --------------------------------------------------------------------------- the inputs


@dataclass(frozen=True)
class ExerciseRecords:
    """Everything the evaluation reads about one exercise run, as the store hands it back.

    Attributes:
        run: the run (mode ``exercise``).
        exercise_run: which exercise it played, STARTEX, ENDEX and the speed.
        steps: the runbook steps' records.
        marks: the milestones reached.
        injects: the injects delivered or skipped.
        observations: the evaluators' observations and hot-wash notes.
        updates: when stakeholder updates went out (for the cadence).
        targets: the RTO, MTPD and cadence the run is measured against (those stored with the run).
    """

    run: RunRecord
    exercise_run: ExerciseRunRecord
    steps: tuple[StepRecord, ...] = ()
    marks: tuple[MarkRecord, ...] = ()
    injects: tuple[InjectRecord, ...] = ()
    observations: tuple[ObservationRecord, ...] = ()
    updates: tuple[datetime, ...] = ()
    targets: RunTargets = field(default_factory=RunTargets)

    @property
    def speed(self) -> float:
        """How much faster than the wall clock the exercise clock ran."""
        return self.exercise_run.speed

    @property
    def play_ended_at(self) -> datetime | None:
        """ENDEX, else the run's end when the run is over; ``None`` while the exercise is in play."""
        if self.exercise_run.endex_at is not None:
            return self.exercise_run.endex_at
        if self.run.status in FINISHED_RUN_STATUSES:
            return self.run.ended_at
        return None

    @property
    def ended_early(self) -> bool:
        """Whether a person ended play (``bcm exercise end``) rather than the runbook playing out."""
        played = self.exercise_run
        return played.endex_at is not None and played.ended_by is not None and played.ended_by != PLAYED_OUT

    def exercise_time(self, at: datetime, origin: datetime | None = None) -> timedelta:
        """How long after ``origin`` (default STARTEX) ``at`` is, on the exercise clock."""
        start = self.exercise_run.startex_at if origin is None else origin
        return (as_utc(at) - as_utc(start)) * self.speed

    def milestones(self) -> dict[str, datetime]:
        """Each milestone's earliest time (STARTEX from the exercise run when it has no mark)."""
        found: dict[str, datetime] = {"startex": as_utc(self.exercise_run.startex_at)}
        for mark in self.marks:
            at = as_utc(mark.at)
            if mark.milestone not in found or at < found[mark.milestone]:
                found[mark.milestone] = at
        return found


# --------------------------------------------------------------------------- the outputs


@dataclass(frozen=True)
class Score:
    """How an objective's measure came out on the timeline.

    Attributes:
        outcome: met, missed or not scored.
        detail: the figure against the threshold in words, or why it is not scored.
        value: the figure, in exercise time (timed measures).
        threshold: what it was measured against, in exercise time.
        share: the share of updates on time (cadence).
        at_least: the share required (cadence).
        suggested: the suggested rating; ``None`` when not scored.
        basis: where the time to recover counts from (``impact_started`` or ``startex``), for targets.
    """

    outcome: Outcome
    detail: str
    value: timedelta | None = None
    threshold: timedelta | None = None
    share: float | None = None
    at_least: float | None = None
    suggested: Rating | None = None
    basis: str | None = None

    def to_json(self) -> dict[str, object]:
        """The score as JSON: durations in seconds."""
        return {
            "outcome": self.outcome,
            "detail": self.detail,
            "value_s": _seconds(self.value),
            "threshold_s": _seconds(self.threshold),
            "share": self.share,
            "at_least": self.at_least,
            "suggested": self.suggested,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class ObjectiveResult:
    """One objective: its score, the final rating and who gave it, and the observations on it.

    Attributes:
        objective: the objective.
        measure: what is measured, in words (``-`` when nothing is).
        score: how the measure came out.
        rating: the final rating: the latest an evaluator gave, else the suggested one.
        rated_by: the evaluator who gave the final rating; ``None`` when it is the suggestion.
        rated_role: that evaluator's role.
        observations: the observations on the objective, in the order they were recorded.
    """

    objective: Objective
    measure: str
    score: Score
    rating: Rating | None
    rated_by: str | None
    rated_role: str | None
    observations: tuple[ObservationRecord, ...] = ()

    @property
    def suggested(self) -> Rating | None:
        """The rating the timeline suggests."""
        return self.score.suggested

    @property
    def strengths(self) -> tuple[ObservationRecord, ...]:
        """Observations recorded as strengths."""
        return tuple(o for o in self.observations if o.kind == "strength")

    @property
    def improvements(self) -> tuple[ObservationRecord, ...]:
        """Observations recorded as areas for improvement."""
        return tuple(o for o in self.observations if o.kind == "improvement")

    @property
    def notes(self) -> tuple[ObservationRecord, ...]:
        """Other observations (a rating with a note, remarks)."""
        return tuple(o for o in self.observations if o.kind == "note")

    def to_json(self) -> dict[str, object]:
        """The result as JSON."""
        return {
            "objective": self.objective.id,
            "title": self.objective.title,
            "capability": self.objective.capability,
            "measure": self.measure,
            "score": self.score.to_json(),
            "suggested": self.suggested,
            "rating": self.rating,
            "rating_meaning": RATING_MEANINGS[self.rating] if self.rating else None,
            "rated_by": self.rated_by,
            "rated_role": self.rated_role,
            "observations": [observation_json(o) for o in self.observations],
        }


@dataclass(frozen=True)
class Evaluation:
    """Every objective's result and the hot-wash notes, as of a time."""

    objectives: tuple[ObjectiveResult, ...]
    hotwash: tuple[ObservationRecord, ...]
    in_play: bool
    as_of: datetime

    def result(self, objective_id: str) -> ObjectiveResult:
        """The result of one objective.

        Raises:
            KeyError: the exercise has no such objective.
        """
        for result in self.objectives:
            if result.objective.id == objective_id:
                return result
        raise KeyError(objective_id)

    def rating_counts(self) -> dict[str, int]:
        """How many objectives have each final rating (``none``: no rating at all)."""
        counts = {"P": 0, "S": 0, "M": 0, "U": 0, "none": 0}
        for result in self.objectives:
            counts[result.rating or "none"] += 1
        return counts

    def to_json(self) -> dict[str, object]:
        """The evaluation as JSON."""
        return {
            "as_of": self.as_of.isoformat(),
            "in_play": self.in_play,
            "ratings": self.rating_counts(),
            "objectives": [r.to_json() for r in self.objectives],
            "hotwash": [observation_json(o) for o in self.hotwash],
        }


def observation_json(observation: ObservationRecord) -> dict[str, object]:
    """An observation as JSON."""
    return {
        "id": observation.id,
        "objective": observation.objective_id,
        "kind": observation.kind,
        "rating": observation.rating,
        "note": observation.note,
        "root_cause": observation.root_cause,
        "by": observation.by,
        "role": observation.role,
        "at": observation.at.isoformat(),
    }


# --------------------------------------------------------------------------- the rating rules


def suggest_rating(value: timedelta | None, threshold: timedelta) -> Rating:
    """The margin rule: P with ≥ 25 % of ``threshold`` to spare, S within it, M within twice it, else U.

    ``value`` ``None`` (it never happened) is U. Exact arithmetic on microseconds: 75 % of the
    threshold is P, the threshold itself S, twice the threshold M.
    """
    if value is None or value > 2 * threshold:
        return "U"
    if value > threshold:
        return "M"
    return "P" if 4 * value <= 3 * threshold else "S"


def suggest_cadence_rating(share: float, at_least: float, *, all_on_time: bool) -> Rating:
    """Cadence: share ≥ ``at_least`` → P (S when any update was late); ≥ half of it → M; else U."""
    if share >= at_least:
        return "P" if all_on_time else "S"
    return "M" if share >= at_least / 2 else "U"


# --------------------------------------------------------------------------- words


def offset_text(value: timedelta) -> str:
    """An exercise-time offset as people read it: ``+9m``, ``+1h 5m``, ``-2m``."""
    text = format_duration(value)
    return text if text.startswith("-") else f"+{text}"


def _origin_text(origin: str) -> str:
    return "STARTEX" if origin == "startex" else origin


def measure_text(measure: Measure | None, *, cadence: timedelta | None = None) -> str:
    """What a measure asks for, in words: ``acknowledged within 15m of STARTEX``."""
    if measure is None:
        return "-"
    if isinstance(measure, MilestoneMeasure):
        return f"{measure.milestone} within {format_duration(measure.within)} of {_origin_text(measure.of)}"
    if isinstance(measure, StepMeasure):
        within = (
            "" if measure.within is None else f" within {format_duration(measure.within)} of {_origin_text(measure.of)}"
        )
        return f"step {measure.step} succeeded{within}"
    if isinstance(measure, CadenceMeasure):
        every = "" if cadence is None else f" (every {format_duration(cadence)})"
        return f"at least {_percent(measure.at_least)} of stakeholder updates on time{every}"
    return f"{_TIME_TO_RECOVER} within the {measure.target.upper()}"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _timed_detail(what: str, value: timedelta, threshold: timedelta, origin: str) -> str:
    """``acknowledged 9m after STARTEX: within 15m, 6m to spare (40%)``."""
    when = f"{what} {format_duration(abs(value))} {'after' if value >= timedelta(0) else 'before'} {origin}"
    if value <= threshold:
        spare = threshold - value
        share = spare / threshold if threshold > timedelta(0) else 1.0
        return f"{when}: within {format_duration(threshold)}, {format_duration(spare)} to spare ({_percent(share)})"
    over = value - threshold
    beyond = "within twice the threshold" if value <= 2 * threshold else "more than twice the threshold"
    return f"{when}: {format_duration(over)} over {format_duration(threshold)} ({beyond})"


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Kept:
    """Stakeholder updates against the cadence: sent, on time, due but never sent, the longest gap (wall)."""

    sent: int
    on_time: int
    missed: int
    longest_gap: timedelta | None


class _Scorer:
    """Scores the measures of one run's records as of a time."""

    def __init__(self, records: ExerciseRecords, as_of: datetime) -> None:
        self.records = records
        self.ms = records.milestones()
        self.steps = {s.step_id: s for s in records.steps}
        self.ended_at = records.play_ended_at
        self.as_of = as_utc(as_of)

    @property
    def in_play(self) -> bool:
        return self.ended_at is None

    def score(self, measure: Measure | None) -> Score:
        if measure is None:
            return Score("not_scored", "no measure on the timeline: rated by the evaluators")
        if isinstance(measure, MilestoneMeasure):
            return self.milestone(measure)
        if isinstance(measure, StepMeasure):
            return self.step(measure)
        if isinstance(measure, CadenceMeasure):
            return self.cadence(measure)
        return self.target(measure)

    def _origin(self, origin: str) -> datetime | Score:
        """The time a measure counts from, or the not-scored result saying it never happened."""
        at = self.ms.get(origin)
        if at is not None:
            return at
        if self.in_play:
            return Score("not_scored", f"measured from {origin}, which has not been reached yet (still in play)")
        return Score("not_scored", f"measured from {origin}, which never happened")

    def timed(self, what: str, origin: str, origin_at: datetime, at: datetime | None, threshold: timedelta) -> Score:
        """An event that should happen within ``threshold`` of ``origin``: met or missed by the margin rule."""
        label = _origin_text(origin)
        if at is not None:
            value = self.records.exercise_time(at, origin_at)
            outcome: Outcome = "met" if value <= threshold else "missed"
            detail = _timed_detail(what, value, threshold, label)
            return Score(outcome, detail, value=value, threshold=threshold, suggested=suggest_rating(value, threshold))
        early = self._ended_before(origin_at, threshold)
        if early is not None:
            return Score("not_scored", early, threshold=threshold)
        end = self.ended_at or self.as_of
        elapsed = self.records.exercise_time(end, origin_at)
        if self.in_play and elapsed <= 2 * threshold:
            return Score(
                "not_scored",
                f"{what} not reached {format_duration(elapsed)} after {label} (threshold "
                f"{format_duration(threshold)}): still in play",
                threshold=threshold,
            )
        if self.in_play:
            detail = (
                f"{what} not reached {format_duration(elapsed)} after {label}, over twice {format_duration(threshold)}"
            )
        else:
            detail = (
                f"{what} never happened (play ended {format_duration(elapsed)} after {label}; "
                f"threshold {format_duration(threshold)})"
            )
        return Score("missed", detail, threshold=threshold, suggested="U")

    def _ended_before(self, origin_at: datetime, threshold: timedelta) -> str | None:
        """Why an event not (yet) seen is not scored when a person ended play before it was due, else ``None``."""
        if not self.records.ended_early or self.ended_at is None:
            return None
        endex = self.records.exercise_time(self.ended_at)
        due = self.records.exercise_time(origin_at) + threshold
        if endex >= due:
            return None
        return f"play ended before the threshold (ENDEX at {offset_text(endex)}, due by {offset_text(due)})"

    def milestone(self, measure: MilestoneMeasure) -> Score:
        origin_at = self._origin(measure.of)
        if isinstance(origin_at, Score):
            return origin_at
        return self.timed(measure.milestone, measure.of, origin_at, self.ms.get(measure.milestone), measure.within)

    def step(self, measure: StepMeasure) -> Score:
        origin_at = self._origin(measure.of)
        if isinstance(origin_at, Score):
            return origin_at
        what = f"step {measure.step}"
        record = self.steps.get(measure.step)
        status = "not started" if record is None else record.status
        if record is not None and record.status == "skipped":
            return Score("not_scored", f"{what} was skipped (its condition did not hold): not tested")
        cut_short = self.records.ended_early and record is not None and record.status == "cancelled"
        if record is None or record.status not in FINISHED_STEP_STATUSES or cut_short:
            return self._step_unfinished(measure, what, status, origin_at)
        if record.status != "succeeded":
            return Score("missed", f"{what} {record.status.replace('_', ' ')}", threshold=measure.within, suggested="U")
        ended = record.ended_at or record.started_at
        if measure.within is not None:
            return self.timed(f"{what} succeeded", measure.of, origin_at, ended, measure.within)
        when = "" if ended is None else f" {format_duration(self.records.exercise_time(ended))} after STARTEX"
        value = None if ended is None else self.records.exercise_time(ended, origin_at)
        return Score("met", f"{what} succeeded{when}", value=value, suggested="P")

    def _step_unfinished(self, measure: StepMeasure, what: str, status: str, origin_at: datetime) -> Score:
        if measure.within is not None:
            score = self.timed(f"{what} succeeded", measure.of, origin_at, None, measure.within)
            if score.outcome == "missed" and not self.in_play:
                return replace(score, detail=f"{what} did not finish (status {status}) by the end of play")
            return score
        if self.in_play:
            return Score("not_scored", f"{what} has not finished yet (status {status}): still in play")
        if self.records.ended_early and self.ended_at is not None:
            endex = offset_text(self.records.exercise_time(self.ended_at))
            return Score(
                "not_scored", f"play ended before {what} finished (ENDEX at {endex}; the step has no time limit)"
            )
        return Score("missed", f"{what} did not finish (status {status}) by the end of play", suggested="U")

    def cadence(self, measure: CadenceMeasure) -> Score:
        cadence = self.records.targets.cadence
        if cadence is None or cadence <= timedelta(0):
            return Score("not_scored", "the run has no communication cadence to measure updates against")
        kept = self._kept(cadence / self.records.speed)
        every = format_duration(cadence)
        if kept.sent == 0:
            if self.in_play:
                return Score("not_scored", "no stakeholder update sent yet: still in play", at_least=measure.at_least)
            if kept.missed == 0:
                return Score(
                    "not_scored",
                    f"no update was due: play was shorter than the cadence ({every})",
                    at_least=measure.at_least,
                )
            return Score(
                "missed",
                f"no stakeholder update was sent; {kept.missed} were due (every {every})",
                share=0.0,
                at_least=measure.at_least,
                suggested="U",
            )
        due = kept.sent + kept.missed
        share = kept.on_time / due
        gap = (
            ""
            if kept.longest_gap is None
            else f"; longest gap {format_duration(kept.longest_gap * self.records.speed)}"
        )
        detail = (
            f"{kept.on_time} of {due} updates on time ({_percent(share)}, every {every}, {kept.missed} missed), "
            f"at least {_percent(measure.at_least)} required{gap}"
        )
        if self.in_play:
            return Score("not_scored", f"{detail}: still in play", share=share, at_least=measure.at_least)
        outcome: Outcome = "met" if share >= measure.at_least else "missed"
        rating = suggest_cadence_rating(share, measure.at_least, all_on_time=kept.on_time == due)
        return Score(outcome, detail, share=share, at_least=measure.at_least, suggested=rating)

    def _kept(self, cadence: timedelta) -> _Kept:
        """The updates against ``cadence`` (wall clock): sent, on time, due but never sent, the longest gap.

        The first update is due a cadence after declared (else STARTEX), each next one a cadence after
        the one before. A gap longer than the cadence that ends in an update had ⌊gap / cadence⌋ updates
        due in it: that update is the late one, the rest were missed. The gap from the last update to
        the end (resolved or stood_down, else ENDEX; now while in play) had all of its due updates missed.
        """
        anchor = self.ms.get("declared", self.ms["startex"])
        end = self.ms.get("resolved") or self.ms.get("stood_down") or self.ended_at or self.as_of
        on_time = missed = 0
        longest: timedelta | None = None
        previous = anchor
        updates = sorted(as_utc(update) for update in self.records.updates)
        for update in updates:
            gap = update - previous
            if gap <= cadence:
                on_time += 1
            else:
                missed += gap // cadence - 1
            if gap > timedelta(0) and (longest is None or gap > longest):
                longest = gap
            previous = max(previous, update)
        if end > previous:
            gap = as_utc(end) - previous
            if gap > cadence:
                missed += gap // cadence
            if longest is None or gap > longest:
                longest = gap
        return _Kept(sent=len(updates), on_time=on_time, missed=missed, longest_gap=longest)

    def target(self, measure: TargetMeasure) -> Score:
        name = measure.target.upper()
        threshold = self.records.targets.rto if measure.target == "rto" else self.records.targets.mtpd
        if threshold is None:
            return Score("not_scored", f"the run has no {name} stored to measure against")
        basis = "impact_started" if "impact_started" in self.ms else "startex"
        score = self.timed("recovered", basis, self.ms[basis], self.ms.get("recovered"), threshold)
        from_ = "impact_started" if basis == "impact_started" else "STARTEX (impact_started not marked)"
        detail = f"{_TIME_TO_RECOVER} against the {name}, from {from_}: {score.detail}"
        return replace(score, detail=detail, basis=basis)


def evaluate(exercise: Exercise, records: ExerciseRecords, *, as_of: datetime) -> Evaluation:
    """Score every objective of ``exercise`` on the run's records and put the evaluators' ratings beside.

    Args:
        exercise: the exercise the run played.
        records: the run's records (:func:`read_records`).
        as_of: now, for an exercise still in play (what has not happened yet may still happen).

    Returns:
        One result per objective, in the exercise's order, and the hot-wash notes.
    """
    scorer = _Scorer(records, as_of)
    by_objective: dict[str, list[ObservationRecord]] = {}
    for observation in sorted(records.observations, key=lambda o: o.id):
        if observation.objective_id is not None and observation.kind != "hotwash":
            by_objective.setdefault(observation.objective_id, []).append(observation)
    results = []
    for objective in exercise.objectives:
        observations = tuple(by_objective.get(objective.id, ()))
        score = scorer.score(objective.measure)
        rated = next((o for o in reversed(observations) if o.rating is not None), None)
        results.append(
            ObjectiveResult(
                objective=objective,
                measure=measure_text(objective.measure, cadence=records.targets.cadence),
                score=score,
                rating=rated.rating if rated is not None else score.suggested,  # type: ignore[arg-type]
                rated_by=rated.by if rated is not None else None,
                rated_role=rated.role if rated is not None else None,
                observations=observations,
            )
        )
    hotwash = tuple(o for o in sorted(records.observations, key=lambda o: o.id) if o.kind == "hotwash")
    return Evaluation(objectives=tuple(results), hotwash=hotwash, in_play=scorer.in_play, as_of=scorer.as_of)


# --------------------------------------------------------------------------- the inject timeline


@dataclass(frozen=True)
class InjectRow:
    """One MSEL inject as played: when due and delivered, to whom, and whether the expected action came.

    Attributes:
        number: the inject's number.
        due: its offset from STARTEX (exercise time).
        status: ``delivered``, ``skipped`` or ``not delivered`` (play ended first).
        at: when it was delivered or skipped (wall clock); ``None`` when not.
        at_offset: the same, as an exercise-time offset from STARTEX.
        recipient: the role it went to.
        delivery: channel, dm or console.
        message: the message as delivered (else as written in the MSEL).
        expected_action: what the recipient is expected to do (its templates rendered when the
            timeline was made with the loaded exercise).
        expects: what on the timeline shows the action came (``step assign-roles``), if anything.
        response_offset: when that happened, as an exercise-time offset from STARTEX; only for a
            delivered inject.
        response: whether and when the expected action came, in words; for an inject not sent,
            that it was not sent and why (``not sent (condition unless step x: it had happened)``).
        objective: the objective the inject tests.
        reason: why it was skipped.
    """

    number: int
    due: timedelta
    status: str
    at: datetime | None
    at_offset: timedelta | None
    recipient: str
    delivery: str
    message: str
    expected_action: str
    expects: str | None
    response_offset: timedelta | None
    response: str
    objective: str | None
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """The row as JSON: offsets in seconds."""
        return {
            "number": self.number,
            "due_s": self.due.total_seconds(),
            "status": self.status,
            "at": None if self.at is None else self.at.isoformat(),
            "at_offset_s": _seconds(self.at_offset),
            "recipient": self.recipient,
            "delivery": self.delivery,
            "message": self.message,
            "expected_action": self.expected_action,
            "expects": self.expects,
            "response_offset_s": _seconds(self.response_offset),
            "response": self.response,
            "objective": self.objective,
            "reason": self.reason,
        }


def _happened_at(inject: Inject, ms: dict[str, datetime], steps: dict[str, StepRecord]) -> datetime | None:
    expects = inject.expects
    if expects is None:
        return None
    if expects.milestone is not None:
        return ms.get(expects.milestone)
    record = steps.get(expects.step or "")
    if record is None or record.status != "succeeded":
        return None
    return record.ended_at


def _response(
    inject: Inject, record: InjectRecord | None, came: timedelta | None, delivered: timedelta | None, in_play: bool
) -> str:
    if record is None:
        return "not sent yet" if in_play else "not sent (play ended first)"
    if record.status != "delivered":
        reason = record.reason or ""
        if inject.contingency is not None and reason.startswith(inject.contingency.label):
            return f"not sent (condition {reason})"
        return "not sent (play ended first)" if reason.startswith(_ENDEX_SKIP) else f"not sent ({reason or 'skipped'})"
    if inject.expects is None:
        return "not tracked (the inject names no step or milestone it expects)"
    label = inject.expects.label
    if came is None:
        return f"not seen: {label} {'not yet' if in_play else 'never'} done"
    relative = ""
    if delivered is not None:
        gap = came - delivered
        relative = (
            f", {format_duration(gap)} after delivery"
            if gap >= timedelta(0)
            else f", {format_duration(-gap)} before delivery"
        )
    return f"{label} at {offset_text(came)}{relative}"


def inject_context(loaded: LoadedExercise, records: ExerciseRecords, inject: Inject) -> dict[str, object]:
    """What an inject's message and expected action may use, as the play renders the message (exercise,
    inject, params, run, steps, ...), from the run's records: each step's status and output as recorded."""
    run = records.run
    steps = {planned.id: StepState() for planned in Plan.build(loaded.runbook.runbook).steps}
    for record in records.steps:
        if record.step_id in steps:
            steps[record.step_id] = StepState(status=record.status, output=record.output)
    context = RunContext(
        loaded=loaded.runbook,
        catalog=loaded.catalog,
        run=RunInfo(id=run.id, mode=run.mode, started_at=run.started_at, triggered_by=run.triggered_by),
        params=dict(run.parameters),
        steps=steps,
    )
    exercise = loaded.exercise
    return {
        **context.template_context(),
        "exercise": {"id": exercise.id, "title": exercise.title},
        "inject": {"number": inject.number, "to": inject.to},
    }


def render_expected_action(loaded: LoadedExercise, records: ExerciseRecords, inject: Inject) -> str:
    """An inject's expected action with its templates rendered (as written, with the reason, when one fails)."""
    text = inject.expected_action.strip()
    try:
        return render(text, inject_context(loaded, records, inject)).strip()
    except TemplateRenderError as exc:
        return f"{text} (template failed: {exc.reason})"


def inject_timeline(
    exercise: Exercise, records: ExerciseRecords, *, loaded: LoadedExercise | None = None
) -> list[InjectRow]:
    """The MSEL as played, in delivery order (injects recorded but no longer in the file come last).

    With ``loaded`` (the exercise with its runbook and catalog), each expected action is rendered as
    the inject message is (:func:`render_expected_action`); without it, it is shown as written.
    """
    played = {i.number: i for i in records.injects}
    ms = records.milestones()
    steps = {s.step_id: s for s in records.steps}
    in_play = records.play_ended_at is None
    rows = []
    for inject in exercise.injects():
        record = played.pop(inject.number, None)
        at_offset = None if record is None else records.exercise_time(record.at)
        delivered = at_offset if record is not None and record.status == "delivered" else None
        happened = _happened_at(inject, ms, steps) if delivered is not None else None
        came = None if happened is None else records.exercise_time(happened)
        rows.append(
            InjectRow(
                number=inject.number,
                due=inject.at,
                status=record.status if record is not None else "not delivered",
                at=None if record is None else record.at,
                at_offset=at_offset,
                recipient=inject.to,
                delivery=inject.delivery,
                message=record.message if record is not None else inject.message,
                expected_action=inject.expected_action
                if loaded is None
                else render_expected_action(loaded, records, inject),
                expects=None if inject.expects is None else inject.expects.label,
                response_offset=came,
                response=_response(inject, record, came, delivered, in_play),
                objective=inject.objective,
                reason=None if record is None else record.reason,
            )
        )
    for record in sorted(played.values(), key=lambda r: (r.at, r.number)):
        rows.append(
            InjectRow(
                number=record.number,
                due=records.exercise_time(record.due_at),
                status=record.status,
                at=record.at,
                at_offset=records.exercise_time(record.at),
                recipient=record.recipient,
                delivery=record.delivery,
                message=record.message,
                expected_action="-",
                expects=None,
                response_offset=None,
                response="not tracked: this inject is no longer in the exercise file",
                objective=None,
                reason=record.reason,
            )
        )
    return rows


# --------------------------------------------------------------------------- reading the records


def require_exercise_run(store: Store, run: RunRecord, *, why: str) -> ExerciseRunRecord:
    """The exercise ``run`` played.

    Raises:
        InputError: it is not an exercise run (``why`` says what needed one).
    """
    found = store.get_exercise_run(run.id)
    if found is None:
        played = "an exercise run with no exercise recorded" if run.mode == "exercise" else f"a {run.mode} run"
        raise InputError(f"run {run.short_id} is {played}, not a run of an exercise: {why}")
    return found


def load_played_exercise(exercise_run: ExerciseRunRecord, *, library_root: Path) -> LoadedExercise:
    """The exercise a run played: from the file it was played from when that is still there, else by id.

    Raises:
        InputError: the exercise is no longer in the library.
        SpecError: it (or the runbook library) is invalid now.
    """
    recorded = Path(exercise_run.exercise_path)
    candidates = (
        [recorded]
        if recorded.is_absolute()
        else [recorded, library_root / recorded, library_root / EXERCISES_DIR / recorded.name]
    )
    for candidate in candidates:
        if candidate.is_file():
            loaded = load_exercise(str(candidate), library_root=library_root)
            if loaded.exercise.id == exercise_run.exercise_id:
                return loaded
    try:
        return load_exercise(exercise_run.exercise_id, library_root=library_root)
    except InputError as exc:
        raise InputError(
            f"run {exercise_run.run_id[:8]} played exercise '{exercise_run.exercise_id}' "
            f"({exercise_run.exercise_path}), which is not in the library any more: {exc}"
        ) from exc


def read_records(
    store: Store, run: RunRecord, exercise_run: ExerciseRunRecord, loaded: LoadedExercise
) -> ExerciseRecords:
    """Everything :func:`evaluate` needs about one exercise run, from the store.

    The targets are those stored with the run; a run stored without any is measured against the
    runbook's targets as they are now.
    """
    targets = run.targets
    if targets.empty:
        targets = runbook_targets(loaded.runbook, loaded.catalog)
    rows = store.list_timeline_rows(run_ids=[run.id])
    return ExerciseRecords(
        run=run,
        exercise_run=exercise_run,
        steps=tuple(store.get_steps(run.id)),
        marks=tuple(store.get_marks(run.id)),
        injects=tuple(store.get_injects(run.id)),
        observations=tuple(store.get_observations(run.id)),
        updates=tuple(rows.updates.get(run.id, ())),
        targets=targets,
    )


def unknown_objective(objective_id: str, exercise: Exercise) -> str:
    """``exercise x has no objective 'y' (did you mean 'z'?); objectives: a, b``."""
    ids = [o.id for o in exercise.objectives]
    close = get_close_matches(objective_id, ids, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"exercise {exercise.id} has no objective '{objective_id}'{hint}; its objectives: {', '.join(ids)}"


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()
