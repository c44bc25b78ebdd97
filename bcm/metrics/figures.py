"""Recovery-time figures computed from run timelines: pure functions, no I/O, no database.

The store and the CLI build :class:`Timeline` values; this module turns them into figures for one
run (:func:`run_figures`) and into per-service or per-runbook summaries (:func:`summarise`,
:func:`slowest_steps`).

"MTTR" is ambiguous (repair, recover, resolve, respond), so no figure here is called that. Each
figure is named for what it measures:

=====================  ==========================  ============================================
figure                 field                       from → to
=====================  ==========================  ============================================
time to detect         ``ttd``                     impact_started → detected
time to acknowledge    ``tta``                     detected → acknowledged
time to mitigate       ``time_to_mitigate``        impact_started → mitigated
time to recover        ``ttr``                     impact_started → recovered (MBCO reached);
                                                   from declared when impact_started was not
                                                   recorded (``ttr_basis`` says which)
time to resolve        ``time_to_resolve``         same start as ``ttr`` → resolved (full
                                                   service)
RTO attained           ``rto_attained``            ``ttr`` ≤ RTO; ``rto_margin`` = RTO - ``ttr``
                                                   (negative: missed by that much)
MTPD breached          ``mtpd_breached``           ``ttr`` > MTPD
RPO attained           ``rpo_attained``            known data-loss window ≤ RPO
phase duration         ``phase_durations``         first start of a step in the phase → last end
step duration          ``step_durations``          step start → step end (first start → last end
                                                   when a step was recorded more than once)
waiting for people     ``waiting_for_people``      sum of the steps' ``waited_s``
communication on time  ``communication``           an update is on time when the gap since the
                                                   previous update (for the first: since
                                                   declared, else the run start) is ≤ the cadence
=====================  ==========================  ============================================

Rules that hold for every figure:

- Durations are computed on absolute instants (every time is converted to UTC first), so runs
  that cross a daylight-saving change or mix UTC offsets are measured correctly.
- A missing milestone makes the figure unknown with a reason, e.g. ``no 'detected' milestone
  recorded``; it never turns into a made-up number.
- Milestones out of order (an interval that would be negative) are listed in
  :attr:`RunFigures.problems` with both times, and the figure they affect is unknown with the
  same text as its reason (``out of order: ...``).
- A milestone recorded more than once counts from its earliest time.

Summaries never mix real disruptions with exercises, and never report a bare mean: a
:class:`Distribution` has the count, the median, the 90th percentile and the maximum.

- **median**: the middle value of the sorted values; for an even count, the average of the two
  middle values.
- **p90**: nearest rank — the value at rank ⌈0.9 * n⌉ (1-based) of the sorted values, so it is
  always one of the observed values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from bcm.clock import as_utc
from bcm.durations import format_duration
from bcm.vocabulary import DISRUPTION_MILESTONES, EXERCISE_MILESTONES, ExecutionMode

__all__ = [
    "EXERCISE_MILESTONES",
    "FIGURES",
    "MILESTONES",
    "SUMMARISED_FIGURES",
    "CommunicationFigures",
    "Distribution",
    "Figure",
    "FigureDefinition",
    "GroupSummary",
    "Mark",
    "Mode",
    "RunFigures",
    "StepStat",
    "StepTiming",
    "Timeline",
    "distribution",
    "run_figures",
    "slowest_steps",
    "summarise",
]

Mode = ExecutionMode
RecoveryBasis = Literal["impact_started", "declared"]
GroupBy = Literal["service", "runbook"]

#: Milestones of a disruption, real or exercised, in their usual order (from the vocabulary).
MILESTONES: tuple[str, ...] = DISRUPTION_MILESTONES


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


@dataclass(frozen=True, slots=True)
class Distribution:
    """Count, median, 90th percentile (nearest rank) and maximum of some durations.

    The percentile method is in the module docstring. ``median``, ``p90`` and ``max`` are
    ``None`` when ``count`` is 0.
    """

    count: int
    median: timedelta | None
    p90: timedelta | None
    max: timedelta | None


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """Figures for the runs of one service or runbook in one mode.

    Attributes:
        key: the service or runbook id; ``None`` for runs without a service (or runbook).
        mode: real disruptions or exercises — never both in one summary.
        count: how many runs.
        ttr: time to recover over the runs where it is known.
        ttd: time to detect over the runs where it is known.
        tta: time to acknowledge over the runs where it is known.
        time_to_mitigate: time to mitigate over the runs where it is known.
        within_rto: runs whose time to recover was within the RTO.
        rto_known: runs where both the time to recover and the RTO are known.
        share_within_rto: ``within_rto / rto_known``; ``None`` when ``rto_known`` is 0.
        mtpd_breaches: runs whose time to recover exceeded the MTPD.
        unknown_ttr: runs whose time to recover is unknown.
    """

    key: str | None
    mode: Mode
    count: int
    ttr: Distribution
    ttd: Distribution
    tta: Distribution
    time_to_mitigate: Distribution
    within_rto: int
    rto_known: int
    share_within_rto: float | None
    mtpd_breaches: int
    unknown_ttr: int


@dataclass(frozen=True, slots=True)
class StepStat:
    """How long one runbook step took over many runs, in one mode.

    Attributes:
        runbook_id: the runbook.
        step_id: the step's id in that runbook.
        mode: real disruptions or exercises.
        count: how many timed runs of the step.
        median: median duration.
        p90: 90th percentile duration (nearest rank).
        max: longest duration.
        total: all the durations added up: where recovery time goes.
    """

    runbook_id: str | None
    step_id: str
    mode: Mode
    count: int
    median: timedelta
    p90: timedelta
    max: timedelta
    total: timedelta


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


def _distribution(seconds: list[float]) -> Distribution:
    """Summarise durations given in seconds; sorts ``seconds`` in place."""
    n = len(seconds)
    if n == 0:
        return Distribution(0, None, None, None)
    seconds.sort()
    middle = n // 2
    median = seconds[middle] if n % 2 else (seconds[middle - 1] + seconds[middle]) / 2
    p90 = seconds[(9 * n + 9) // 10 - 1]  # rank ⌈0.9 n⌉, in integers to avoid float rounding
    return Distribution(n, timedelta(seconds=median), timedelta(seconds=p90), timedelta(seconds=seconds[-1]))


def distribution(values: Iterable[timedelta]) -> Distribution:
    """Summarise durations as count, median, p90 (nearest rank) and maximum.

    Args:
        values: the durations, in any order.

    Returns:
        The distribution; its median, p90 and max are ``None`` when ``values`` is empty.
    """
    return _distribution([value.total_seconds() for value in values])


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

    for mark in tl.marks:
        if mark.milestone not in _KNOWN_MILESTONES:
            problems[_unknown_milestone(mark.milestone)] = None

    def figure(result: timedelta | str) -> Figure:
        if isinstance(result, timedelta):
            return Figure(result, None)
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
    step_durations, phase_durations = _step_and_phase_durations(tl.steps)
    waited = sum(step.waited_s for step in tl.steps if step.waited_s is not None and step.waited_s > 0)

    communication, communication_problems = _communication(tl, ms)
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
        waiting_for_people=timedelta(seconds=waited),
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


def _span(steps: Sequence[StepTiming], not_started: str) -> Figure:
    """First start → last end of ``steps``; steps that never started are left out."""
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
    return Figure.of(last - first)


def _step_and_phase_durations(
    steps: Sequence[StepTiming],
) -> tuple[dict[str, Figure], dict[str, Figure]]:
    by_step: dict[str, list[StepTiming]] = {}
    by_phase: dict[str, list[StepTiming]] = {}
    for step in steps:
        by_step.setdefault(step.step_id, []).append(step)
        by_phase.setdefault(step.phase, []).append(step)
    step_durations = {
        step_id: _span(group, f"step '{step_id}' has not started (status '{group[-1].status}')")
        for step_id, group in by_step.items()
    }
    phase_durations = {
        phase: _span(group, f"no step in phase '{phase}' has started") for phase, group in by_phase.items()
    }
    return step_durations, phase_durations


# Over the limit on purpose: one rule a branch (anchor, end, cadence, gaps), as the module docstring lists them.
def _communication(tl: Timeline, ms: dict[str, datetime]) -> tuple[CommunicationFigures, list[str]]:  # noqa: C901
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
            gap = update - previous
            if cadence is not None and gap <= cadence:
                on_time += 1
            if gap > timedelta(0) and (longest is None or gap > longest):
                longest = gap
            previous = max(previous, update)
        if end is not None and end > previous and (longest is None or end - previous > longest):
            longest = end - previous
    if cadence is None:
        on_time = None

    expected = None
    if cadence is not None and anchor is not None and end is not None and end >= anchor:
        expected = (end - anchor) // cadence

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


# ---------------------------------------------------------------------------------------------
# Many runs


class _Group:
    __slots__ = ("count", "mtpd_breaches", "rto_known", "time_to_mitigate", "tta", "ttd", "ttr", "within")

    def __init__(self) -> None:
        self.count = 0
        self.ttr: list[float] = []
        self.ttd: list[float] = []
        self.tta: list[float] = []
        self.time_to_mitigate: list[float] = []
        self.within = 0
        self.rto_known = 0
        self.mtpd_breaches = 0


def _seconds(result: timedelta | str) -> float | None:
    return result.total_seconds() if isinstance(result, timedelta) else None


# Over the limit on purpose: one pass over up to 100,000 runs, inlined because a call per run per
# figure costs more than the 2 s budget allows (benchmarks/metrics.py).
def summarise(  # noqa: C901
    timelines: Iterable[Timeline],
    *,
    by: GroupBy,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[GroupSummary]:
    """Summarise runs per service or per runbook, real disruptions and exercises apart.

    A run that concerns several services counts under each of them (once per service). Runs
    without a service (or runbook) are summarised under the key ``None``.

    Args:
        timelines: the runs.
        by: ``"service"`` or ``"runbook"``.
        since: keep runs that started at or after this time.
        until: keep runs that started before this time. A run's start is its impact_started
            milestone, else declared, else its ``started_at``; when a window is given, runs with
            none of these are left out.

    Returns:
        One summary per (key, mode), sorted by key with ``None`` last, real before exercise.

    Raises:
        ValueError: when ``by`` is neither ``"service"`` nor ``"runbook"``, or a time has no UTC
            offset.
    """
    if by not in ("service", "runbook"):
        raise ValueError(f"cannot summarise by {by!r}: choose 'service' or 'runbook'")
    since_utc = None if since is None else as_utc(since)
    until_utc = None if until is None else as_utc(until)
    windowed = since_utc is not None or until_utc is not None
    by_service = by == "service"
    groups: dict[tuple[str | None, Mode], _Group] = {}

    for tl in timelines:
        ms = _milestones(tl.marks)
        if windowed:
            ref = ms.get("impact_started") or ms.get("declared")
            if ref is None and tl.started_at is not None:
                ref = _utc(tl.started_at)
            if (
                ref is None
                or (since_utc is not None and ref < since_utc)
                or (until_utc is not None and ref >= until_utc)
            ):
                continue

        basis = _recovery_basis(ms)
        ttr = _seconds(_from_basis(ms, basis, "recovered"))
        ttd = _seconds(_interval(ms, "impact_started", "detected"))
        tta = _seconds(_interval(ms, "detected", "acknowledged"))
        mitigate = _seconds(_interval(ms, "impact_started", "mitigated"))
        rto = None if ttr is None or tl.rto is None else ttr <= tl.rto.total_seconds()
        breached = ttr is not None and tl.mtpd is not None and ttr > tl.mtpd.total_seconds()

        keys: Iterable[str | None]
        if by_service:
            services = tl.services
            keys = services if len(services) == 1 else (dict.fromkeys(services) or (None,))
        else:
            keys = (tl.runbook_id,)
        for key in keys:
            group = groups.get((key, tl.mode))
            if group is None:
                group = groups[(key, tl.mode)] = _Group()
            group.count += 1
            if ttr is not None:
                group.ttr.append(ttr)
            if ttd is not None:
                group.ttd.append(ttd)
            if tta is not None:
                group.tta.append(tta)
            if mitigate is not None:
                group.time_to_mitigate.append(mitigate)
            if rto is not None:
                group.rto_known += 1
                group.within += rto
            group.mtpd_breaches += breached

    summaries = []
    for (key, mode), group in sorted(
        groups.items(), key=lambda item: (item[0][0] is None, item[0][0] or "", item[0][1] != "real")
    ):
        summaries.append(
            GroupSummary(
                key=key,
                mode=mode,
                count=group.count,
                ttr=_distribution(group.ttr),
                ttd=_distribution(group.ttd),
                tta=_distribution(group.tta),
                time_to_mitigate=_distribution(group.time_to_mitigate),
                within_rto=group.within,
                rto_known=group.rto_known,
                share_within_rto=group.within / group.rto_known if group.rto_known else None,
                mtpd_breaches=group.mtpd_breaches,
                unknown_ttr=group.count - len(group.ttr),
            )
        )
    return summaries


def slowest_steps(timelines: Iterable[Timeline], *, limit: int = 10, mode: Mode | None = None) -> list[StepStat]:
    """Rank runbook steps by how long they take: where recovery time goes.

    Steps are grouped by (runbook, step id, mode), so exercise timings never blend into real
    ones. Only step runs with both a start and an end, in order, are counted.

    Args:
        timelines: the runs.
        limit: how many steps to return.
        mode: keep only real runs or only exercises; ``None`` keeps both (in separate rows).

    Returns:
        Up to ``limit`` steps, slowest first: by median, then p90, then maximum, then total.

    Raises:
        ValueError: when a time has no UTC offset.
    """
    durations: dict[tuple[str | None, str, Mode], list[float]] = {}
    for tl in timelines:
        if mode is not None and tl.mode != mode:
            continue
        for step in tl.steps:
            if step.started_at is None or step.ended_at is None:
                continue
            taken = (_utc(step.ended_at) - _utc(step.started_at)).total_seconds()
            if taken < 0:
                continue
            durations.setdefault((tl.runbook_id, step.step_id, tl.mode), []).append(taken)

    stats = []
    for (runbook_id, step_id, step_mode), seconds in durations.items():
        dist = _distribution(seconds)
        assert dist.median is not None and dist.p90 is not None and dist.max is not None
        stats.append(
            StepStat(
                runbook_id=runbook_id,
                step_id=step_id,
                mode=step_mode,
                count=dist.count,
                median=dist.median,
                p90=dist.p90,
                max=dist.max,
                total=timedelta(seconds=sum(seconds)),
            )
        )
    stats.sort(key=lambda s: (s.runbook_id or "", s.step_id, s.mode))
    stats.sort(key=lambda s: (s.median, s.p90, s.max, s.total), reverse=True)
    return stats[:limit]
