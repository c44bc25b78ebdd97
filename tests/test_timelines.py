"""Timelines from the store in bulk: runs, marks, steps, approval waits, updates and stored or fallback targets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bcm.metrics import Mark, StepTiming, Timeline, summarise
from bcm.spec import load_library
from bcm.store import RunTargets, Store
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
