"""Approvals and manual steps: granted, rejected, timed out, refused, confirmed, from another thread."""

from __future__ import annotations

import json

import pytest

from bcm.engine.approvals import decide
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
