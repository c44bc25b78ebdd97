"""Tests for bcm.metrics: every formula pinned on hand-made timelines with exact values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bcm.metrics import (
    CommunicationFigures,
    Distribution,
    Figure,
    GroupSummary,
    Mark,
    Mode,
    StepStat,
    StepTiming,
    Timeline,
    distribution,
    run_figures,
    slowest_steps,
    summarise,
)

LONDON = ZoneInfo("Europe/London")
PLUS_TWO = timezone(timedelta(hours=2))
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """Return T0 plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def mins(value: float) -> timedelta:
    return timedelta(minutes=value)


def timeline(
    marks: dict[str, datetime],
    *,
    run_id: str = "run-1",
    runbook_id: str | None = "dc-power-loss",
    services: tuple[str, ...] = ("voice",),
    mode: Mode = "real",
    **kwargs: object,
) -> Timeline:
    return Timeline(
        run_id=run_id,
        runbook_id=runbook_id,
        services=services,
        mode=mode,
        marks=tuple(Mark(name, when) for name, when in marks.items()),
        **kwargs,  # type: ignore[arg-type]
    )


# The 2011 cloud region power event: power back (mitigated) after 81 min, most instances
# (MBCO) after 2.5 h, nearly all (full service) after 9.5 h.
POWER_EVENT = {
    "impact_started": at(0),
    "detected": at(4),
    "acknowledged": at(9),
    "declared": at(15),
    "mitigated": at(81),
    "recovered": at(150),
    "resolved": at(570),
    "stood_down": at(600),
}


# --- one run: milestone figures ----------------------------------------------------------------


def test_all_milestones_give_every_figure() -> None:
    """With every milestone recorded, each figure is the from → to interval of the module table."""
    figures = run_figures(timeline(POWER_EVENT))

    assert figures.ttd == Figure.of(mins(4))
    assert figures.tta == Figure.of(mins(5))
    assert figures.time_to_mitigate == Figure.of(mins(81))
    assert figures.ttr == Figure.of(mins(150))
    assert figures.ttr_basis == "impact_started"
    assert figures.time_to_resolve == Figure.of(mins(570))
    assert figures.problems == ()


def test_missing_milestones_give_unknown_figures_with_reasons() -> None:
    """A missing milestone makes the figure unknown with a reason naming what is missing."""
    figures = run_figures(timeline({"impact_started": at(0), "recovered": at(30)}))

    assert figures.ttd == Figure.unknown("no 'detected' milestone recorded")
    assert figures.tta == Figure.unknown("no 'detected' or 'acknowledged' milestone recorded")
    assert figures.time_to_mitigate == Figure.unknown("no 'mitigated' milestone recorded")
    assert figures.time_to_resolve == Figure.unknown("no 'resolved' milestone recorded")
    assert figures.ttr == Figure.of(mins(30))
    assert not figures.ttd.known
    assert figures.ttr.known
    assert figures.problems == ()


def test_no_start_for_recovery_names_both_possible_starts() -> None:
    """Without impact_started and declared, ttr is unknown, and rto/mtpd verdicts are None."""
    figures = run_figures(timeline({"detected": at(0)}, rto=timedelta(hours=4), mtpd=timedelta(hours=8)))

    assert figures.ttr_basis is None
    assert figures.ttr == Figure.unknown("no 'impact_started', 'declared' or 'recovered' milestone recorded")
    assert figures.time_to_resolve == Figure.unknown("no 'impact_started', 'declared' or 'resolved' milestone recorded")
    assert figures.rto_attained is None
    assert figures.rto_margin is None
    assert figures.mtpd_breached is None

    only_recovered = run_figures(timeline({"recovered": at(10)}))
    assert only_recovered.ttr == Figure.unknown("no 'impact_started' or 'declared' milestone recorded")


def test_ttr_counts_from_declared_when_impact_start_unknown() -> None:
    """Without impact_started, ttr and time to resolve count from declared and say so."""
    figures = run_figures(timeline({"declared": at(20), "recovered": at(95), "resolved": at(140)}, rto=mins(60)))

    assert figures.ttr_basis == "declared"
    assert figures.ttr == Figure.of(mins(75))
    assert figures.time_to_resolve == Figure.of(mins(120))
    assert figures.rto_attained is False
    assert figures.rto_margin == mins(-15)
    # TTD and time to mitigate never borrow declared as their start.
    assert figures.ttd == Figure.unknown("no 'impact_started' or 'detected' milestone recorded")


