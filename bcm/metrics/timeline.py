"""The inputs of the figures: timelines of runs, and the rules for reading their milestones.

The helpers here are shared by :func:`bcm.metrics.run_figures` and the summaries over many runs,
so both follow the same rules (see the package docstring, :mod:`bcm.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bcm.clock import as_utc
from bcm.vocabulary import DISRUPTION_MILESTONES, EXERCISE_MILESTONES, ExecutionMode

__all__ = [
    "EXERCISE_MILESTONES",
    "MILESTONES",
    "GroupBy",
    "Mark",
    "Mode",
    "RecoveryBasis",
    "StepTiming",
    "Timeline",
]

Mode = ExecutionMode
RecoveryBasis = Literal["impact_started", "declared"]
GroupBy = Literal["service", "runbook"]

#: Milestones of a disruption, real or exercised, in their usual order (from the vocabulary).
MILESTONES: tuple[str, ...] = DISRUPTION_MILESTONES


# Inputs


@dataclass(frozen=True, slots=True)
class Mark:
    """One milestone reached during a run.

    Attributes:
        milestone: the milestone's name, one of :data:`MILESTONES` or :data:`EXERCISE_MILESTONES`.
        at: when it was reached; timezone-aware, any UTC offset.
    """

    milestone: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StepTiming:
    """When one runbook step ran.

    Attributes:
        step_id: the step's id in its runbook.
        phase: the phase the step belongs to (e.g. ``respond``, ``recover``).
        kind: the step's kind (e.g. ``command``, ``approve``, ``manual``).
        status: the step's final or current status as the engine records it.
        started_at: when the step started; ``None`` when it never started.
        ended_at: when the step ended; ``None`` while it runs or when it never started.
        waited_s: seconds spent waiting for a person (an approval, a manual task).
    """

    step_id: str
    phase: str
    kind: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    waited_s: float | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything the figures of one run are computed from.

    Attributes:
        run_id: the run's id.
        runbook_id: the runbook that was run; ``None`` for a disruption handled without one.
        services: the services the run concerns; a run counts under each of them.
        mode: ``"real"`` for a disruption, ``"exercise"`` for an exercise.
        marks: the milestones reached.
        steps: the runbook steps' timings.
        rto: the recovery time objective that applied (the runbook's or the service's).
        rpo: the recovery point objective that applied.
        mtpd: the maximum tolerable period of disruption.
        data_loss: the known data-loss window; ``None`` when not (yet) known.
        cadence: the promised interval between stakeholder status updates.
        updates: when stakeholder status updates were sent.
        started_at: when the run started.
        ended_at: when the run ended; ``None`` while it runs.
        speed: how many times faster than real time the run was played: an exercise run with
            ``bcm exercise run --speed N`` has N, every other run 1.0. Every duration measured on
            the run (milestone to milestone, steps, waits for people, gaps between updates) is
            multiplied by it, so exercise figures are in exercise time; the times themselves
            (``marks``, ``updates``, ...) stay as recorded, on the wall clock.
    """

    run_id: str
    runbook_id: str | None
    services: tuple[str, ...]
    mode: Mode
    marks: tuple[Mark, ...]
    steps: tuple[StepTiming, ...] = ()
    rto: timedelta | None = None
    rpo: timedelta | None = None
    mtpd: timedelta | None = None
    data_loss: timedelta | None = None
    cadence: timedelta | None = None
    updates: tuple[datetime, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    speed: float = 1.0


# ---------------------------------------------------------------------------------------------
# Helpers shared by run_figures and the aggregations, so both follow the same rules


def _utc(value: datetime) -> datetime:
    # Fast path: the store records UTC already; as_utc also rejects naive times.
    return value if value.tzinfo is UTC else as_utc(value)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat()


def _milestones(marks: Iterable[Mark]) -> dict[str, datetime]:
    """Map each milestone to its earliest time, in UTC."""
    found: dict[str, datetime] = {}
    for mark in marks:
        at = mark.at
        if at.tzinfo is not UTC:
            at = as_utc(at)
        previous = found.get(mark.milestone)
        if previous is None or at < previous:
            found[mark.milestone] = at
    return found


def _names(names: Sequence[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _missing(names: Sequence[str]) -> str:
    return f"no {_names(names)} milestone recorded"


def _out_of_order(start: str, start_at: datetime, end: str, end_at: datetime) -> str:
    return f"out of order: '{end}' at {end_at.isoformat()} is before '{start}' at {start_at.isoformat()}"


def _interval(ms: dict[str, datetime], start: str, end: str) -> timedelta | str:
    """Return ``end - start``, or the reason it is unknown."""
    start_at = ms.get(start)
    end_at = ms.get(end)
    if start_at is None or end_at is None:
        return _missing([name for name, at in ((start, start_at), (end, end_at)) if at is None])
    if end_at < start_at:
        return _out_of_order(start, start_at, end, end_at)
    return end_at - start_at


def _recovery_basis(ms: dict[str, datetime]) -> RecoveryBasis | None:
    if "impact_started" in ms:
        return "impact_started"
    if "declared" in ms:
        return "declared"
    return None


def _from_basis(ms: dict[str, datetime], basis: RecoveryBasis | None, end: str) -> timedelta | str:
    if basis is None:
        return _missing(["impact_started", "declared"] + ([] if end in ms else [end]))
    return _interval(ms, basis, end)
