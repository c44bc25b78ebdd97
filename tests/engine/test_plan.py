"""The plan: phase order, written order, needs, and what may run together (pure, no Prefect)."""

from __future__ import annotations

from pathlib import Path

from bcm.engine.plan import Plan
from bcm.spec import load_catalog, load_runbook
from tests.conftest import FIXTURES


def plan_of(name: str, phases: tuple[str, ...] | None = None) -> Plan:
    catalog, _ = load_catalog(FIXTURES / "catalog")
    assert catalog is not None
    loaded, problems = load_runbook(Path(FIXTURES / "engine" / f"{name}.yaml"), catalog)
    assert problems == [] and loaded is not None
    return Plan.build(loaded.runbook) if phases is None else Plan.build(loaded.runbook, phases=phases)


def test_waves_run_independent_steps_together() -> None:
    """Communication starts with response; needs fan out and join; recovery waits for all response."""
    assert plan_of("ordering").waves() == [["declare", "first"], ["left", "right"], ["join"], ["restore"]]


def test_recovery_waits_for_the_whole_response_phase() -> None:
    """A recovery step depends on every response step, not only the last written."""
    assert plan_of("ordering").get("restore").needs == ("first", "left", "right", "join")


def test_ready_respects_done_and_started() -> None:
    """Ready steps are those not started whose needs are done, in written order."""
    plan = plan_of("ordering")
    assert [p.id for p in plan.ready(done=set(), started=set())] == ["declare", "first"]
    assert [p.id for p in plan.ready(done={"declare", "first"}, started={"left"})] == ["right"]


def test_steps_without_needs_follow_the_written_order() -> None:
    """In a phase, a step without needs waits for the step written before it."""
    plan = plan_of("failures")
    assert [p.needs for p in plan.steps] == [(), ("flaky",), ("skipped-branch",), ("slow",), ("broken",)]


def test_people_steps_are_marked() -> None:
    """Approve and manual steps are flagged as needing a person."""
    plan = plan_of("approvals")
    assert [p.id for p in plan.steps if p.needs_person] == ["failover", "test-calls"]