def test_detected_before_impact_is_a_problem_and_ttd_unknown() -> None:
    """A detection before the impact began is reported with both times; ttd becomes unknown."""
    marks = dict(POWER_EVENT, detected=at(-3))
    figures = run_figures(timeline(marks))

    reason = (
        "out of order: 'detected' at 2024-03-01T09:57:00+00:00 is before 'impact_started' at 2024-03-01T10:00:00+00:00"
    )
    assert figures.ttd == Figure.unknown(reason)
    # acknowledged (10:09) is still after detected (09:57): a valid 12 minutes.
    assert figures.tta == Figure.of(mins(12))
    assert figures.problems == (reason,)


def test_recovered_before_impact_is_not_replaced_by_declared() -> None:
    """Recovery before impact makes ttr unknown; it does not fall back to the declared start."""
    marks = {"impact_started": at(60), "declared": at(0), "recovered": at(30)}
    figures = run_figures(timeline(marks, rto=mins(240), mtpd=mins(480)))

    reason = (
        "out of order: 'recovered' at 2024-03-01T10:30:00+00:00 is before 'impact_started' at 2024-03-01T11:00:00+00:00"
    )
    assert figures.ttr == Figure.unknown(reason)
    assert figures.ttr_basis == "impact_started"
    assert figures.rto_attained is None
    assert figures.mtpd_breached is None
    assert figures.problems == (reason,)


def test_order_rules_without_figures_are_still_reported() -> None:
    """Resolved before recovered and ENDEX before STARTEX are problems even though no figure uses them."""
    marks = {
        "impact_started": at(0),
        "recovered": at(50),
        "resolved": at(40),
        "startex": at(0),
        "endex": at(-10),
    }
    figures = run_figures(timeline(marks, mode="exercise"))

    assert figures.ttr == Figure.of(mins(50))
    assert figures.time_to_resolve == Figure.of(mins(40))
    assert figures.problems == (
        "out of order: 'resolved' at 2024-03-01T10:40:00+00:00 is before 'recovered' at 2024-03-01T10:50:00+00:00",
        "out of order: 'endex' at 2024-03-01T09:50:00+00:00 is before 'startex' at 2024-03-01T10:00:00+00:00",
    )


def test_repeated_milestone_counts_from_its_earliest_time() -> None:
    """A milestone recorded twice counts from the earlier record, whatever the order of marks."""
    tl = Timeline(
        run_id="r",
        runbook_id=None,
        services=("voice",),
        mode="real",
        marks=(
            Mark("impact_started", at(0)),
            Mark("recovered", at(90)),
            Mark("recovered", at(45)),
        ),
    )

    assert run_figures(tl).ttr == Figure.of(mins(45))


def test_unknown_milestone_name_is_a_problem_with_a_suggestion() -> None:
    """A misspelt milestone is reported with the nearest valid name."""
    figures = run_figures(timeline({"impact_started": at(0), "recoverd": at(30)}))

    assert figures.problems == ("unknown milestone 'recoverd'; did you mean 'recovered'?",)
    assert figures.ttr == Figure.unknown("no 'recovered' milestone recorded")


def test_naive_time_is_refused() -> None:
    """A time without a UTC offset is ambiguous, so computing figures from it raises."""
    with pytest.raises(ValueError, match="has no UTC offset"):
        run_figures(timeline({"impact_started": datetime(2024, 3, 1, 10, 0)}))


# --- absolute instants -------------------------------------------------------------------------


def test_spring_dst_change_in_london_time() -> None:
    """00:30 GMT to 02:30 BST on 31 March 2024 is one hour, not the two the wall clock shows."""
    marks = {
        "impact_started": datetime(2024, 3, 31, 0, 30, tzinfo=LONDON),
        "detected": datetime(2024, 3, 31, 0, 50, tzinfo=LONDON),
        "recovered": datetime(2024, 3, 31, 2, 30, tzinfo=LONDON),
    }
    figures = run_figures(timeline(marks))

    assert figures.ttd == Figure.of(mins(20))
    assert figures.ttr == Figure.of(mins(60))


def test_autumn_dst_change_in_london_time() -> None:
    """00:30 BST to the second 01:30 (GMT) on 27 October 2024 is two hours, not one."""
    marks = {
        "impact_started": datetime(2024, 10, 27, 0, 30, tzinfo=LONDON),
        "recovered": datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=LONDON),
    }

    assert run_figures(timeline(marks)).ttr == Figure.of(mins(120))


