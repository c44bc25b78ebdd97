"""The exercise programme: per service, the last exercise held and the next scheduled, and the gaps.

What ``bcm exercise plan`` shows. Services come by tier (tier 1 first). An exercise is *held*
when a run in mode ``exercise`` started (``bcm exercise run``, a scheduled exercise deployment, or
``bcm run --mode exercise``); one stopped early (``bcm exercise end``) still counts as held and
says so. A run counts for the services recorded on it when it started.

The gaps, one line each, in this order:

- ``not-exercised``: a tier-1 service with no exercise run in the last 12 months;
- ``never-exercised``: a runbook with no exercise run at all;
- ``objective-missed-twice``: an objective missed in both of an exercise's last two runs;
- ``no-runbook``: a service no runbook covers;
- ``no-exercise``: a runbook no exercise file tests;
- ``unreadable-schedule``: an exercise whose ``schedule`` cannot be computed.

The next scheduled time comes from the exercise file's ``schedule`` (cron and time zone), the one
source of the exercise deployments' schedules in ``prefect.yaml`` (:func:`exercise_deployment` is
the entry ``tests/flows/test_prefect_yaml.py`` expects), computed with ``cronsim`` as Prefect's
scheduler computes it: five fields, in the schedule's zone (the test compares the two). The library
refuses a schedule that cannot be computed when it loads; the gap is there should one get through.

Objectives are scored by :mod:`bcm.exercises.evaluation` (:class:`StoreScorer`): by each
objective's final rating, the latest an evaluator gave or else the one the timeline suggests, P or
S met, M or U missed, no rating not scored. Only the runs the plan shows or compares are scored: an
exercise's last run and its last two finished ones, and each service's last run.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from bcm.exercises.evaluation import Evaluation, evaluate, read_records
from bcm.exercises.library import ExerciseLibrary, LoadedExercise
from bcm.exercises.models import Exercise, Schedule
from bcm.exercises.play import PLAYED_OUT
from bcm.spec.library import Library
from bcm.spec.models import Service
from bcm.store import ExerciseRunRecord, RunRecord, Store
from bcm.vocabulary import ACTIVE_RUN_STATUSES

__all__ = [
    "COVERAGE_MONTHS",
    "GAP_KINDS",
    "PLAYED_OUT",
    "ExercisePlan",
    "Gap",
    "GapKind",
    "HeldExercise",
    "NextExercise",
    "Programme",
    "RunScore",
    "ScheduleError",
    "Scorer",
    "ServicePlan",
    "StoreScorer",
    "exercise_deployment",
    "next_fire",
    "plan_programme",
    "programme_document",
    "read_programme",
    "run_score",
]

#: A tier-1 service must have been exercised within this many months.
COVERAGE_MONTHS: Final = 12
#: The cron fields Prefect's scheduler reads (no seconds field).
CRON_FIELDS: Final = 5

GapKind = Literal[
    "not-exercised",
    "never-exercised",
    "objective-missed-twice",
    "no-runbook",
    "no-exercise",
    "unreadable-schedule",
]
GAP_KINDS: tuple[GapKind, ...] = get_args(GapKind)

_GOOD_RATINGS: Final = frozenset({"P", "S"})


# --------------------------------------------------------------------------- schedules


class ScheduleError(ValueError):
    """An exercise's ``schedule`` cannot be computed (the message says why)."""


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The first time after ``after`` that ``schedule`` fires, in UTC.

    Raises:
        ScheduleError: the cron expression or the time zone cannot be read, or it never fires.
    """
    fields = schedule.cron.split()
    if len(fields) != CRON_FIELDS:
        raise ScheduleError(
            f"cron '{schedule.cron}' has {len(fields)} fields: write five (minute hour day-of-month month day-of-week)"
        )
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone '{schedule.timezone}': use an IANA name such as Europe/London"
        ) from None
    try:
        fire = next(CronSim(schedule.cron, after.astimezone(zone)))
    except CronSimError as exc:
        raise ScheduleError(f"cron '{schedule.cron}': {str(exc).lower()}") from None
    except StopIteration:
        raise ScheduleError(f"cron '{schedule.cron}' never fires") from None
    return fire.astimezone(UTC)


def exercise_deployment(exercise: Exercise) -> dict[str, Any] | None:
    """The ``prefect.yaml`` deployment of a scheduled exercise; ``None`` for an unscheduled one."""
    if exercise.schedule is None:
        return None
    return {
        "name": f"exercise-{exercise.id}",
        "entrypoint": "flows/exercise.py:run_exercise",
        "description": (
            f"Scheduled {exercise.type} exercise {exercise.id} of the {exercise.runbook} runbook "
            "(the schedule is the exercise file's)."
        ),
        "tags": ["exercise", f"runbook:{exercise.runbook}"],
        "parameters": {"exercise": exercise.id, "speed": 1, "auto_respond": False, "triggered_by": "schedule"},
        "schedules": [{"cron": exercise.schedule.cron, "timezone": exercise.schedule.timezone}],
        "work_pool": {"name": "bcm"},
    }


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class RunScore:
    """Which objectives of an exercise run were met, missed, or could not be scored."""

    met: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()
    unscored: tuple[str, ...] = ()

    def summary(self) -> str:
        """``objectives 4 met, 1 missed (load-safe), 1 not scored``."""
        parts = [f"{len(self.met)} met"]
        if self.missed:
            parts.append(f"{len(self.missed)} missed ({', '.join(self.missed)})")
        else:
            parts.append("0 missed")
        if self.unscored:
            parts.append(f"{len(self.unscored)} not scored")
        return "objectives " + ", ".join(parts)


#: Scores one exercise run: the run, the exercise run record, the exercise (as in the library now).
Scorer = Callable[[RunRecord, ExerciseRunRecord, LoadedExercise], RunScore]


def run_score(evaluation: Evaluation) -> RunScore:
    """Met or missed by each objective's final rating (:mod:`bcm.exercises.evaluation`).

    The final rating is the latest an evaluator gave, else the one the timeline suggests: P or S
    is met, M or U missed; an objective with neither (no measure and no rating, or not scored
    yet) is not scored.
    """
    verdicts: dict[str, list[str]] = {"met": [], "missed": [], "unscored": []}
    for result in evaluation.objectives:
        verdict = "unscored" if result.rating is None else "met" if result.rating in _GOOD_RATINGS else "missed"
        verdicts[verdict].append(result.objective.id)
    return RunScore(tuple(verdicts["met"]), tuple(verdicts["missed"]), tuple(verdicts["unscored"]))


class StoreScorer:
    """Scores exercise runs from the store's records with :func:`bcm.exercises.evaluation.evaluate`."""

    def __init__(self, store: Store, *, as_of: datetime) -> None:
        self.store = store
        self.as_of = as_of

    def __call__(self, run: RunRecord, record: ExerciseRunRecord, loaded: LoadedExercise) -> RunScore:
        records = read_records(self.store, run, record, loaded)
        return run_score(evaluate(loaded.exercise, records, as_of=self.as_of))


