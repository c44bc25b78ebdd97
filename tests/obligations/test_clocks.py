"""run_clocks: which clocks of a run apply, when they started, are due, and were met — exact times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bcm.obligations import ObligationCatalog
from bcm.obligations.clocks import run_clocks
from bcm.spec.catalog import load_catalog
from bcm.spec.models import Runbook

CATALOG_DIR = Path(__file__).resolve().parents[2] / "runbooks" / "catalog"


@pytest.fixture(scope="module")
def catalog() -> ObligationCatalog:
    found, problems = load_catalog(CATALOG_DIR)
    assert found is not None, problems
    return ObligationCatalog.of(found)


@dataclass(frozen=True)
class Run:
    id: str = "r" * 32
    parameters: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Mark:
    milestone: str
    at: datetime
    source: str = "manual:Alice"


@dataclass(frozen=True)
class StepState:
    step_id: str
    status: str
    output: object = None
    ended_at: datetime | None = None
    actor: str | None = None


@dataclass(frozen=True)
class Done:
    obligation_id: str
    at: datetime
    by: str
    source: str = "hand"


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def runbook(obligations: list[dict[str, Any]], steps: list[dict[str, Any]] | None = None) -> Runbook:
    return Runbook.model_validate(
        {
            "version": 1,
            "id": "breach",
            "title": "Breach",
            "owner": "incident_commander",
            "severity": "sev1",
            "obligations": obligations,
            "phases": {"response": steps or [{"id": "triage", "wait": "1m"}]},
        }
    )


NOTIFY = {"id": "notify-dpa", "wait": "1m", "fulfils": ["gdpr-art33"]}


def test_clock_started_by_hand_marked_milestone_runs_from_its_time(catalog: ObligationCatalog) -> None:
    # aware recorded by hand at 09:00 on the 2nd while nothing ran; read on the 3rd at 12:00
    clocks = run_clocks(
        runbook([{"obligation": "gdpr-art33"}], [NOTIFY]),
        catalog,
        Run(),
        [Mark("aware", t(2, 9))],
        [],
        [],
        now=t(3, 12),
    )
    [clock] = clocks
    assert clock.started == t(2, 9)
    assert clock.due == t(5, 9)
    assert clock.status == "open"
    assert clock.time_left == timedelta(hours=45)
    assert clock.fulfilled_at is None
    assert not clock.overdue


def test_met_by_a_step_that_succeeded(catalog: ObligationCatalog) -> None:
    steps = [StepState("notify-dpa", "succeeded", ended_at=t(4, 10), actor="Dana")]
    [clock] = run_clocks(
        runbook([{"obligation": "gdpr-art33"}], [NOTIFY]), catalog, Run(), [Mark("aware", t(2, 9))], steps, [], t(9, 0)
    )
    assert (clock.status, clock.fulfilled_at, clock.fulfilled_by) == ("met", t(4, 10), "Dana")
    assert clock.fulfilled_source == "step:notify-dpa"
    assert clock.time_left == timedelta(hours=23)


def test_a_failed_step_does_not_fulfil_and_the_clock_is_missed(catalog: ObligationCatalog) -> None:
    steps = [StepState("notify-dpa", "failed", ended_at=t(4, 10))]
    [clock] = run_clocks(
        runbook([{"obligation": "gdpr-art33"}], [NOTIFY]), catalog, Run(), [Mark("aware", t(2, 9))], steps, [], t(5, 10)
    )
    assert clock.status == "missed"
    assert clock.overdue
    assert clock.time_left == timedelta(hours=-1)


def test_late_fulfilment_by_hand_is_missed_not_overdue(catalog: ObligationCatalog) -> None:
    done = [Done("gdpr-art33", t(5, 11), "Priya")]
    [clock] = run_clocks(
        runbook([{"obligation": "gdpr-art33"}], [NOTIFY]), catalog, Run(), [Mark("aware", t(2, 9))], [], done, t(6, 0)
    )
    assert (clock.status, clock.fulfilled_at, clock.fulfilled_by, clock.fulfilled_source) == (
        "missed",
        t(5, 11),
        "Priya",
        "hand",
    )
    assert not clock.overdue
    assert clock.time_left == timedelta(hours=-2)


def test_chained_clock_starts_when_the_first_is_fulfilled(catalog: ObligationCatalog) -> None:
    rb = runbook(
        [{"obligation": "nis2-notification"}, {"obligation": "nis2-final"}],
        [{"id": "notify-csirt", "wait": "1m", "fulfils": ["nis2-notification"]}],
    )
    steps = [StepState("notify-csirt", "succeeded", ended_at=t(3, 8, 30), actor="Chen")]
    notification, final = run_clocks(rb, catalog, Run(), [Mark("aware", t(2, 9))], steps, [], t(10, 0))
    assert (notification.status, notification.fulfilled_at) == ("met", t(3, 8, 30))
    assert final.started == t(3, 8, 30)
    # one month later at the same wall-clock time in Brussels: 3 March 09:30 CET -> 3 April 09:30 CEST
    assert final.due == datetime(2026, 4, 3, 7, 30, tzinfo=UTC)
    assert final.status == "open"


def test_chained_clock_not_started_says_what_it_waits_for(catalog: ObligationCatalog) -> None:
    rb = runbook([{"obligation": "nis2-notification"}, {"obligation": "nis2-final"}])
    _, final = run_clocks(rb, catalog, Run(), [Mark("aware", t(2, 9))], [], [], t(3, 0))
    assert final.status is None and final.started is None and final.due is None
    assert final.note == "not started: waits for nis2-notification fulfilled"


def test_when_false_leaves_the_clock_out_and_true_keeps_it(catalog: ObligationCatalog) -> None:
    rb = runbook([{"obligation": "gdpr-art33", "when": "{{ params.personal_data }}"}])
    marks = [Mark("aware", t(2, 9))]
    assert run_clocks(rb, catalog, Run(parameters={"personal_data": False}), marks, [], [], t(3, 0)) == []
    [clock] = run_clocks(rb, catalog, Run(parameters={"personal_data": True}), marks, [], [], t(3, 0))
    assert clock.status == "open"


def test_when_on_a_step_not_run_yet_is_not_applicable_yet(catalog: ObligationCatalog) -> None:
    rb = runbook(
        [{"obligation": "gdpr-art33", "when": "{{ steps['triage'].output.personal_data }}"}],
    )
    marks = [Mark("aware", t(2, 9))]
    [clock] = run_clocks(rb, catalog, Run(), marks, [], [], t(3, 0))
    assert clock.applies is None and clock.status is None
    assert clock.note is not None and clock.note.startswith("not applicable yet")
    steps = [StepState("triage", "succeeded", output={"personal_data": True}, ended_at=t(2, 10))]
    [clock] = run_clocks(rb, catalog, Run(), marks, steps, [], t(3, 0))
    assert (clock.applies, clock.status, clock.due) == (True, "open", t(5, 9))


def test_adjustable_period_from_the_runbook_and_milestone_fulfilment(catalog: ObligationCatalog) -> None:
    # le-acknowledge: 15 minutes in the catalog, adjustable, fulfilled by the acknowledged milestone
    rb = runbook([{"obligation": "le-acknowledge", "period": "30 minutes"}])
    marks = [Mark("received", t(2, 9)), Mark("acknowledged", t(2, 9, 20), source="manual:Lee")]
    [clock] = run_clocks(rb, catalog, Run(), marks, [], [], t(2, 12))
    assert clock.due == t(2, 9, 30)
    assert (clock.status, clock.fulfilled_at, clock.fulfilled_by, clock.fulfilled_source) == (
        "met",
        t(2, 9, 20),
        "manual:Lee",
        "milestone:acknowledged",
    )
    [default] = run_clocks(runbook([{"obligation": "le-acknowledge"}]), catalog, Run(), marks, [], [], t(2, 12))
    assert (default.due, default.status) == (t(2, 9, 15), "missed")


def test_fulfilment_row_wins_over_a_later_step(catalog: ObligationCatalog) -> None:
    steps = [StepState("notify-dpa", "succeeded", ended_at=t(4, 10), actor="Dana")]
    done = [Done("gdpr-art33", t(3, 10), "Priya")]
    [clock] = run_clocks(
        runbook([{"obligation": "gdpr-art33"}], [NOTIFY]),
        catalog,
        Run(),
        [Mark("aware", t(2, 9))],
        steps,
        done,
        t(9, 0),
    )
    assert (clock.fulfilled_at, clock.fulfilled_by) == (t(3, 10), "Priya")