def test_mixed_offsets_are_compared_as_instants() -> None:
    """Milestones recorded in +02:00 and in Z are measured on the same absolute clock."""
    marks = {
        "impact_started": datetime(2024, 6, 1, 12, 0, tzinfo=PLUS_TWO),  # 10:00Z
        "detected": datetime(2024, 6, 1, 10, 5, tzinfo=UTC),
        "acknowledged": datetime(2024, 6, 1, 12, 8, tzinfo=PLUS_TWO),
        "recovered": datetime(2024, 6, 1, 11, 30, tzinfo=UTC),
    }
    figures = run_figures(timeline(marks))

    assert figures.ttd == Figure.of(mins(5))
    assert figures.tta == Figure.of(mins(3))
    assert figures.ttr == Figure.of(mins(90))


def test_out_of_order_across_offsets_shows_both_times_in_utc() -> None:
    """An ordering problem between offsets is detected on instants and shown in UTC."""
    marks = {
        "impact_started": datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        "detected": datetime(2024, 6, 1, 11, 55, tzinfo=PLUS_TWO),  # 09:55Z
    }

    assert run_figures(timeline(marks)).problems == (
        "out of order: 'detected' at 2024-06-01T09:55:00+00:00 is before 'impact_started' at 2024-06-01T10:00:00+00:00",
    )


# --- objectives --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rto", "attained", "margin"),
    [
        (mins(180), True, mins(30)),
        (mins(150), True, mins(0)),
        (mins(120), False, mins(-30)),
    ],
)
def test_rto_attained_and_margin(rto: timedelta, attained: bool, margin: timedelta) -> None:
    """RTO is attained when ttr ≤ RTO; the margin is RTO - ttr, negative when missed."""
    figures = run_figures(timeline(POWER_EVENT, rto=rto))

    assert figures.rto_attained is attained
    assert figures.rto_margin == margin


@pytest.mark.parametrize(
    ("mtpd", "breached"),
    [(mins(120), True), (mins(150), False), (mins(600), False), (None, None)],
)
def test_mtpd_breached_when_ttr_exceeds_it(mtpd: timedelta | None, breached: bool | None) -> None:
    """MTPD is breached only when ttr is strictly longer; unknown without an MTPD."""
    assert run_figures(timeline(POWER_EVENT, mtpd=mtpd)).mtpd_breached is breached


@pytest.mark.parametrize(
    ("data_loss", "rpo", "attained"),
    [
        (mins(15), mins(60), True),
        (mins(60), mins(60), True),
        (mins(61), mins(60), False),
        (None, mins(60), None),
        (mins(15), None, None),
    ],
)
def test_rpo_attained_when_data_loss_within_it(
    data_loss: timedelta | None, rpo: timedelta | None, attained: bool | None
) -> None:
    """RPO is attained when the data-loss window ≤ RPO; None when either is unknown."""
    assert run_figures(timeline(POWER_EVENT, data_loss=data_loss, rpo=rpo)).rpo_attained is attained


# --- communication -----------------------------------------------------------------------------


def test_communication_on_time_against_cadence() -> None:
    """Each update is judged on the gap since the previous one (the first: since declared)."""
    marks = {"impact_started": at(-10), "declared": at(0), "resolved": at(150)}
    updates = (at(35), at(5), at(70), at(95))  # gaps 5, 30, 35, 25; then 55 to resolved
    figures = run_figures(timeline(marks, cadence=mins(30), updates=updates))

    assert figures.communication == CommunicationFigures(
        cadence=mins(30),
        updates=4,
        expected=5,
        on_time=3,
        share_on_time=0.75,
        longest_gap=mins(55),
        unknown_reason=None,
    )


def test_communication_first_update_measured_from_run_start_without_declared() -> None:
    """Without a declared milestone the first update counts from the run's start."""
    tl = timeline(
        {"impact_started": at(0)},
        cadence=mins(20),
        updates=(at(25), at(40)),
        started_at=at(0),
    )

    communication = run_figures(tl).communication
    assert communication is not None
    assert communication.on_time == 1
    assert communication.share_on_time == 0.5
    assert communication.longest_gap == mins(25)
    assert communication.expected is None  # still running: no end to the window


def test_communication_without_cadence_or_anchor_is_unknown() -> None:
    """No cadence and no start to measure from: on-time figures are unknown with both reasons."""
    communication = run_figures(timeline({"impact_started": at(0)}, updates=(at(10),))).communication

    assert communication == CommunicationFigures(
        cadence=None,
        updates=1,
        expected=None,
        on_time=None,
        share_on_time=None,
        longest_gap=None,
        unknown_reason=("no update cadence set; no 'declared' milestone or run start to measure the first update from"),
    )