# --------------------------------------------------------------------------- the programme


@dataclass(frozen=True)
class HeldExercise:
    """An exercise run: the run, the exercise it played (none for ``bcm run --mode exercise``), its score."""

    run: RunRecord
    record: ExerciseRunRecord | None = None
    score: RunScore | None = None

    @property
    def at(self) -> datetime:
        """STARTEX, or when the run started."""
        return self.record.startex_at if self.record is not None else self.run.started_at

    @property
    def exercise_id(self) -> str | None:
        """The exercise played; ``None`` for a runbook run in exercise mode without an exercise file."""
        return self.record.exercise_id if self.record is not None else None

    @property
    def stopped_early(self) -> bool:
        """Ended before the exercise clock ran out (``bcm exercise end``): ENDEX not ``played out``."""
        ended_by = self.record.ended_by if self.record is not None else None
        return ended_by is not None and ended_by != PLAYED_OUT

    @property
    def finished(self) -> bool:
        """ENDEX is recorded or the run has ended."""
        if self.record is not None and self.record.endex_at is not None:
            return True
        return self.run.status not in ACTIVE_RUN_STATUSES

    @property
    def label(self) -> str:
        """The exercise's id, or ``runbook <id> (exercise mode)``."""
        return self.exercise_id or f"runbook {self.run.runbook_id} (exercise mode)"

    def result(self) -> str:
        """``succeeded, stopped early by Ada Lovelace; objectives 4 met, 1 missed (load-safe)``."""
        text = "in progress" if self.run.status in ACTIVE_RUN_STATUSES else self.run.status
        if self.stopped_early and self.record is not None:
            text += f", stopped early by {self.record.ended_by}"
        if self.score is not None:
            text += f"; {self.score.summary()}"
        return text


