"""Figures for one run: the figures table and :func:`run_figures`.

The definitions and rules are in the package docstring, :mod:`bcm.metrics`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bcm.durations import format_duration
from bcm.metrics.timeline import (
    EXERCISE_MILESTONES,
    MILESTONES,
    Mode,
    RecoveryBasis,
    StepTiming,
    Timeline,
    _from_basis,
    _interval,
    _iso,
    _milestones,
    _recovery_basis,
    _utc,
)

__all__ = [
    "EXERCISE_TIME_NOTE",
    "FIGURES",
    "SUMMARISED_FIGURES",
    "CommunicationFigures",
    "Figure",
    "FigureDefinition",
    "RunFigures",
    "run_figures",
]


@dataclass(frozen=True)
class FigureDefinition:
    """One "time to ..." figure, defined once for every place that shows it.

    The CLI table, its CSV and JSON, the Prefect artifacts and events and the reports all read
    names, labels and definitions from :data:`FIGURES`.

    Attributes:
        key: the name in JSON and CSV (``time_to_detect``; ``time_to_detect_s`` for seconds).
        attribute: the field of :class:`RunFigures` (and :class:`GroupSummary`, when summarised).
        label: what people read (``time to detect``).
        start: the milestone it counts from.
        end: the milestone it counts to.
        summarised: whether per-service summaries (``bcm metrics``) report it.
        unit: the unit of the value in JSON and CSV.
    """

    key: str
    attribute: str
    label: str
    start: str
    end: str
    summarised: bool = True
    unit: str = "seconds"

    @property
    def definition(self) -> str:
        """``impact_started → detected``: what the figure measures."""
        return f"{self.start} → {self.end}"


#: The "time to ..." figures, in timeline order. None is called "MTTR".
FIGURES: tuple[FigureDefinition, ...] = (
    FigureDefinition("time_to_detect", "ttd", "time to detect", "impact_started", "detected"),
    FigureDefinition("time_to_acknowledge", "tta", "time to acknowledge", "detected", "acknowledged"),
    FigureDefinition("time_to_mitigate", "time_to_mitigate", "time to mitigate", "impact_started", "mitigated"),
    FigureDefinition(
        "time_to_recover", "ttr", "time to recover", "impact_started (else declared)", "recovered (MBCO reached)"
    ),
    FigureDefinition(
        "time_to_resolve",
        "time_to_resolve",
        "time to resolve",
        "impact_started (else declared)",
        "resolved (full service)",
        summarised=False,
    ),
)
#: The figures ``bcm metrics`` summarises per service or runbook, the headline (time to recover) first.
SUMMARISED_FIGURES: tuple[FigureDefinition, ...] = tuple(
    sorted((f for f in FIGURES if f.summarised), key=lambda f: f.key != "time_to_recover")
)

#: Said under exercise figures when a run among them was played at a speed other than 1.
EXERCISE_TIME_NOTE = (
    "exercise figures are in exercise time (runs played at --speed N count N times their wall-clock durations)"
)

_KNOWN_MILESTONES = frozenset(MILESTONES + EXERCISE_MILESTONES)

# Pairs (earlier, later) checked for order although no figure is computed from them; the pairs
# behind figures are checked when the figure is computed. Declared may legitimately come before
# impact (a pre-emptive declaration ahead of a storm), so it is not checked against impact_started.
_ORDER_RULES: tuple[tuple[str, str], ...] = (
    ("recovered", "resolved"),
    ("resolved", "stood_down"),
    ("startex", "inject_delivered"),
    ("inject_delivered", "endex"),
    ("startex", "endex"),
)


# ---------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, slots=True)
class Figure:
    """A duration that is either known or unknown for a stated reason — never both, never neither.

    Attributes:
        value: the duration when known.
        unknown_reason: why the duration is unknown, e.g. ``no 'detected' milestone recorded``.
    """

    value: timedelta | None
    unknown_reason: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.unknown_reason is None):
            raise ValueError("a Figure has exactly one of value and unknown_reason")

    @classmethod
    def of(cls, value: timedelta) -> Figure:
        """Return a known figure."""
        return cls(value, None)

    @classmethod
    def unknown(cls, reason: str) -> Figure:
        """Return an unknown figure with the reason it is unknown."""
        return cls(None, reason)

    @property
    def known(self) -> bool:
        """Whether the figure has a value."""
        return self.value is not None

    def __str__(self) -> str:
        if self.value is None:
            return f"unknown ({self.unknown_reason})"
        return format_duration(self.value)


@dataclass(frozen=True, slots=True)
class CommunicationFigures:
    """How well stakeholder status updates kept to the promised cadence.

    Attributes:
        cadence: the promised interval between updates.
        updates: how many updates were sent.
        expected: how many updates the cadence called for between the anchor (declared, else the
            run start) and the end of the window (resolved, else stood_down, else the run's end):
            ⌊window / cadence⌋. ``None`` when any of those is unknown.
        on_time: how many updates came within the cadence of the previous one (the first: of the
            anchor). ``None`` when the cadence or the anchor is unknown.
        share_on_time: ``on_time / updates``; ``None`` when ``on_time`` is unknown or no update
            was sent.
        longest_gap: the longest time without an update, from the anchor through each update and
            on to the end of the window when that is known. ``None`` without an anchor, or with
            neither an update nor an end.
        unknown_reason: why ``on_time`` is unknown, when it is.
    """

    cadence: timedelta | None
    updates: int
    expected: int | None
    on_time: int | None
    share_on_time: float | None
    longest_gap: timedelta | None
    unknown_reason: str | None


@dataclass(frozen=True, slots=True)
class RunFigures:
    """The figures of one run; see the module docstring for how each is computed.

    Attributes:
        run_id: the run's id.
        runbook_id: the runbook that was run.
        services: the services the run concerns.
        mode: real disruption or exercise.
        ttd: time to detect.
        tta: time to acknowledge.
        time_to_mitigate: time to mitigate.
        ttr: time to recover (MBCO reached).
        ttr_basis: the milestone ``ttr`` and ``time_to_resolve`` count from; ``None`` when neither
            impact_started nor declared was recorded.
        time_to_resolve: time to resolve (full service).
        rto_attained: whether ``ttr`` ≤ RTO; ``None`` when either is unknown.
        rto_margin: RTO - ``ttr``; negative when the RTO was missed by that much.
        mtpd_breached: whether ``ttr`` > MTPD; ``None`` when either is unknown.
        rpo_attained: whether the data-loss window ≤ RPO; ``None`` when either is unknown.
        phase_durations: per phase, first step start → last step end.
        step_durations: per step id, start → end.
        waiting_for_people: total time steps waited for a person.
        communication: status updates against the cadence.
        problems: inconsistencies found in the timeline (out-of-order times, unknown milestones),
            each with the times involved.
    """

    run_id: str
    runbook_id: str | None
    services: tuple[str, ...]
    mode: Mode
    ttd: Figure
    tta: Figure
    time_to_mitigate: Figure
    ttr: Figure
    ttr_basis: RecoveryBasis | None
    time_to_resolve: Figure
    rto_attained: bool | None
    rto_margin: timedelta | None
    mtpd_breached: bool | None
    rpo_attained: bool | None
    phase_durations: dict[str, Figure] = field(default_factory=dict)
    step_durations: dict[str, Figure] = field(default_factory=dict)
    waiting_for_people: timedelta = timedelta(0)
    communication: CommunicationFigures | None = None
    problems: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# One run


def _against_targets(ttr: Figure, tl: Timeline) -> tuple[bool | None, timedelta | None, bool | None]:
    """(RTO attained, RTO margin, MTPD breached); each None when it cannot be known."""
    if ttr.value is None:
        return None, None, None
    rto_attained = None if tl.rto is None else ttr.value <= tl.rto
    rto_margin = None if tl.rto is None else tl.rto - ttr.value
    mtpd_breached = None if tl.mtpd is None else ttr.value > tl.mtpd
    return rto_attained, rto_margin, mtpd_breached


def run_figures(tl: Timeline) -> RunFigures:
    """Compute the figures of one run.

    Args:
        tl: the run's timeline.

    Returns:
        The figures, each known or unknown with its reason, and the problems found.

    Raises:
        ValueError: when a time in the timeline has no UTC offset.
    """
    problems: dict[str, None] = {}  # insertion-ordered set: one entry per problem
    ms = _milestones(tl.marks)
    speed = tl.speed
    if not speed > 0:
        problems[f"speed must be positive, got {speed:g}; counted as 1"] = None
        speed = 1.0

    for mark in tl.marks:
        if mark.milestone not in _KNOWN_MILESTONES:
            problems[_unknown_milestone(mark.milestone)] = None

    def figure(result: timedelta | str) -> Figure:
        if isinstance(result, timedelta):
            return Figure(result if speed == 1.0 else result * speed, None)
        if result.startswith("out of order:"):
            problems[result] = None
        return Figure(None, result)

    ttd = figure(_interval(ms, "impact_started", "detected"))
    tta = figure(_interval(ms, "detected", "acknowledged"))
    time_to_mitigate = figure(_interval(ms, "impact_started", "mitigated"))
    basis = _recovery_basis(ms)
    ttr = figure(_from_basis(ms, basis, "recovered"))
    time_to_resolve = figure(_from_basis(ms, basis, "resolved"))

    for start, end in _ORDER_RULES:
        result = _interval(ms, start, end)
        if isinstance(result, str) and result.startswith("out of order:"):
            problems[result] = None

    rto_attained, rto_margin, mtpd_breached = _against_targets(ttr, tl)
    rpo_attained = None if tl.rpo is None or tl.data_loss is None else tl.data_loss <= tl.rpo

    for problem in _step_problems(tl.steps):
        problems[problem] = None
    step_durations, phase_durations = _step_and_phase_durations(tl.steps, speed)
    waited = sum(step.waited_s for step in tl.steps if step.waited_s is not None and step.waited_s > 0)

    communication, communication_problems = _communication(tl, ms, speed)
    for problem in communication_problems:
        problems[problem] = None

    return RunFigures(
        run_id=tl.run_id,
        runbook_id=tl.runbook_id,
        services=tl.services,
        mode=tl.mode,
        ttd=ttd,
        tta=tta,
        time_to_mitigate=time_to_mitigate,
        ttr=ttr,
        ttr_basis=basis,
        time_to_resolve=time_to_resolve,
        rto_attained=rto_attained,
        rto_margin=rto_margin,
        mtpd_breached=mtpd_breached,
        rpo_attained=rpo_attained,
        phase_durations=phase_durations,
        step_durations=step_durations,
        waiting_for_people=timedelta(seconds=waited * speed),
        communication=communication,
        problems=tuple(problems),
    )


def _unknown_milestone(name: str) -> str:
    known = sorted(_KNOWN_MILESTONES)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
    return f"unknown milestone '{name}'{hint}"


def _step_problems(steps: Iterable[StepTiming]) -> list[str]:
    problems = []
    for step in steps:
        start, end = step.started_at, step.ended_at
        if start is None and end is not None:
            problems.append(f"step '{step.step_id}' has an end time ({_iso(end)}) but no start time")
        elif start is not None and end is not None and _utc(end) < _utc(start):
            problems.append(
                f"out of order: step '{step.step_id}' ended at {_iso(end)}, before it started at {_iso(start)}"
            )
        if step.waited_s is not None and step.waited_s < 0:
            problems.append(f"step '{step.step_id}' waited a negative time ({step.waited_s:g} s); ignored")
    return problems


def _span(steps: Sequence[StepTiming], not_started: str, speed: float) -> Figure:
    """First start → last end of ``steps``, times ``speed``; steps that never started are left out."""
    first: datetime | None = None
    last: datetime | None = None
    for step in steps:
        if step.started_at is None and step.ended_at is None:
            continue
        if step.started_at is None:
            return Figure.unknown(f"step '{step.step_id}' has an end time but no start time")
        if step.ended_at is None:
            return Figure.unknown(f"step '{step.step_id}' started at {_iso(step.started_at)} and has not ended")
        start, end = _utc(step.started_at), _utc(step.ended_at)
        if end < start:
            return Figure.unknown(
                f"out of order: step '{step.step_id}' ended at {end.isoformat()}, "
                f"before it started at {start.isoformat()}"
            )
        if first is None or start < first:
            first = start
        if last is None or end > last:
            last = end
    if first is None or last is None:
        return Figure.unknown(not_started)
    return Figure.of((last - first) * speed)


def _step_and_phase_durations(steps: Sequence[StepTiming], speed: float) -> tuple[dict[str, Figure], dict[str, Figure]]:
    by_step: dict[str, list[StepTiming]] = {}
    by_phase: dict[str, list[StepTiming]] = {}
    for step in steps:
        by_step.setdefault(step.step_id, []).append(step)
        by_phase.setdefault(step.phase, []).append(step)
    step_durations = {
        step_id: _span(group, f"step '{step_id}' has not started (status '{group[-1].status}')", speed)
        for step_id, group in by_step.items()
    }
    phase_durations = {
        phase: _span(group, f"no step in phase '{phase}' has started", speed) for phase, group in by_phase.items()
    }
    return step_durations, phase_durations


# Over the limit on purpose: one rule a branch (anchor, end, cadence, gaps), as the module docstring lists them.
def _communication(  # noqa: C901
    tl: Timeline, ms: dict[str, datetime], speed: float
) -> tuple[CommunicationFigures, list[str]]:
    """Updates against the cadence; gaps are wall-clock time ``speed`` times (exercise time)."""
    problems: list[str] = []
    updates = sorted(_utc(update) for update in tl.updates)
    anchor = ms.get("declared")
    if anchor is None and tl.started_at is not None:
        anchor = _utc(tl.started_at)
    end = ms.get("resolved") or ms.get("stood_down")
    if end is None and tl.ended_at is not None:
        end = _utc(tl.ended_at)

    cadence = tl.cadence
    if cadence is not None and cadence <= timedelta(0):
        problems.append(f"update cadence must be positive, got {format_duration(cadence)}; ignored")
        cadence = None

    reasons = []
    if cadence is None:
        reasons.append("no update cadence set")
    if anchor is None:
        reasons.append("no 'declared' milestone or run start to measure the first update from")

    on_time: int | None = None
    longest: timedelta | None = None
    if anchor is not None:
        on_time = 0
        previous = anchor
        for update in updates:
            gap = (update - previous) * speed
            if cadence is not None and gap <= cadence:
                on_time += 1
            if gap > timedelta(0) and (longest is None or gap > longest):
                longest = gap
            previous = max(previous, update)
        if end is not None and end > previous and (longest is None or (end - previous) * speed > longest):
            longest = (end - previous) * speed
    if cadence is None:
        on_time = None

    expected = None
    if cadence is not None and anchor is not None and end is not None and end >= anchor:
        expected = (end - anchor) * speed // cadence

    share = None if on_time is None or not updates else on_time / len(updates)
    figures = CommunicationFigures(
        cadence=cadence,
        updates=len(updates),
        expected=expected,
        on_time=on_time,
        share_on_time=share,
        longest_gap=longest,
        unknown_reason="; ".join(reasons) or None,
    )
    return figures, problems