def test_communication_with_no_updates_shows_the_silence() -> None:
    """With no updates sent, on_time is 0, the share unknown, and the gap is the whole window."""
    marks = {"declared": at(0), "resolved": at(95)}
    communication = run_figures(timeline(marks, cadence=mins(30))).communication

    assert communication is not None
    assert (communication.updates, communication.expected, communication.on_time) == (0, 3, 0)
    assert communication.share_on_time is None
    assert communication.longest_gap == mins(95)


# --- steps -------------------------------------------------------------------------------------


def step(
    step_id: str,
    phase: str,
    start: float | None,
    end: float | None,
    *,
    status: str = "succeeded",
    kind: str = "command",
    waited_s: float | None = None,
) -> StepTiming:
    return StepTiming(
        step_id=step_id,
        phase=phase,
        kind=kind,
        status=status,
        started_at=None if start is None else at(start),
        ended_at=None if end is None else at(end),
        waited_s=waited_s,
    )


def test_phase_and_step_durations() -> None:
    """A phase lasts from its first step start to its last step end; steps never started are left out."""
    steps = (
        step("page-oncall", "respond", 0, 10),
        step("assess", "respond", 5, 30),
        step("failover", "recover", 30, 60),
        step("restore-backup", "recover", None, None, status="skipped"),
        step("notify-regulator", "report", None, None, status="pending"),
    )
    figures = run_figures(timeline(POWER_EVENT, steps=steps))

    assert figures.phase_durations == {
        "respond": Figure.of(mins(30)),
        "recover": Figure.of(mins(30)),
        "report": Figure.unknown("no step in phase 'report' has started"),
    }
    assert figures.step_durations == {
        "page-oncall": Figure.of(mins(10)),
        "assess": Figure.of(mins(25)),
        "failover": Figure.of(mins(30)),
        "restore-backup": Figure.unknown("step 'restore-backup' has not started (status 'skipped')"),
        "notify-regulator": Figure.unknown("step 'notify-regulator' has not started (status 'pending')"),
    }
    assert figures.problems == ()


def test_running_step_leaves_its_phase_unknown() -> None:
    """A step still running makes its own duration and its phase's unknown, not a partial number."""
    steps = (step("page-oncall", "respond", 0, 10), step("assess", "respond", 5, None, status="running"))
    figures = run_figures(timeline(POWER_EVENT, steps=steps))

    reason = "step 'assess' started at 2024-03-01T10:05:00+00:00 and has not ended"
    assert figures.phase_durations == {"respond": Figure.unknown(reason)}
    assert figures.step_durations["assess"] == Figure.unknown(reason)
    assert figures.problems == ()


def test_step_ending_before_it_started_is_a_problem() -> None:
    """A step that ended before it started is reported, and its duration and phase are unknown."""
    steps = (step("failover", "recover", 30, 20), step("verify", "recover", None, 40))
    figures = run_figures(timeline(POWER_EVENT, steps=steps))

    reason = (
        "out of order: step 'failover' ended at 2024-03-01T10:20:00+00:00, "
        "before it started at 2024-03-01T10:30:00+00:00"
    )
    assert figures.step_durations["failover"] == Figure.unknown(reason)
    assert figures.phase_durations["recover"] == Figure.unknown(reason)
    assert figures.step_durations["verify"] == Figure.unknown("step 'verify' has an end time but no start time")
    assert figures.problems == (
        reason,
        "step 'verify' has an end time (2024-03-01T10:40:00+00:00) but no start time",
    )


def test_repeated_step_spans_first_start_to_last_end() -> None:
    """A step recorded twice (a retry) lasts from its first start to its last end."""
    steps = (step("failover", "recover", 0, 5, status="failed"), step("failover", "recover", 10, 25))

    assert run_figures(timeline(POWER_EVENT, steps=steps)).step_durations == {"failover": Figure.of(mins(25))}


def test_waiting_for_people_sums_waited_seconds() -> None:
    """Time waiting for people is the sum of waited_s; None counts as no wait, negatives are ignored."""
    steps = (
        step("approve-failover", "recover", 0, 5, kind="approve", waited_s=120),
        step("failover", "recover", 5, 10),
        step("call-supplier", "recover", 10, 20, kind="manual", waited_s=30.5),
        step("sign-off", "recover", 20, 25, kind="approve", waited_s=-4),
    )
    figures = run_figures(timeline(POWER_EVENT, steps=steps))

    assert figures.waiting_for_people == timedelta(seconds=150.5)
    assert figures.problems == ("step 'sign-off' waited a negative time (-4 s); ignored",)


