"""Summaries over many runs: distributions, per-service or per-runbook figures, slowest steps.

The percentile method and the rules are in the package docstring, :mod:`bcm.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bcm.clock import as_utc
from bcm.metrics.timeline import (
    GroupBy,
    Mode,
    Timeline,
    _from_basis,
    _interval,
    _milestones,
    _recovery_basis,
    _utc,
)

__all__ = [
    "Distribution",
    "GroupSummary",
    "StepStat",
    "distribution",
    "slowest_steps",
    "summarise",
]


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
        at_speed: runs played at a speed other than 1 (``bcm exercise run --speed N``); their
            durations are counted in exercise time, N times the wall clock.
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
    at_speed: int = 0


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
# Many runs


class _Group:
    __slots__ = (
        "at_speed",
        "count",
        "mtpd_breaches",
        "rto_known",
        "time_to_mitigate",
        "tta",
        "ttd",
        "ttr",
        "within",
    )

    def __init__(self) -> None:
        self.count = 0
        self.ttr: list[float] = []
        self.ttd: list[float] = []
        self.tta: list[float] = []
        self.time_to_mitigate: list[float] = []
        self.within = 0
        self.rto_known = 0
        self.mtpd_breaches = 0
        self.at_speed = 0


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
        speed = tl.speed
        at_speed = speed != 1.0 and speed > 0  # as run_figures: a speed that is not positive counts as 1
        if at_speed:
            # An exercise played at --speed N: its figures are in exercise time, N times the wall clock.
            ttr = None if ttr is None else ttr * speed
            ttd = None if ttd is None else ttd * speed
            tta = None if tta is None else tta * speed
            mitigate = None if mitigate is None else mitigate * speed
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
            if at_speed:
                group.at_speed += 1

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
                at_speed=group.at_speed,
            )
        )
    return summaries


def slowest_steps(timelines: Iterable[Timeline], *, limit: int = 10, mode: Mode | None = None) -> list[StepStat]:
    """Rank runbook steps by how long they take: where recovery time goes.

    Steps are grouped by (runbook, step id, mode), so exercise timings never blend into real
    ones. Only step runs with both a start and an end, in order, are counted. Durations are in
    exercise time for exercises played at a speed (wall clock times ``Timeline.speed``).

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
        speed = tl.speed if tl.speed > 0 else 1.0
        for step in tl.steps:
            if step.started_at is None or step.ended_at is None:
                continue
            taken = (_utc(step.ended_at) - _utc(step.started_at)).total_seconds() * speed
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