@dataclass(frozen=True)
class NextExercise:
    """The next time an exercise's schedule fires."""

    exercise_id: str
    runbook_id: str
    at: datetime
    schedule: Schedule


@dataclass(frozen=True)
class ExercisePlan:
    """One exercise file: its runs (oldest first), its next scheduled time or why it has none."""

    loaded: LoadedExercise
    held: tuple[HeldExercise, ...] = ()
    next: NextExercise | None = None
    schedule_problem: str | None = None

    @property
    def exercise(self) -> Exercise:
        return self.loaded.exercise

    @property
    def last(self) -> HeldExercise | None:
        return self.held[-1] if self.held else None


@dataclass(frozen=True)
class ServicePlan:
    """One service: the runbooks covering it, the exercises testing them, the last and next exercise."""

    service: Service
    runbooks: tuple[str, ...]
    exercises: tuple[str, ...]
    last: HeldExercise | None
    next: NextExercise | None


@dataclass(frozen=True)
class Gap:
    """One gap in the programme: its kind, what it is about (a service, runbook or exercise id), a line."""

    kind: GapKind
    subject: str
    line: str


@dataclass(frozen=True)
class Programme:
    """The exercise programme as of a time."""

    as_of: datetime
    covered_since: datetime
    services: tuple[ServicePlan, ...]
    exercises: tuple[ExercisePlan, ...]
    gaps: tuple[Gap, ...] = field(default=())


def read_programme(
    store: Store,
    library: Library,
    exercises: ExerciseLibrary,
    *,
    as_of: datetime,
    tz: tzinfo = UTC,
    scorer: Scorer | None = None,
) -> Programme:
    """The programme from the store's exercise runs (``scorer`` defaults to :class:`StoreScorer`)."""
    runs = store.list_runs(mode="exercise")
    records = store.list_exercise_runs()
    scorer = scorer or StoreScorer(store, as_of=as_of)
    return plan_programme(library, exercises, runs, records, as_of=as_of, tz=tz, scorer=scorer)


def plan_programme(
    library: Library,
    exercises: ExerciseLibrary,
    runs: Iterable[RunRecord],
    records: Iterable[ExerciseRunRecord],
    *,
    as_of: datetime,
    tz: tzinfo = UTC,
    scorer: Scorer | None = None,
) -> Programme:
    """The programme from exercise runs and their exercise records (runs of other modes are ignored).

    Args:
        tz: the zone the dates in the gap lines are written in.
        scorer: scores the runs whose results are shown or compared; ``None`` scores none.
    """
    by_run = {record.run_id: record for record in records}
    held = sorted(
        (HeldExercise(run, by_run.get(run.id)) for run in runs if run.mode == "exercise"),
        key=lambda h: (h.at, h.run.id),
    )
    held = [h for h in held if h.at <= as_of]
    scores = _Scores(exercises.exercises, scorer)
    plans = tuple(_exercise_plan(loaded, held, as_of, scores) for loaded in _by_id(exercises.exercises))
    services = tuple(_service_plan(service, library, plans, held, scores) for service in _by_tier(library))
    covered_since = _months_before(as_of, COVERAGE_MONTHS)
    gaps = _gaps(library, plans, services, held, covered_since, tz)
    return Programme(as_of, covered_since, services, plans, gaps)


