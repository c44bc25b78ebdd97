"""Approvals and manual steps: granted, rejected, timed out, refused, confirmed, from another thread."""

from __future__ import annotations

import json

import pytest

from bcm.engine.approvals import decide
from bcm.errors import ApprovalRefused
from tests.conftest import FIXTURES
from tests.engine.conftest import BcmEnv, engine_runbook, join_checked

pytestmark = pytest.mark.prefect


def answer(env: BcmEnv, run_id: str, step: str, who: str, *, approve: bool = True, note: str | None = None) -> None:
    """What `bcm approve` does: wait until the run waits on the step, then record the decision;
    the run picks it up from the store."""
    env.wait_for_step(run_id, step, "waiting")
    with env.store() as store:
        decide(store, run_id, step, who=who, approve=approve, note=note, library_root=FIXTURES)


def test_approval_granted_resumes_the_run(bcm_env_both: BcmEnv) -> None:
    """The incident commander approves; the approved branch runs, the manual step is confirmed."""
    run_id = "a1" * 16

    def people() -> None:
        answer(bcm_env_both, run_id, "failover", "U01ADA", note="pair site healthy")
        answer(bcm_env_both, run_id, "test-calls", "alan turing")

    helper = bcm_env_both.in_background(people)
    state, _ = bcm_env_both.run(engine_runbook("approvals"), run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    steps = bcm_env_both.steps(run_id)
    output = steps["failover"].output
    assert (output["approved"], output["by"], output["note"]) == (True, "Ada Lovelace", "pair site healthy")
    assert output["waited_s"] > 0
    assert (steps["failover"].status, steps["failover"].actor) == ("succeeded", "Ada Lovelace")
    assert steps["do-failover"].status == "succeeded"
    assert steps["hold"].status == "skipped"
    assert (steps["test-calls"].status, steps["test-calls"].actor) == ("succeeded", "Alan Turing")
    with bcm_env_both.store() as store:
        approval = store.get_approval(run_id, "failover")
        assert approval is not None and (approval.decision, approval.by) == ("approved", "Ada Lovelace")
        assert store.get_approval(run_id, "test-calls").decision == "done"  # type: ignore[union-attr]
    assert sorted(bcm_env_both.marks(run_id)) == ["acknowledged", "mitigated", "recovered"]


def test_rejection_takes_the_other_branch(bcm_env: BcmEnv) -> None:
    """A rejection is an answer, not a failure: the step shows rejected with the note, the when on
    approved == false runs, and the run goes on."""
    run_id = "b2" * 16

    def people() -> None:
        answer(bcm_env, run_id, "failover", "grace@example.net", approve=False, note="pair site degraded")
        answer(bcm_env, run_id, "test-calls", "U01ALAN")

    helper = bcm_env.in_background(people)
    state, _ = bcm_env.run(engine_runbook("approvals"), run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    steps = bcm_env.steps(run_id)
    assert steps["failover"].output["approved"] is False
    assert (steps["failover"].status, steps["failover"].actor) == ("rejected", "Grace Hopper")
    assert steps["failover"].output["note"] == "pair site degraded"
    assert (steps["do-failover"].status, steps["hold"].status) == ("skipped", "succeeded")
    assert "mitigated" not in bcm_env.marks(run_id)
    # The decision is the acknowledgement, whichever way it went: marked at the decision's time.
    with bcm_env.store() as store:
        decision = store.get_approval(run_id, "failover")
    assert decision is not None and bcm_env.marks(run_id)["acknowledged"].at == decision.at
    lines = (bcm_env.home / "transcript.jsonl").read_text().splitlines()
    final_board = next(json.loads(line) for line in reversed(lines) if '"chat.update"' in line and "`failover`" in line)
    board = final_board["blocks"][1]["text"]["text"]
    assert ":no_good: `failover`  — rejected (" in board, board
    assert "by Grace Hopper: pair site degraded" in board


def test_approval_timeout_fails_the_run(bcm_env: BcmEnv) -> None:
    """No decision within the timeout and on_timeout: fail: the step times out and the run fails."""
    state, run_id = bcm_env.run(engine_runbook("approval-timeout"))
    assert state.is_failed()
    steps = bcm_env.steps(run_id)
    assert steps["failover"].status == "timed_out"
    assert steps["failover"].error == "no decision from incident_commander within 2s"
    assert steps["test-calls"].status == "cancelled"
    with bcm_env.store() as store:
        assert store.get_run(run_id).status == "failed"
        assert store.get_approval(run_id, "failover").decision == "timed_out"  # type: ignore[union-attr]
        with pytest.raises(ApprovalRefused) as info:
            decide(store, run_id, "failover", who="Ada Lovelace", approve=True, note=None, library_root=FIXTURES)
    assert str(info.value).startswith("step 'failover' timed out at ")


def test_approval_timeout_with_continue_goes_on(bcm_env: BcmEnv) -> None:
    """on_timeout: continue: the run goes on without the decision; neither branch runs."""
    run_id = "c3" * 16
    helper = bcm_env.in_background(lambda: answer(bcm_env, run_id, "test-calls", "Alan Turing"))
    state, _ = bcm_env.run(engine_runbook("approval-timeout-continue"), run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    steps = bcm_env.steps(run_id)
    assert steps["failover"].status == "timed_out"
    assert steps["failover"].output["approved"] is None
    assert (steps["do-failover"].status, steps["hold"].status) == ("skipped", "skipped")


def test_wrong_person_not_waiting_and_already_decided_are_refused(bcm_env: BcmEnv) -> None:
    """Only a holder of the role may decide, only while the run waits, and only once."""
    run_id = "d4" * 16
    refusals: list[str] = []

    def people() -> None:
        bcm_env.wait_for_step(run_id, "failover", "waiting")
        with bcm_env.store() as store:
            for who, step in (("Alan Turing", "failover"), ("Ada Lovelace", "test-calls")):
                try:
                    decide(store, run_id, step, who=who, approve=True, note=None, library_root=FIXTURES)
                except ApprovalRefused as exc:
                    refusals.append(str(exc))
        answer(bcm_env, run_id, "failover", "Ada Lovelace")
        with bcm_env.store() as store:
            try:
                decide(store, run_id, "failover", who="Grace Hopper", approve=False, note=None, library_root=FIXTURES)
            except ApprovalRefused as exc:
                refusals.append(str(exc).split(" at ")[0])
        answer(bcm_env, run_id, "test-calls", "Alan Turing")

    helper = bcm_env.in_background(people)
    state, _ = bcm_env.run(engine_runbook("approvals"), run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    assert refusals == [
        "Alan Turing does not hold the role incident_commander (Incident commander) that step 'failover' needs; "
        "holders: Ada Lovelace, Grace Hopper",
        "Ada Lovelace does not hold the role voice_ops (Voice operations) that step 'test-calls' needs; "
        "holders: Alan Turing",
        "step 'failover' was already approved by Ada Lovelace",
    ]


def test_deciding_a_step_the_run_does_not_wait_on_is_refused(bcm_env: BcmEnv) -> None:
    """A holder of the role is still refused while the run is not waiting on that step."""
    run_id = "e5" * 16
    refusal: list[str] = []

    def people() -> None:
        bcm_env.wait_for_step(run_id, "failover", "waiting")
        with bcm_env.store() as store:
            try:
                decide(store, run_id, "test-calls", who="Alan Turing", approve=True, note=None, library_root=FIXTURES)
            except ApprovalRefused as exc:
                refusal.append(str(exc))
        answer(bcm_env, run_id, "failover", "Ada Lovelace")
        answer(bcm_env, run_id, "test-calls", "Alan Turing")

    helper = bcm_env.in_background(people)
    bcm_env.run(engine_runbook("approvals"), run_id=run_id)
    join_checked(helper)
    assert refusal == [f"run {run_id[:8]} is not waiting on step 'test-calls' (its status: not started)"]
