"""Timelines from the store in bulk: runs, marks, steps, approval waits, updates, stored or fallback targets, speed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bcm.metrics import Distribution, Figure, Mark, StepTiming, Timeline, run_figures, summarise
from bcm.reports.run_summary import rto_line, run_events, summary_markdown, timeline_table
from bcm.spec import load_library
from bcm.store import ExerciseRunRecord, RunTargets, Store
from bcm.timelines import library_targets, load_timelines, run_timeline
from tests.incident_fixtures import make_library

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store on each backend."""
    with Store.open(db_url, clock=lambda: T0) as opened:
        yield opened


def _run(store: Store, run_id: str, *, mode: str = "real", started: datetime = T0, **kwargs: object) -> None:
    store.create_run(
        run_id=run_id,
        runbook_id=str(kwargs.pop("runbook_id", "dns-outage")),
        runbook_title="DNS outage",
        runbook_hash="ab" * 32,
        runbook_path="runbooks/dns-outage.yaml",
        mode=mode,
        parameters={},
        triggered_by="alice",
        services=list(kwargs.pop("services", ["dns"])),  # type: ignore[call-overload]
        severity="sev2",
        started_at=started,
        **kwargs,  # type: ignore[arg-type]
    )


def test_one_run_has_marks_steps_waits_updates_and_stored_targets(store: Store) -> None:
    """run_timeline joins everything about one run; approval waits land on their steps."""
    targets = RunTargets(rto=timedelta(minutes=10), cadence=timedelta(minutes=30))
    _run(store, "a" * 32, targets=targets)
    store.add_mark("a" * 32, "declared", T0 + timedelta(minutes=1), "step:declare")
    store.add_mark("a" * 32, "recovered", T0 + timedelta(minutes=12), "step:restore")
    store.upsert_step(
        "a" * 32,
        "restore",
        phase="recovery",
        kind="manual",
        status="succeeded",
        started_at=T0 + timedelta(minutes=2),
        ended_at=T0 + timedelta(minutes=12),
    )
    store.record_approval("a" * 32, "restore", by="bob", decision="done", note=None, waited_s=600.0, at=T0)
    store.enqueue_message("k1", kind="notify", payload={"text": "hi"}, run_id="a" * 32, at=T0 + timedelta(minutes=3))
    store.enqueue_message("k2", kind="approval_request", payload={}, run_id="a" * 32, at=T0)
    store.mark_message_delivered("k1", result={"ok": True}, at=T0 + timedelta(minutes=4))
    assert run_timeline(store, "a" * 32) == Timeline(
        run_id="a" * 32,
        runbook_id="dns-outage",
        services=("dns",),
        mode="real",
        marks=(
            Mark("declared", T0 + timedelta(minutes=1)),
            Mark("recovered", T0 + timedelta(minutes=12)),
        ),
        steps=(
            StepTiming(
                "restore",
                "recovery",
                "manual",
                "succeeded",
                T0 + timedelta(minutes=2),
                T0 + timedelta(minutes=12),
                600.0,
            ),
        ),
        rto=timedelta(minutes=10),
        cadence=timedelta(minutes=30),
        updates=(T0 + timedelta(minutes=4),),
        started_at=T0,
        ended_at=None,
    )


def test_window_mode_runbook_and_service_filters(store: Store) -> None:
    """Dry runs never count; mode, runbook, service and the start window select runs."""
    _run(store, "1" * 32, started=T0)
    _run(store, "2" * 32, mode="exercise", started=T0 + timedelta(days=1))
    _run(store, "3" * 32, mode="dry-run", started=T0)
    _run(store, "4" * 32, started=T0 - timedelta(days=400), services=["voice-core"], runbook_id="other")
    assert [t.run_id for t in load_timelines(store)] == ["4" * 32, "1" * 32, "2" * 32]
    assert [t.run_id for t in load_timelines(store, mode="exercise")] == ["2" * 32]
    assert [t.run_id for t in load_timelines(store, service="voice-core")] == ["4" * 32]
    assert [t.run_id for t in load_timelines(store, runbook_id="other")] == ["4" * 32]
    store.update_run("4" * 32, status="succeeded", ended_at=T0 - timedelta(days=399))
    since = T0 - timedelta(days=365)
    assert [t.run_id for t in load_timelines(store, since=since, until=T0 + timedelta(days=1))] == ["1" * 32]