class _Scores:
    """Scores exercise runs once each, and only those the programme shows or compares."""

    def __init__(self, exercises: Mapping[str, LoadedExercise], scorer: Scorer | None) -> None:
        self.exercises = exercises
        self.scorer = scorer
        self.done: dict[str, HeldExercise] = {}

    def __call__(self, held: HeldExercise) -> HeldExercise:
        record = held.record
        if self.scorer is None or record is None or record.exercise_id not in self.exercises:
            return held
        if held.run.id not in self.done:
            score = self.scorer(held.run, record, self.exercises[record.exercise_id])
            self.done[held.run.id] = replace(held, score=score)
        return self.done[held.run.id]


def _by_id(exercises: Mapping[str, LoadedExercise]) -> list[LoadedExercise]:
    return [exercises[key] for key in sorted(exercises)]


def _by_tier(library: Library) -> list[Service]:
    return sorted(library.catalog.services.values(), key=lambda s: (s.tier, s.id))


def _months_before(at: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the month's last day when shorter)."""
    year, month = divmod(at.year * 12 + at.month - 1 - months, 12)
    month += 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def _exercise_plan(
    loaded: LoadedExercise, held: Sequence[HeldExercise], as_of: datetime, scores: _Scores
) -> ExercisePlan:
    mine = [h for h in held if h.exercise_id == loaded.exercise.id]
    # Scored: the last run (shown) and the last two finished ones (compared for missed objectives).
    finished = [i for i, h in enumerate(mine) if h.finished][-2:]
    for i in {*finished, len(mine) - 1} if mine else ():
        mine[i] = scores(mine[i])
    schedule = loaded.exercise.schedule
    if schedule is None:
        return ExercisePlan(loaded, tuple(mine))
    try:
        at = next_fire(schedule, as_of)
    except ScheduleError as exc:
        return ExercisePlan(loaded, tuple(mine), schedule_problem=str(exc))
    upcoming = NextExercise(loaded.exercise.id, loaded.exercise.runbook, at, schedule)
    return ExercisePlan(loaded, tuple(mine), next=upcoming)


def _service_plan(
    service: Service,
    library: Library,
    plans: Sequence[ExercisePlan],
    held: Sequence[HeldExercise],
    scores: _Scores,
) -> ServicePlan:
    runbooks = tuple(sorted(rid for rid, lr in library.runbooks.items() if service.id in lr.runbook.services))
    testing = [p for p in plans if p.exercise.runbook in runbooks]
    mine = [h for h in held if service.id in h.run.services]
    upcoming = [p.next for p in testing if p.next is not None]
    return ServicePlan(
        service=service,
        runbooks=runbooks,
        exercises=tuple(p.exercise.id for p in testing),
        last=scores(mine[-1]) if mine else None,
        next=min(upcoming, key=lambda n: (n.at, n.exercise_id)) if upcoming else None,
    )


def _day(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).date().isoformat()


def _gaps(
    library: Library,
    plans: Sequence[ExercisePlan],
    services: Sequence[ServicePlan],
    held: Sequence[HeldExercise],
    covered_since: datetime,
    tz: tzinfo,
) -> tuple[Gap, ...]:
    """Every gap, in the order of :data:`GAP_KINDS`."""
    exercised = {h.run.runbook_id for h in held}
    tested = {plan.exercise.runbook for plan in plans}
    return (
        *(_not_exercised(sp, tz) for sp in services if _stale(sp, covered_since)),
        *(
            Gap("never-exercised", rid, f"runbook {rid}: never exercised (no exercise run)")
            for rid in sorted(set(library.runbooks) - exercised)
        ),
        *(gap for plan in plans for gap in _missed_twice(plan, tz)),
        *(
            Gap(
                "no-runbook",
                sp.service.id,
                f"service {sp.service.id} ({sp.service.name}, tier {sp.service.tier}): no runbook covers it",
            )
            for sp in services
            if not sp.runbooks
        ),
        *(
            Gap("no-exercise", rid, f"runbook {rid}: no exercise file tests it")
            for rid in sorted(set(library.runbooks) - tested)
        ),
        *(
            Gap(
                "unreadable-schedule",
                plan.exercise.id,
                f"exercise {plan.exercise.id}: schedule cannot be computed: {plan.schedule_problem}",
            )
            for plan in plans
            if plan.schedule_problem is not None
        ),
    )


def _stale(sp: ServicePlan, covered_since: datetime) -> bool:
    """A tier-1 service not exercised since ``covered_since``."""
    return sp.service.tier == 1 and (sp.last is None or sp.last.at < covered_since)


def _not_exercised(sp: ServicePlan, tz: tzinfo) -> Gap:
    last = f"last exercised {_day(sp.last.at, tz)}" if sp.last is not None else "never exercised"
    return Gap(
        "not-exercised",
        sp.service.id,
        f"tier-1 service {sp.service.id} ({sp.service.name}): not exercised in the last "
        f"{COVERAGE_MONTHS} months ({last})",
    )


def _missed_twice(plan: ExercisePlan, tz: tzinfo) -> list[Gap]:
    """An objective missed in both of the exercise's last two finished runs."""
    finished = [h for h in plan.held if h.finished]
    if len(finished) < 2:
        return []
    previous, last = finished[-2:]
    if previous.score is None or last.score is None:
        return []
    when = f"{_day(previous.at, tz)} and {_day(last.at, tz)}"
    return [
        Gap(
            "objective-missed-twice",
            plan.exercise.id,
            f"exercise {plan.exercise.id}: objective {o.id} missed in its last two runs ({when})",
        )
        for o in plan.exercise.objectives
        if o.id in previous.score.missed and o.id in last.score.missed
    ]


# --------------------------------------------------------------------------- JSON


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _held_json(held: HeldExercise | None) -> dict[str, Any] | None:
    if held is None:
        return None
    record = held.record
    score = held.score
    return {
        "run_id": held.run.id,
        "exercise": held.exercise_id,
        "runbook": held.run.runbook_id,
        "startex_at": _time(held.at),
        "endex_at": _time(record.endex_at if record is not None else held.run.ended_at),
        "status": held.run.status,
        "stopped_early": held.stopped_early,
        "ended_by": record.ended_by if record is not None else None,
        "objectives": None
        if score is None
        else {"met": list(score.met), "missed": list(score.missed), "unscored": list(score.unscored)},
        "result": held.result(),
    }


def _next_json(upcoming: NextExercise | None) -> dict[str, Any] | None:
    if upcoming is None:
        return None
    return {
        "exercise": upcoming.exercise_id,
        "runbook": upcoming.runbook_id,
        "at": _time(upcoming.at),
        "cron": upcoming.schedule.cron,
        "timezone": upcoming.schedule.timezone,
    }


def programme_document(programme: Programme) -> dict[str, Any]:
    """The programme as one JSON document: services by tier, exercises, gaps (times in UTC)."""
    return {
        "as_of": _time(programme.as_of),
        "exercised_since": _time(programme.covered_since),
        "services": [
            {
                "id": sp.service.id,
                "name": sp.service.name,
                "tier": sp.service.tier,
                "runbooks": list(sp.runbooks),
                "exercises": list(sp.exercises),
                "last": _held_json(sp.last),
                "next": _next_json(sp.next),
            }
            for sp in programme.services
        ],
        "exercises": [
            {
                "id": plan.exercise.id,
                "title": plan.exercise.title,
                "runbook": plan.exercise.runbook,
                "type": plan.exercise.type,
                "schedule": None
                if plan.exercise.schedule is None
                else {"cron": plan.exercise.schedule.cron, "timezone": plan.exercise.schedule.timezone},
                "runs": len(plan.held),
                "last": _held_json(plan.last),
                "next": _next_json(plan.next),
                "schedule_problem": plan.schedule_problem,
            }
            for plan in programme.exercises
        ],
        "gaps": [{"kind": gap.kind, "subject": gap.subject, "line": gap.line} for gap in programme.gaps],
    }