# --- figures and distributions -----------------------------------------------------------------


def test_figure_has_exactly_one_of_value_and_reason() -> None:
    """A Figure with both or neither of value and reason is refused; str() shows either."""
    with pytest.raises(ValueError, match="exactly one"):
        Figure(None, None)
    with pytest.raises(ValueError, match="exactly one"):
        Figure(mins(1), "both")
    assert str(Figure.of(mins(150))) == "2h 30m"
    assert str(Figure.unknown("no 'detected' milestone recorded")) == ("unknown (no 'detected' milestone recorded)")


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([5, 1, 4, 2, 3], 3, 5),  # odd: middle value; p90 rank ⌈4.5⌉ = 5
        ([40, 10, 30, 20], 25, 40),  # even: mean of 20 and 30; p90 rank ⌈3.6⌉ = 4
        (list(range(1, 11)), 5.5, 9),  # p90 rank ⌈9⌉ = 9
        (list(range(1, 12)), 6, 10),  # p90 rank ⌈9.9⌉ = 10
        (list(range(1, 21)), 10.5, 18),  # p90 rank ⌈18⌉ = 18
        ([7], 7, 7),
    ],
)
def test_distribution_median_and_nearest_rank_p90(values: list[int], median: float, p90: int) -> None:
    """Median averages the two middle values for even counts; p90 is the nearest-rank value."""
    dist = distribution(mins(v) for v in values)

    assert dist == Distribution(len(values), mins(median), mins(p90), mins(max(values)))


def test_distribution_of_nothing_has_no_values() -> None:
    """An empty distribution has count 0 and no median, p90 or max."""
    assert distribution([]) == Distribution(0, None, None, None)


# --- summaries ---------------------------------------------------------------------------------


def incident(
    run_id: str,
    services: tuple[str, ...],
    ttr_minutes: float | None,
    *,
    mode: Mode = "real",
    start: datetime = T0,
    runbook_id: str | None = "dc-power-loss",
    rto: timedelta | None = mins(30),
    mtpd: timedelta | None = mins(60),
) -> Timeline:
    marks = {
        "impact_started": start,
        "detected": start + mins(2),
        "acknowledged": start + mins(3),
        "mitigated": start + mins(5),
    }
    if ttr_minutes is not None:
        marks["recovered"] = start + mins(ttr_minutes)
    return timeline(marks, run_id=run_id, runbook_id=runbook_id, services=services, mode=mode, rto=rto, mtpd=mtpd)


def test_summarise_keeps_real_and_exercise_apart_and_counts_each_service() -> None:
    """Real and exercise runs are summarised apart; a multi-service run counts under each service."""
    timelines = [
        incident("r1", ("voice",), 10),
        incident("r2", ("voice", "data"), 20),
        incident("r3", ("voice",), 90),
        incident("r4", ("data",), 40),
        incident("r5", ("data",), None),
        incident("x1", ("voice",), 15, mode="exercise"),
    ]
    summaries = summarise(timelines, by="service")

    assert [(s.key, s.mode) for s in summaries] == [("data", "real"), ("voice", "real"), ("voice", "exercise")]
    data, voice, voice_exercise = summaries
    assert voice == GroupSummary(
        key="voice",
        mode="real",
        count=3,
        ttr=Distribution(3, mins(20), mins(90), mins(90)),
        ttd=Distribution(3, mins(2), mins(2), mins(2)),
        tta=Distribution(3, mins(1), mins(1), mins(1)),
        time_to_mitigate=Distribution(3, mins(5), mins(5), mins(5)),
        within_rto=2,
        rto_known=3,
        share_within_rto=2 / 3,
        mtpd_breaches=1,
        unknown_ttr=0,
    )
    assert data.count == 3
    assert data.ttr == Distribution(2, mins(30), mins(40), mins(40))
    assert (data.within_rto, data.rto_known, data.share_within_rto) == (1, 2, 0.5)
    assert data.unknown_ttr == 1
    assert voice_exercise.count == 1
    assert voice_exercise.ttr == Distribution(1, mins(15), mins(15), mins(15))