def test_runs_without_stored_targets_fall_back_to_the_library(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No stored targets: the runbook's effective targets, else the tightest BIA of the run's services."""
    library = load_library(make_library(tmp_path_factory.mktemp("lib")))
    _run(store, "1" * 32)
    _run(store, "2" * 32, runbook_id="gone", services=["voice-core", "dns"])
    _run(store, "3" * 32, runbook_id="gone", services=["unknown"])
    found = {
        t.run_id: (t.rto, t.rpo, t.mtpd, t.cadence) for t in load_timelines(store, fallback=library_targets(library))
    }
    assert found == {
        "1" * 32: (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=2), timedelta(minutes=30)),
        "2" * 32: (timedelta(minutes=15), timedelta(minutes=15), timedelta(hours=2), None),
        "3" * 32: (None, None, None, None),
    }


def test_summaries_from_stored_runs(store: Store) -> None:
    """Figures computed from stored timelines: median and p90 time to recover, share within RTO."""
    for n, minutes in enumerate((5, 8, 20), start=1):
        run_id = str(n) * 32
        _run(store, run_id, targets=RunTargets(rto=timedelta(minutes=10)))
        store.add_mark(run_id, "impact_started", T0, "record")
        store.add_mark(run_id, "recovered", T0 + timedelta(minutes=minutes), "record")
    [group] = summarise(load_timelines(store), by="service")
    assert (group.key, group.count, group.ttr.median, group.ttr.p90) == (
        "dns",
        3,
        timedelta(minutes=8),
        timedelta(minutes=20),
    )
    assert (group.within_rto, group.rto_known, group.share_within_rto) == (2, 3, 2 / 3)


# --- exercises played at a speed ---------------------------------------------------------------

POWER_TARGETS = RunTargets(rto=timedelta(hours=1), mtpd=timedelta(hours=4), cadence=timedelta(minutes=30))


def _power_run(store: Store, run_id: str, mode: str, started: datetime, speed: float | None, **marks: float) -> None:
    """A dc-power-loss run (RTO 1h), ``marks`` in wall-clock seconds after ``started``; played at ``speed``."""
    _run(store, run_id, mode=mode, started=started, runbook_id="dc-power-loss", targets=POWER_TARGETS)
    if speed is not None:
        store.start_exercise(
            ExerciseRunRecord(
                run_id=run_id,
                exercise_id="dc-power-drill",
                exercise_title="Power drill",
                exercise_hash="cd" * 32,
                exercise_path="exercises/dc-power-drill.yaml",
                speed=speed,
                auto_respond=True,
                startex_at=started,
                endex_at=None,
                ended_by=None,
            )
        )
    for milestone, seconds in marks.items():
        store.add_mark(run_id, milestone, started + timedelta(seconds=seconds), "test")


@pytest.fixture
def played(store: Store) -> Store:
    """Exercises of dc-power-loss at speeds 1 and 60, and a real run of it."""
    _power_run(store, "1" * 32, "exercise", T0, 1.0, impact_started=0, detected=600, recovered=3000)
    _power_run(store, "6" * 32, "exercise", T0 + timedelta(days=1), 60.0, impact_started=0, detected=20, recovered=94)
    _power_run(store, "9" * 32, "real", T0 + timedelta(days=2), None, impact_started=0, detected=300, recovered=2400)
    return store


def test_figures_of_exercises_at_speed_are_in_exercise_time(played: Store) -> None:
    """Exercises count in exercise time per run and in summaries (median, p90, within RTO); the real run does not."""
    timelines = load_timelines(played)
    assert {t.run_id: t.speed for t in timelines} == {"1" * 32: 1.0, "6" * 32: 60.0, "9" * 32: 1.0}
    figures = {t.run_id: run_figures(t) for t in timelines}
    assert {run_id: (f.ttd.value, f.ttr.value, f.rto_attained) for run_id, f in figures.items()} == {
        "1" * 32: (timedelta(minutes=10), timedelta(minutes=50), True),
        "6" * 32: (timedelta(minutes=20), timedelta(minutes=94), False),
        "9" * 32: (timedelta(minutes=5), timedelta(minutes=40), True),
    }
    real, exercise = summarise(timelines, by="runbook")
    assert (exercise.mode, exercise.ttr, exercise.ttd) == (
        "exercise",
        Distribution(2, timedelta(minutes=72), timedelta(minutes=94), timedelta(minutes=94)),
        Distribution(2, timedelta(minutes=15), timedelta(minutes=20), timedelta(minutes=20)),
    )
    assert (exercise.within_rto, exercise.rto_known, exercise.share_within_rto, exercise.at_speed) == (1, 2, 0.5, 1)
    assert (real.mode, real.ttr) == ("real", Distribution(1, *[timedelta(minutes=40)] * 3))
    assert (real.within_rto, real.rto_known, real.share_within_rto, real.at_speed) == (1, 1, 1.0, 0)


def test_run_summary_of_an_exercise_at_speed_is_in_exercise_time(played: Store) -> None:
    """The Prefect run summary of an exercise at speed: steps, waits, RTO verdict and events in exercise time."""
    run_id = "6" * 32
    started = T0 + timedelta(days=1)
    played.upsert_step(
        run_id,
        "start-generators",
        phase="recovery",
        kind="manual",
        status="succeeded",
        started_at=started + timedelta(seconds=30),
        ended_at=started + timedelta(seconds=90),
    )
    played.record_approval(run_id, "start-generators", by="bob", decision="done", note=None, waited_s=45.0, at=started)
    timeline = run_timeline(played, run_id)
    assert timeline is not None
    assert timeline.speed == 60.0
    figures = run_figures(timeline)
    assert figures.step_durations == {"start-generators": Figure.of(timedelta(hours=1))}
    assert figures.waiting_for_people == timedelta(minutes=45)
    assert rto_line(timeline, figures) == "RTO 1h MISSED by 34m: recovered in 1h 34m"
    record = played.get_run(run_id)
    markdown = summary_markdown(record, timeline, figures).splitlines()
    assert markdown[2] == "**RTO 1h MISSED by 34m: recovered in 1h 34m**"
    assert markdown[-1] == (
        "Durations are in exercise time: played at --speed 60, each wall-clock duration counts 60 times "
        "(milestone times are on the wall clock)."
    )
    rows = timeline_table(timeline, figures)
    assert [row["duration"] for row in rows if row["kind"] == "step"] == ["1h"]
    assert rows[-1]["kind"] == "note"
    events = run_events(record, timeline, figures)
    assert [e["event"] for e in events if not e["event"].startswith("bcm.milestone.")] == [
        "bcm.rto.breached",
        "bcm.run.completed",
    ]
    payload = events[-1]["payload"]
    assert (payload["time_to_recover_s"], payload["rto_margin_s"], payload["speed"]) == (5640.0, -2040.0, 60.0)
    real = run_timeline(played, "9" * 32)
    assert real is not None
    real_figures = run_figures(real)
    assert rto_line(real, real_figures) == "RTO 1h attained: recovered in 40m, 20m to spare"
    assert "exercise time" not in summary_markdown(played.get_run("9" * 32), real, real_figures)
