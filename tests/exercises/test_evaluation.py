"""Scoring objectives from fixed records: each measure kind met and missed, the rating rule at its
boundaries, not-scored reasons, evaluator ratings over suggestions, and the inject timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bcm.exercises.evaluation import (
    ExerciseRecords,
    Score,
    evaluate,
    inject_timeline,
    suggest_cadence_rating,
    suggest_rating,
)
from bcm.exercises.models import Exercise
from bcm.store import (
    ExerciseRunRecord,
    InjectRecord,
    MarkRecord,
    ObservationRecord,
    RunRecord,
    RunTargets,
    StepRecord,
)

RUN = "e0" * 16
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
#: Every record here is at speed 60: one wall-clock second is one minute of exercise time.
SPEED = 60.0
M = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    """The wall-clock time that is ``minutes`` of exercise time after STARTEX at speed 60."""
    return T0 + timedelta(seconds=minutes)


def exercise(*objectives: dict[str, Any], msel: list[dict[str, Any]] | None = None) -> Exercise:
    return Exercise.model_validate(
        {
            "version": 1,
            "id": "power-tabletop",
            "title": "Power tabletop",
            "runbook": "dc-power-loss",
            "type": "tabletop",
            "scope": "lon-dc1",
            "scenario": "The UPS fails to hand over.",
            "sponsor": "coo",
            "participants": ["incident_commander"],
            "evaluators": ["continuity_manager"],
            "objectives": list(objectives),
            "msel": msel or [],
        }
    )


def objective(measure: dict[str, Any] | None, objective_id: str = "o") -> dict[str, Any]:
    found: dict[str, Any] = {"id": objective_id, "title": "An objective", "capability": "operational-coordination"}
    if measure is not None:
        found["measure"] = measure
    return found


def step(step_id: str, status: str, ended: float | None, started: float = 0.0) -> StepRecord:
    return StepRecord(
        run_id=RUN,
        step_id=step_id,
        phase="response",
        kind="manual",
        status=status,
        attempts=1,
        started_at=at(started),
        ended_at=None if ended is None else at(ended),
        output=None,
        error=None,
        actor="Elijah McCoy",
        reason=None,
    )


def observation(
    number: int, objective_id: str | None, kind: str, rating: str | None, by: str = "Edward Deming"
) -> ObservationRecord:
    return ObservationRecord(
        id=number,
        run_id=RUN,
        objective_id=objective_id,
        kind=kind,
        rating=rating,
        note=f"note {number}",
        root_cause=None,
        by=by,
        role="continuity_manager",
        at=at(100 + number),
    )


def records(
    *,
    marks: dict[str, float] | None = None,
    steps: tuple[StepRecord, ...] = (),
    updates: tuple[float, ...] = (),
    endex: float | None = 90,
    targets: RunTargets | None = None,
    observations: tuple[ObservationRecord, ...] = (),
    injects: tuple[InjectRecord, ...] = (),
    ended_by: str = "played out",
) -> ExerciseRecords:
    """An exercise run at speed 60 that ended (ENDEX, by ``ended_by``) after ``endex`` minutes of exercise time."""
    run = RunRecord(
        id=RUN,
        runbook_id="dc-power-loss",
        runbook_title="Data-centre power loss",
        runbook_hash="ab" * 32,
        runbook_path="runbooks/dc-power-loss.yaml",
        mode="exercise",
        parameters={},
        triggered_by="test",
        services=("colocation",),
        severity="sev1",
        status="running" if endex is None else "succeeded" if ended_by == "played out" else "cancelled",
        flow_run_id=None,
        error=None,
        started_at=T0,
        ended_at=None if endex is None else at(endex),
        targets=targets or RunTargets(rto=60 * M, mtpd=4 * 60 * M, cadence=30 * M),
    )
    exercise_run = ExerciseRunRecord(
        run_id=RUN,
        exercise_id="power-tabletop",
        exercise_title="Power tabletop",
        exercise_hash="cd" * 32,
        exercise_path="runbooks/exercises/power-tabletop.yaml",
        speed=SPEED,
        auto_respond=False,
        startex_at=T0,
        endex_at=None if endex is None else at(endex),
        ended_by=None if endex is None else ended_by,
    )
    mark_records = tuple(MarkRecord(RUN, name, at(minutes), "step") for name, minutes in (marks or {}).items())
    return ExerciseRecords(
        run=run,
        exercise_run=exercise_run,
        steps=steps,
        marks=mark_records,
        injects=injects,
        observations=observations,
        updates=tuple(at(minutes) for minutes in updates),
        targets=run.targets,
    )


def score(measure: dict[str, Any] | None, data: ExerciseRecords, *, as_of: float = 200) -> Score:
    return evaluate(exercise(objective(measure)), data, as_of=at(as_of)).objectives[0].score


# --------------------------------------------------------------------------- the rating rule


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "P"),
        (15 * M, "P"),  # exactly 25 % to spare
        (15 * M + timedelta(microseconds=1), "S"),
        (20 * M, "S"),  # exactly the threshold
        (20 * M + timedelta(microseconds=1), "M"),
        (40 * M, "M"),  # exactly twice the threshold
        (40 * M + timedelta(microseconds=1), "U"),
        (None, "U"),  # never happened
    ],
)
def test_margin_rule_at_its_boundaries(value: timedelta | None, expected: str) -> None:
    """Against 20m: ≤ 15m P, ≤ 20m S, ≤ 40m M, later or never U; the boundaries are exact."""
    assert suggest_rating(value, 20 * M) == expected


@pytest.mark.parametrize(
    ("share", "at_least", "all_on_time", "expected"),
    [
        (1.0, 1.0, True, "P"),
        (0.8, 0.8, False, "S"),  # met, with a late update
        (0.75, 0.8, False, "M"),
        (0.4, 0.8, False, "M"),  # exactly half the share required
        (0.39, 0.8, False, "U"),
        (0.0, 1.0, False, "U"),
    ],
)
def test_cadence_rule_at_its_boundaries(share: float, at_least: float, all_on_time: bool, expected: str) -> None:
    """Share ≥ required: P (S with any late update); ≥ half of it: M; below: U."""
    assert suggest_cadence_rating(share, at_least, all_on_time=all_on_time) == expected


# --------------------------------------------------------------------------- milestones


def test_milestone_met_with_a_quarter_to_spare_is_p_in_exercise_time() -> None:
    """Acknowledged 9 wall seconds after STARTEX at speed 60 is 9m of exercise time: 6m (40%) to spare, P."""
    result = score({"milestone": "acknowledged", "within": "15m"}, records(marks={"acknowledged": 9}))
    assert result == Score(
        "met",
        "acknowledged 9m after STARTEX: within 15m, 6m to spare (40%)",
        value=9 * M,
        threshold=15 * M,
        suggested="P",
    )


def test_milestone_met_in_the_last_quarter_is_s() -> None:
    """12m against 15m leaves 20 % to spare: met, S."""
    result = score({"milestone": "acknowledged", "within": "15m"}, records(marks={"acknowledged": 12}))
    assert (result.outcome, result.value, result.suggested) == ("met", 12 * M, "S")


def test_milestone_missed_within_twice_the_threshold_is_m() -> None:
    """Mitigated 25m after declared (at 5m) against 20m of declared: missed by 5m, M."""
    data = records(marks={"declared": 5, "mitigated": 30})
    result = score({"milestone": "mitigated", "within": "20m", "of": "declared"}, data)
    assert result == Score(
        "missed",
        "mitigated 25m after declared: 5m over 20m (within twice the threshold)",
        value=25 * M,
        threshold=20 * M,
        suggested="M",
    )


def test_milestone_that_never_happened_is_missed_u() -> None:
    """No acknowledged by ENDEX (1h 30m): missed, U, with no figure made up."""
    result = score({"milestone": "acknowledged", "within": "15m"}, records(marks={"declared": 1}))
    assert result == Score(
        "missed",
        "acknowledged never happened (play ended 1h 30m after STARTEX; threshold 15m)",
        threshold=15 * M,
        suggested="U",
    )


def test_milestone_counted_of_a_milestone_that_never_happened_is_not_scored() -> None:
    """Mitigated within 20m of declared, with no declared: not scored, saying why."""
    result = score({"milestone": "mitigated", "within": "20m", "of": "declared"}, records(marks={"mitigated": 10}))
    assert result == Score("not_scored", "measured from declared, which never happened")


def test_milestone_not_reached_yet_in_play_is_not_scored_until_twice_the_threshold() -> None:
    """In play (no ENDEX) 20m in: not scored yet; 31m in: over twice 15m, missed U."""
    data = records(marks={}, endex=None)
    early = score({"milestone": "acknowledged", "within": "15m"}, data, as_of=20)
    late = score({"milestone": "acknowledged", "within": "15m"}, data, as_of=31)
    assert (early.outcome, early.detail) == (
        "not_scored",
        "acknowledged not reached 20m after STARTEX (threshold 15m): still in play",
    )
    assert (late.outcome, late.suggested, late.detail) == (
        "missed",
        "U",
        "acknowledged not reached 31m after STARTEX, over twice 15m",
    )


# --------------------------------------------------------------------------- steps


def test_step_succeeded_within_its_time_is_met() -> None:
    """confirm-power-state succeeded at 7m against 10m: 3m (30%) to spare, P."""
    data = records(steps=(step("confirm-power-state", "succeeded", 7, started=5),))
    result = score({"step": "confirm-power-state", "within": "10m"}, data)
    assert result == Score(
        "met",
        "step confirm-power-state succeeded 7m after STARTEX: within 10m, 3m to spare (30%)",
        value=7 * M,
        threshold=10 * M,
        suggested="P",
    )


def test_step_succeeded_too_late_is_missed() -> None:
    """Succeeded at 21m against 10m: more than twice the threshold, U."""
    data = records(steps=(step("confirm-power-state", "succeeded", 21),))
    result = score({"step": "confirm-power-state", "within": "10m"}, data)
    assert (result.outcome, result.value, result.suggested, result.detail) == (
        "missed",
        21 * M,
        "U",
        "step confirm-power-state succeeded 21m after STARTEX: 11m over 10m (more than twice the threshold)",
    )


def test_step_that_failed_is_missed_u() -> None:
    """A step that timed out did not succeed: missed, U."""
    data = records(steps=(step("confirm-power-state", "timed_out", 15),))
    result = score({"step": "confirm-power-state", "within": "10m"}, data)
    assert result == Score("missed", "step confirm-power-state timed out", threshold=10 * M, suggested="U")


def test_step_without_a_time_succeeded_is_p_and_never_ran_is_u() -> None:
    """No time limit: succeeded → met P; no record by ENDEX → missed U."""
    done = score({"step": "assign-roles"}, records(steps=(step("assign-roles", "succeeded", 4),)))
    never = score({"step": "assign-roles"}, records())
    assert done == Score("met", "step assign-roles succeeded 4m after STARTEX", value=4 * M, suggested="P")
    assert never == Score(
        "missed", "step assign-roles did not finish (status not started) by the end of play", suggested="U"
    )


def test_skipped_step_is_not_scored() -> None:
    """A step skipped by its condition was not tested: not scored."""
    data = records(steps=(step("fuel-callout", "skipped", 3),))
    assert score({"step": "fuel-callout"}, data) == Score(
        "not_scored", "step fuel-callout was skipped (its condition did not hold): not tested"
    )


# --------------------------------------------------------------------------- cadence


def test_cadence_kept_with_every_update_on_time_is_p() -> None:
    """Declared at 1m, updates at 20m, 45m, 70m against 30m: 3 of 3 on time, P."""
    data = records(marks={"declared": 1}, updates=(20, 45, 70))
    result = score({"cadence": "kept"}, data)
    assert result == Score(
        "met",
        "3 of 3 updates on time (100%, every 30m, 0 missed), at least 100% required; longest gap 25m",
        share=1.0,
        at_least=1.0,
        suggested="P",
    )


def test_cadence_missed_is_m_above_half_and_u_below() -> None:
    """Updates at 10m, 35m, 70m: the last came 35m after the one before, 2 of 3 on time: M; at_least 0.8 with
    1 of 3 on time (gaps 40m, 40m, 9m) is below half: U."""
    most = score({"cadence": "kept"}, records(marks={"declared": 1}, updates=(10, 35, 70)))
    few = score({"cadence": "kept", "at_least": 0.8}, records(marks={"declared": 1}, updates=(41, 81, 90)))
    assert (most.outcome, most.share, most.suggested, most.detail) == (
        "missed",
        2 / 3,
        "M",
        "2 of 3 updates on time (67%, every 30m, 0 missed), at least 100% required; longest gap 35m",
    )
    assert (few.outcome, few.share, few.suggested) == ("missed", 1 / 3, "U")


def test_cadence_with_no_update_at_all_is_u() -> None:
    """No update in the 1h 29m after declared, when two were due: missed, U."""
    result = score({"cadence": "kept"}, records(marks={"declared": 1}))
    assert result == Score(
        "missed", "no stakeholder update was sent; 2 were due (every 30m)", share=0.0, at_least=1.0, suggested="U"
    )


def test_cadence_counts_the_updates_due_after_the_last_one_as_missed() -> None:
    """Updates at 1m and 2m, silence to ENDEX at 1h 24m: two due updates never came, 2 of 4 on time, M."""
    result = score({"cadence": "kept"}, records(updates=(1, 2), endex=84))
    assert result == Score(
        "missed",
        "2 of 4 updates on time (50%, every 30m, 2 missed), at least 100% required; longest gap 1h 22m",
        share=0.5,
        at_least=1.0,
        suggested="M",
    )


def test_cadence_gap_between_updates_counts_the_late_update_and_the_ones_missed_before_it() -> None:
    """Updates at 10m and 1h 15m: the one due at 40m never came, the 1h 15m one is late: 1 of 3 on time."""
    result = score({"cadence": "kept", "at_least": 0.5}, records(updates=(10, 75), endex=90))
    assert result == Score(
        "missed",
        "1 of 3 updates on time (33%, every 30m, 1 missed), at least 50% required; longest gap 1h 5m",
        share=1 / 3,
        at_least=0.5,
        suggested="M",
    )


def test_cadence_in_play_counts_the_updates_missed_up_to_now() -> None:
    """In play 1h 10m after STARTEX with one update at 5m: two were due since (35m, 1h 5m), not scored yet."""
    result = score({"cadence": "kept"}, records(updates=(5,), endex=None), as_of=70)
    assert result == Score(
        "not_scored",
        "1 of 3 updates on time (33%, every 30m, 2 missed), at least 100% required; longest gap 1h 5m: still in play",
        share=1 / 3,
        at_least=1.0,
    )


# --------------------------------------------------------------------------- ENDEX by a person


def early_endex_exercise() -> Exercise:
    return exercise(
        objective({"milestone": "resolved", "within": "4h"}, "regulator-report"),
        objective({"milestone": "acknowledged", "within": "5m", "of": "detected"}, "ack-after-detect"),
        objective({"milestone": "declared", "within": "15m"}, "declare-fast"),
        objective({"milestone": "mitigated", "within": "20m"}, "mitigate-fast"),
        objective({"step": "confirm-power-state", "within": "30m"}, "confirm"),
        objective({"step": "fuel-callout"}, "fuel"),
        objective({"step": "assign-roles"}, "roles"),
        objective({"target": "rto"}, "rto"),
    )


def test_objectives_not_due_when_a_person_ended_play_are_not_scored() -> None:
    """ENDEX by a person at 23m: what was not due yet and had not happened is not scored; the rest as usual."""
    data = records(
        marks={"detected": 20, "mitigated": 10},
        steps=(
            step("confirm-power-state", "cancelled", 23, started=12),
            step("fuel-callout", "cancelled", 23, started=15),
            step("assign-roles", "failed", 8),
        ),
        endex=23,
        ended_by="Ada Lovelace",
    )
    found = evaluate(early_endex_exercise(), data, as_of=at(200))
    assert [(r.objective.id, r.score.outcome, r.score.suggested, r.score.detail) for r in found.objectives] == [
        ("regulator-report", "not_scored", None, "play ended before the threshold (ENDEX at +23m, due by +4h)"),
        ("ack-after-detect", "not_scored", None, "play ended before the threshold (ENDEX at +23m, due by +25m)"),
        (
            "declare-fast",
            "missed",
            "U",
            "declared never happened (play ended 23m after STARTEX; threshold 15m)",
        ),
        ("mitigate-fast", "met", "P", "mitigated 10m after STARTEX: within 20m, 10m to spare (50%)"),
        ("confirm", "not_scored", None, "play ended before the threshold (ENDEX at +23m, due by +30m)"),
        (
            "fuel",
            "not_scored",
            None,
            "play ended before step fuel-callout finished (ENDEX at +23m; the step has no time limit)",
        ),
        ("roles", "missed", "U", "step assign-roles failed"),
        (
            "rto",
            "not_scored",
            None,
            "time to recover against the RTO, from STARTEX (impact_started not marked): "
            "play ended before the threshold (ENDEX at +23m, due by +1h)",
        ),
    ]


def test_a_run_that_played_out_keeps_scoring_what_never_happened_as_u() -> None:
    """The same records played out (the runbook finished) at 23m: not happened by ENDEX is missed, U."""
    data = records(marks={"detected": 20}, endex=23)
    found = evaluate(early_endex_exercise(), data, as_of=at(200))
    assert [(r.objective.id, r.score.outcome, r.score.suggested) for r in found.objectives][:2] == [
        ("regulator-report", "missed", "U"),
        ("ack-after-detect", "missed", "U"),
    ]
    assert found.objectives[1].score.detail == (
        "acknowledged never happened (play ended 3m after detected; threshold 5m)"
    )


# --------------------------------------------------------------------------- targets


def test_rto_met_counts_from_startex_when_impact_started_is_not_marked() -> None:
    """Recovered at 50m against a 1h RTO, from STARTEX: 10m (17%) to spare, S, basis startex."""
    result = score({"target": "rto"}, records(marks={"recovered": 50}))
    assert result == Score(
        "met",
        "time to recover against the RTO, from STARTEX (impact_started not marked): "
        "recovered 50m after STARTEX: within 1h, 10m to spare (17%)",
        value=50 * M,
        threshold=60 * M,
        suggested="S",
        basis="startex",
    )


def test_rto_missed_counts_from_impact_started_when_marked() -> None:
    """impact_started at 10m, recovered at 140m: 2h 10m against 1h, more than twice: U, basis impact_started."""
    result = score({"target": "rto"}, records(marks={"impact_started": 10, "recovered": 140}, endex=150))
    assert (result.outcome, result.value, result.suggested, result.basis) == ("missed", 130 * M, "U", "impact_started")
    assert result.detail == (
        "time to recover against the RTO, from impact_started: recovered 2h 10m after impact_started: "
        "1h 10m over 1h (more than twice the threshold)"
    )


def test_mtpd_met_with_margin_is_p() -> None:
    """Recovered at 80m against a 4h MTPD: P."""
    result = score({"target": "mtpd"}, records(marks={"recovered": 80}))
    assert (result.outcome, result.value, result.threshold, result.suggested) == ("met", 80 * M, 240 * M, "P")


def test_target_the_run_does_not_have_is_not_scored() -> None:
    """A run stored without an MTPD: not scored, saying so."""
    data = records(marks={"recovered": 80}, targets=RunTargets(rto=60 * M))
    assert score({"target": "mtpd"}, data) == Score("not_scored", "the run has no MTPD stored to measure against")


# --------------------------------------------------------------------------- ratings


def test_evaluator_rating_overrides_the_suggestion_and_both_are_kept() -> None:
    """Suggested S from the timeline, rated M then U by evaluators: the final is the latest (U), by whom."""
    data = records(
        marks={"acknowledged": 12},
        observations=(
            observation(1, "o", "improvement", "M"),
            observation(2, "o", "note", None),
            observation(3, "o", "note", "U", by="Joseph Juran"),
            observation(4, None, "hotwash", None),
        ),
    )
    result = evaluate(exercise(objective({"milestone": "acknowledged", "within": "15m"})), data, as_of=at(200))
    only = result.objectives[0]
    assert (only.suggested, only.rating, only.rated_by, only.rated_role) == (
        "S",
        "U",
        "Joseph Juran",
        "continuity_manager",
    )
    assert [o.id for o in only.improvements] == [1]
    assert [o.id for o in only.notes] == [2, 3]
    assert [o.id for o in result.hotwash] == [4]


def test_objective_without_a_measure_takes_the_evaluators_rating_only() -> None:
    """No measure: not scored, no suggestion; unrated until an evaluator rates it."""
    unrated = evaluate(exercise(objective(None)), records(), as_of=at(200)).objectives[0]
    rated = evaluate(
        exercise(objective(None)), records(observations=(observation(1, "o", "note", "P"),)), as_of=at(200)
    )
    assert (unrated.score.outcome, unrated.score.detail, unrated.suggested, unrated.rating) == (
        "not_scored",
        "no measure on the timeline: rated by the evaluators",
        None,
        None,
    )
    assert rated.rating_counts() == {"P": 1, "S": 0, "M": 0, "U": 0, "none": 0}


# --------------------------------------------------------------------------- the inject timeline


def test_inject_timeline_says_when_each_was_delivered_and_when_the_expected_action_came() -> None:
    """Delivered injects show when the expected action came; skipped or undelivered ones say not sent, and why."""
    msel = [
        {"number": 1, "at": "0m", "from": "continuity_manager", "to": "incident_commander", "message": "m1",
         "expected_action": "assign roles", "expects": {"step": "assign-roles"}},
        {"number": 2, "at": "5m", "from": "continuity_manager", "to": "dc_ops", "delivery": "dm", "message": "m2",
         "expected_action": "confirm power", "expects": {"milestone": "detected"}},
        {"number": 3, "at": "12m", "from": "continuity_manager", "to": "incident_commander", "message": "m3",
         "expected_action": "ask dc_ops", "expects": {"milestone": "detected"},
         "contingency": {"unless": {"milestone": "detected"}}},
        {"number": 4, "at": "2h", "from": "continuity_manager", "to": "comms", "message": "m4",
         "expected_action": "post", "expects": {"milestone": "resolved"}},
    ]  # fmt: skip
    injects = (
        InjectRecord(RUN, 1, "delivered", at(0), at(0), "channel", "incident_commander", "m1 rendered"),
        InjectRecord(RUN, 2, "delivered", at(5), at(6), "dm", "dc_ops", "m2 rendered"),
        InjectRecord(
            RUN,
            3,
            "skipped",
            at(12),
            at(12),
            "channel",
            "incident_commander",
            "m3",
            "unless milestone detected: it had happened",
        ),
    )
    data = records(marks={"detected": 9}, steps=(step("assign-roles", "succeeded", 4),), injects=injects)
    rows = inject_timeline(exercise(objective(None), msel=msel), data)
    assert [(r.number, r.due, r.status, r.at_offset, r.response_offset, r.response) for r in rows] == [
        (1, 0 * M, "delivered", 0 * M, 4 * M, "step assign-roles at +4m, 4m after delivery"),
        (2, 5 * M, "delivered", 6 * M, 9 * M, "milestone detected at +9m, 3m after delivery"),
        (3, 12 * M, "skipped", 12 * M, None, "not sent (condition unless milestone detected: it had happened)"),
        (4, 120 * M, "not delivered", None, None, "not sent (play ended first)"),
    ]
    assert [(r.message, r.reason) for r in rows[:3]] == [
        ("m1 rendered", None),
        ("m2 rendered", None),
        ("m3", "unless milestone detected: it had happened"),
    ]


def test_inject_skipped_at_endex_says_play_ended_first() -> None:
    """An inject recorded as skipped because play ended before it was due was not sent: play ended first."""
    msel = [
        {"number": 1, "at": "2h", "from": "continuity_manager", "to": "comms", "message": "m1",
         "expected_action": "post", "expects": {"milestone": "detected"}},
    ]  # fmt: skip
    skipped = InjectRecord(
        RUN, 1, "skipped", at(120), at(23), "channel", "comms", "m1", "not delivered before ENDEX (Ada Lovelace)"
    )
    data = records(marks={"detected": 9}, injects=(skipped,), endex=23, ended_by="Ada Lovelace")
    [row] = inject_timeline(exercise(objective(None), msel=msel), data)
    assert (row.status, row.response_offset, row.response) == ("skipped", None, "not sent (play ended first)")