def test_summarise_window_filters_by_impact_then_declared_then_run_start() -> None:
    """since ≤ start < until, where start is impact_started, else declared, else started_at."""
    jan, feb, mar = (datetime(2024, m, 15, tzinfo=UTC) for m in (1, 2, 3))
    timelines = [
        incident("jan", ("voice",), 10, start=jan),
        incident("feb", ("voice",), 20, start=feb),
        incident("mar", ("voice",), 30, start=mar),
        # Declared in February although recovered in March: placed by declared.
        timeline({"declared": feb, "recovered": mar}, run_id="declared-feb"),
        # Only the run start is known: placed by started_at.
        timeline({}, run_id="started-feb", started_at=feb),
        # Nothing to place it by: left out of any windowed summary.
        timeline({"recovered": feb}, run_id="unplaced"),
    ]

    window = summarise(
        timelines,
        by="service",
        since=datetime(2024, 2, 1, tzinfo=UTC),
        until=datetime(2024, 3, 15, tzinfo=UTC),
    )
    assert [(s.key, s.count, s.unknown_ttr) for s in window] == [("voice", 3, 1)]
    # Two known values: the median is their average, p90 (rank ⌈1.8⌉ = 2) the larger.
    assert window[0].ttr == Distribution(2, (mins(20) + timedelta(days=29)) / 2, timedelta(days=29), timedelta(days=29))

    assert summarise(timelines, by="service")[0].count == 6


def test_summarise_window_edge_is_inclusive_at_since_exclusive_at_until() -> None:
    """A run starting exactly at since is in; one starting exactly at until is out."""
    timelines = [incident("a", ("voice",), 10, start=T0), incident("b", ("voice",), 10, start=at(60))]

    summaries = summarise(timelines, by="service", since=T0, until=at(60))
    assert [s.count for s in summaries] == [1]


def test_summarise_by_runbook_groups_runs_without_one_last() -> None:
    """By runbook, runs without a runbook are grouped under None, sorted after named runbooks."""
    timelines = [
        incident("a", ("voice",), 10, runbook_id="ransomware"),
        incident("b", ("voice",), 20, runbook_id=None),
        incident("c", ("data",), 30, runbook_id="ddos"),
        incident("d", ("data",), 50, runbook_id="ddos"),
    ]
    summaries = summarise(timelines, by="runbook")

    assert [(s.key, s.count) for s in summaries] == [("ddos", 2), ("ransomware", 1), (None, 1)]
    assert summaries[0].ttr == Distribution(2, mins(40), mins(50), mins(50))


def test_summarise_mixes_offsets_and_dst_correctly() -> None:
    """Summaries use the same instant-based intervals as run_figures."""
    tl = timeline(
        {
            "impact_started": datetime(2024, 3, 31, 0, 30, tzinfo=LONDON),
            "recovered": datetime(2024, 3, 31, 2, 30, tzinfo=LONDON),
        }
    )

    assert summarise([tl], by="service")[0].ttr == Distribution(1, mins(60), mins(60), mins(60))


def test_summarise_without_rto_or_mtpd_counts_nothing_against_them() -> None:
    """Runs without an RTO do not count in rto_known; the share is None when none is known."""
    summary = summarise([incident("a", ("voice",), 10, rto=None, mtpd=None)], by="service")[0]

    assert (summary.within_rto, summary.rto_known, summary.share_within_rto) == (0, 0, None)
    assert summary.mtpd_breaches == 0


def test_summarise_refuses_unknown_grouping_and_naive_window() -> None:
    """Grouping must be service or runbook, and window bounds need a UTC offset."""
    with pytest.raises(ValueError, match="cannot summarise by 'site'"):
        summarise([], by="site")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no UTC offset"):
        summarise([], by="service", since=datetime(2024, 1, 1))


# --- slowest steps -----------------------------------------------------------------------------


