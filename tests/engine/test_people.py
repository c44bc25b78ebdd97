"""People steps wait on their own, in parallel with each other and with automated work; their
milestones carry the decision's time; a failed step fixed on resume leaves no stale error."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bcm.engine.approvals import decide
from tests.conftest import FIXTURES
from tests.engine.conftest import BcmEnv, engine_runbook, join_checked

pytestmark = pytest.mark.prefect


def both_waiting(env: BcmEnv, run_id: str, steps: tuple[str, ...]) -> None:
    """Block until every one of ``steps`` is waiting at the same time."""
    for step in steps:
        env.wait_for_step(run_id, step, "waiting")
    current = env.steps(run_id)
    assert all(current[s].status == "waiting" for s in steps)


@pytest.mark.parametrize("order", [("assign-roles", "check-sbc"), ("check-sbc", "assign-roles")])
def test_person_steps_in_two_phases_wait_together_and_are_decided_in_either_order(
    bcm_env: BcmEnv, tmp_path: Path, order: tuple[str, str]
) -> None:
    """The commander's communication step and voice ops' response step wait at the same time, the
    automated probe finishes meanwhile, the flow run stays Running (never Paused) with a task run
    per person step naming the role, and each milestone is the decision's own time."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run_id = uuid.uuid4().hex
    who = {"assign-roles": "Ada Lovelace", "check-sbc": "Alan Turing"}
    seen: dict[str, object] = {}

    def people() -> None:
        both_waiting(bcm_env, run_id, ("assign-roles", "check-sbc"))
        with bcm_env.store() as store:
            flow_run_id = store.get_run(run_id).flow_run_id
        assert flow_run_id is not None
        with get_client(sync_client=True) as client:
            seen["state"] = client.read_flow_run(uuid.UUID(flow_run_id)).state_type.value
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
            )
            seen["task_runs"] = sorted(r.name for r in runs if r.state_type.value == "RUNNING")
        for step in order:
            with bcm_env.store() as store:
                decide(store, run_id, step, who=who[step], approve=True, note=None, library_root=FIXTURES)

    helper = bcm_env.in_background(people)
    state, _ = bcm_env.run(engine_runbook("people-parallel"), parameters={"out": str(tmp_path / "out")}, run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    assert seen["state"] == "RUNNING"
    assert seen["task_runs"] == ["assign-roles (awaiting incident_commander)", "check-sbc (awaiting voice_ops)"]
    steps = bcm_env.steps(run_id)
    marks = bcm_env.marks(run_id)
    with bcm_env.store() as store:
        decisions = {step: store.get_approval(run_id, step) for step in who}
    for step, milestone in (("assign-roles", "declared"), ("check-sbc", "acknowledged")):
        decision = decisions[step]
        assert decision is not None
        assert (steps[step].status, steps[step].actor) == ("succeeded", who[step])
        assert steps[step].ended_at == decision.at
        assert (marks[milestone].at, marks[milestone].source) == (decision.at, f"step:{step}")
    # The probe ran and ended while the commander was still deciding.
    assert steps["probe"].ended_at < decisions["assign-roles"].at  # type: ignore[union-attr]
    assert (tmp_path / "out").read_text() == "probed\n"
    assert steps["all-clear"].status == "succeeded"


def test_many_pending_steps_each_take_their_own_decision(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """Twelve approve steps waiting at once are each released by their own decision, in any order,
    and a decision reaches the run while the others still wait."""
    from bcm.spec import load_one

    ids = [f"ok-{n:02d}" for n in range(12)]
    steps_yaml = "\n".join(
        f"    - id: {step}\n      needs: [start]\n"
        f"      approve: {{by: incident_commander, prompt: 'Go {step}?', timeout: 120s, on_timeout: fail}}"
        for step in ids
    )
    path = tmp_path / "many.yaml"
    path.write_text(
        "version: 1\nid: many\ntitle: Many approvals\nowner: voice_ops\nseverity: sev2\nservices: [voice-core]\n"
        "phases:\n  response:\n    - id: start\n      notify: {to: [exec], message: start}\n" + steps_yaml + "\n"
    )
    (tmp_path / "catalog").symlink_to(FIXTURES / "catalog")
    load_one(str(path), library_root=FIXTURES)  # a valid runbook, or the test is wrong
    run_id = uuid.uuid4().hex
    released_while_others_wait: list[bool] = []

    def people() -> None:
        for step in ids:
            bcm_env.wait_for_step(run_id, step, "waiting")
        for step in reversed(ids):
            with bcm_env.store() as store:
                decide(store, run_id, step, who="Grace Hopper", approve=True, note=step, library_root=FIXTURES)
            bcm_env.wait_for_step(run_id, step, "succeeded")
            others = [s for s in ids if s < step]
            current = bcm_env.steps(run_id)
            released_while_others_wait.append(all(current[s].status == "waiting" for s in others))

    helper = bcm_env.in_background(people)
    state, _ = bcm_env.run(str(path), run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    assert released_while_others_wait == [True] * len(ids)
    steps = bcm_env.steps(run_id)
    assert [steps[s].output["note"] for s in ids] == ids