def test_slowest_steps_rank_by_median_and_keep_modes_apart() -> None:
    """Steps group by (runbook, step, mode) and rank by median; unfinished runs are left out."""

    def run(run_id: str, mode: Mode, *steps: StepTiming, runbook_id: str = "dc-power-loss") -> Timeline:
        return timeline(POWER_EVENT, run_id=run_id, runbook_id=runbook_id, mode=mode, steps=steps)

    timelines = [
        run("1", "real", step("failover", "recover", 0, 10), step("page", "respond", 0, 2)),
        run("2", "real", step("failover", "recover", 0, 30), step("page", "respond", 0, 4)),
        run("3", "real", step("failover", "recover", 0, 20), step("page", "respond", 0, None)),
        run("4", "real", step("failover", "recover", 0, 60), step("page", "respond", 5, 0)),
        run("5", "exercise", step("failover", "recover", 0, 90)),
        run("6", "real", step("restore", "recover", 0, 25), runbook_id="ransomware"),
    ]
    stats = slowest_steps(timelines)

    assert stats == [
        StepStat("dc-power-loss", "failover", "exercise", 1, mins(90), mins(90), mins(90), mins(90)),
        StepStat("dc-power-loss", "failover", "real", 4, mins(25), mins(60), mins(60), mins(120)),
        StepStat("ransomware", "restore", "real", 1, mins(25), mins(25), mins(25), mins(25)),
        StepStat("dc-power-loss", "page", "real", 2, mins(3), mins(4), mins(4), mins(6)),
    ]
    assert [s.step_id for s in slowest_steps(timelines, limit=2, mode="real")] == ["failover", "restore"]


def test_slowest_steps_measure_across_dst() -> None:
    """Step durations are measured on instants, not London wall-clock times."""
    tl = timeline(
        POWER_EVENT,
        steps=(
            StepTiming(
                "failover",
                "recover",
                "command",
                "succeeded",
                datetime(2024, 3, 31, 0, 50, tzinfo=LONDON),
                datetime(2024, 3, 31, 2, 10, tzinfo=LONDON),
            ),
        ),
    )

    assert slowest_steps([tl])[0].median == mins(20)
    assert run_figures(tl).step_durations == {"failover": Figure.of(mins(20))}


def test_figures_table_names_real_fields_once() -> None:
    """Every figure in the one table names a RunFigures field (and a GroupSummary field when
    summarised), keys and labels are unique, and none is called MTTR."""
    import dataclasses

    from bcm.metrics import FIGURES, SUMMARISED_FIGURES, GroupSummary, RunFigures

    run_fields = {f.name for f in dataclasses.fields(RunFigures)}
    group_fields = {f.name for f in dataclasses.fields(GroupSummary)}
    assert all(f.attribute in run_fields for f in FIGURES)
    assert all(f.attribute in group_fields for f in SUMMARISED_FIGURES)
    assert len({f.key for f in FIGURES}) == len({f.label for f in FIGURES}) == len(FIGURES)
    assert [f.key for f in SUMMARISED_FIGURES] == [
        "time_to_recover",
        "time_to_detect",
        "time_to_acknowledge",
        "time_to_mitigate",
    ]
    assert FIGURES[0].definition == "impact_started → detected"
    assert not any("mttr" in f.key or "MTTR" in f.label for f in FIGURES)


# --- exercise time -----------------------------------------------------------------------------


def wall(seconds: float) -> datetime:
    """Return T0 plus ``seconds`` of wall-clock time."""
    return T0 + timedelta(seconds=seconds)


def played(run_id: str, speed: float, detected_s: float, recovered_s: float) -> Timeline:
    """An exercise of dc-power-loss (RTO 1h, MTPD 4h) played at ``speed``; times in wall-clock seconds."""
    marks = {"impact_started": wall(0), "detected": wall(detected_s), "recovered": wall(recovered_s)}
    return timeline(marks, run_id=run_id, mode="exercise", rto=mins(60), mtpd=mins(240), speed=speed)


def test_exercise_at_speed_has_every_duration_in_exercise_time() -> None:
    """At --speed 60 each wall-clock second counts a minute: milestones, steps, phases, waits, update gaps, verdicts."""
    marks = {
        "impact_started": wall(0),
        "declared": wall(10),
        "detected": wall(20),
        "acknowledged": wall(30),
        "mitigated": wall(60),
        "recovered": wall(94),
        "resolved": wall(100),
    }
    steps = (
        StepTiming("page", "respond", "notify", "succeeded", wall(0), wall(10)),
        StepTiming("start-generators", "recover", "manual", "succeeded", wall(30), wall(90), 45.0),
    )
    tl = timeline(
        marks,
        mode="exercise",
        steps=steps,
        rto=mins(60),
        mtpd=mins(90),
        cadence=mins(30),
        updates=(wall(30), wall(70)),  # gaps 20 s and 40 s, then 30 s to resolved
        speed=60.0,
    )
    figures = run_figures(tl)

    assert (figures.ttd, figures.tta, figures.time_to_mitigate, figures.ttr, figures.time_to_resolve) == (
        Figure.of(mins(20)),
        Figure.of(mins(10)),
        Figure.of(mins(60)),
        Figure.of(mins(94)),
        Figure.of(mins(100)),
    )
    assert (figures.rto_attained, figures.rto_margin, figures.mtpd_breached) == (False, -mins(34), True)
    assert figures.step_durations == {"page": Figure.of(mins(10)), "start-generators": Figure.of(mins(60))}
    assert figures.phase_durations == {"respond": Figure.of(mins(10)), "recover": Figure.of(mins(60))}
    assert figures.waiting_for_people == mins(45)
    assert figures.communication == CommunicationFigures(
        cadence=mins(30),
        updates=2,
        expected=3,
        on_time=1,
        share_on_time=0.5,
        longest_gap=mins(40),
        unknown_reason=None,
    )
    assert figures.problems == ()


def test_speed_one_and_real_runs_stay_on_the_wall_clock() -> None:
    """Speed 1 (every real run, and an exercise played in real time) leaves durations as measured."""
    real = run_figures(timeline({"impact_started": wall(0), "recovered": wall(94)}, rto=mins(60)))
    exercise = run_figures(played("x1", 1.0, 20, 94))

    assert (real.ttr, real.rto_attained, real.rto_margin) == (
        Figure.of(timedelta(seconds=94)),
        True,
        mins(60) - timedelta(seconds=94),
    )
    assert (exercise.ttd, exercise.ttr, exercise.rto_attained) == (
        Figure.of(timedelta(seconds=20)),
        Figure.of(timedelta(seconds=94)),
        True,
    )


def test_summaries_count_exercises_at_speed_in_exercise_time() -> None:
    """Exercises at speeds 1 and 60 summarise in exercise time (median, p90, within RTO); the real run is unchanged."""
    timelines = [
        played("x1", 1.0, 10 * 60, 50 * 60),  # 10m to detect, 50m to recover: within the 1h RTO
        played("x60", 60.0, 20, 94),  # 20 s and 94 s of play: 20m and 1h 34m, RTO missed
        timeline(
            {"impact_started": wall(0), "detected": wall(5 * 60), "recovered": wall(40 * 60)},
            run_id="r1",
            rto=mins(60),
            mtpd=mins(240),
        ),
    ]
    real, exercise = summarise(timelines, by="runbook")

    nothing = Distribution(0, None, None, None)
    assert exercise == GroupSummary(
        key="dc-power-loss",
        mode="exercise",
        count=2,
        ttr=Distribution(2, mins(72), mins(94), mins(94)),
        ttd=Distribution(2, mins(15), mins(20), mins(20)),
        tta=nothing,
        time_to_mitigate=nothing,
        within_rto=1,
        rto_known=2,
        share_within_rto=0.5,
        mtpd_breaches=0,
        unknown_ttr=0,
        at_speed=1,
    )
    assert real == GroupSummary(
        key="dc-power-loss",
        mode="real",
        count=1,
        ttr=Distribution(1, mins(40), mins(40), mins(40)),
        ttd=Distribution(1, mins(5), mins(5), mins(5)),
        tta=nothing,
        time_to_mitigate=nothing,
        within_rto=1,
        rto_known=1,
        share_within_rto=1.0,
        mtpd_breaches=0,
        unknown_ttr=0,
        at_speed=0,
    )


def test_slowest_steps_count_exercises_at_speed_in_exercise_time() -> None:
    """A step of 90 s played at speed 60 ranks as 1h 30m beside the same step played in real time."""
    timelines = [
        timeline(POWER_EVENT, run_id="x1", mode="exercise", steps=(step("failover", "recover", 0, 30),)),
        timeline(
            POWER_EVENT,
            run_id="x60",
            mode="exercise",
            steps=(StepTiming("failover", "recover", "command", "succeeded", wall(0), wall(90)),),
            speed=60.0,
        ),
    ]

    assert slowest_steps(timelines) == [
        StepStat("dc-power-loss", "failover", "exercise", 2, mins(60), mins(90), mins(90), mins(120))
    ]


def test_speed_that_is_not_positive_counts_as_one() -> None:
    """A speed of 0 or less is reported as a problem by run_figures and counted as 1 everywhere."""
    tl = played("x0", 0.0, 20, 94)

    figures = run_figures(tl)
    assert figures.ttr == Figure.of(timedelta(seconds=94))
    assert figures.problems == ("speed must be positive, got 0; counted as 1",)
    [group] = summarise([tl], by="runbook")
    assert (group.ttr.median, group.at_speed) == (timedelta(seconds=94), 0)
