"""Runbooks run as real Prefect flows: ordering, retries, timeouts, skips, failures, exercise mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.conftest import BcmEnv, engine_runbook

pytestmark = pytest.mark.prefect


def test_steps_run_in_order_and_independent_steps_concurrently(bcm_env_both: BcmEnv, tmp_path: Path) -> None:
    """Fan-out steps overlap in time; join waits for both; recovery runs last; marks are recorded."""
    out = tmp_path / "order.txt"
    state, run_id = bcm_env_both.run(engine_runbook("ordering"), parameters={"out": str(out)}, mode="real")
    assert state.is_completed()
    lines = out.read_text().splitlines()
    assert lines[0] == "first" and sorted(lines[1:3]) == ["left", "right"] and lines[3:] == ["join", "restore"]
    steps = bcm_env_both.steps(run_id)
    left, right = steps["left"], steps["right"]
    assert left.started_at < right.ended_at and right.started_at < left.ended_at  # they overlapped
    assert {s.status for s in steps.values()} == {"succeeded"}
    marks = bcm_env_both.marks(run_id)
    assert sorted(marks) == ["acknowledged", "declared", "mitigated", "recovered"]
    assert marks["mitigated"].at == steps["join"].ended_at
    assert marks["mitigated"].source == "step:join"
    with bcm_env_both.store() as store:
        run = store.get_run(run_id)
    assert (run.status, run.mode, run.runbook_id) == ("succeeded", "real", "ordering")
    assert run.flow_run_id is not None


def test_flow_run_is_named_and_tagged(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """The flow run is named runbook/mode/short-id and tagged with runbook, mode, severity, services."""
    from prefect import get_client

    state, run_id = bcm_env.run(engine_runbook("ordering"), parameters={"out": str(tmp_path / "o")})
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
    assert flow_run.name == f"ordering/real/{run_id[:8]}"
    assert sorted(flow_run.tags) == ["mode:real", "runbook:ordering", "service:voice-core", "severity:sev2"]


def test_retries_timeouts_skips_and_stop_on_failure(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """A flaky step succeeds on its third attempt; a false when skips; a timeout with continue goes on;
    a failing step stops the run and the steps after it are cancelled with the reason."""
    counter = tmp_path / "attempts"
    state, run_id = bcm_env.run(engine_runbook("failures"), parameters={"counter": str(counter)})
    assert state.is_failed()
    steps = bcm_env.steps(run_id)
    assert (steps["flaky"].status, steps["flaky"].attempts) == ("succeeded", 3)
    assert counter.read_text() == "xxx"
    assert steps["skipped-branch"].status == "skipped"
    assert steps["skipped-branch"].reason == "when {{ steps['flaky'].status != 'succeeded' }} was false"
    assert (steps["slow"].status, steps["slow"].error) == ("timed_out", "timed out after 1s")
    assert steps["broken"].status == "failed"
    assert steps["broken"].error == "exit code 4: disk full"
    assert steps["broken"].output["exit_code"] == 4
    assert steps["after-broken"].status == "cancelled"
    assert steps["after-broken"].reason == "not run: the run stopped after step 'broken' failed"
    with bcm_env.store() as store:
        run = store.get_run(run_id)
    assert (run.status, run.error) == ("failed", "step 'broken' exit code 4: disk full")


def test_exercise_mode_simulates_prefixes_and_skips(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """Exercise: run steps are simulated (nothing touched), exercise: run steps run, skip steps skip,
    messages carry [EXERCISE], approvals are automatic with --auto-approve, the run is an exercise."""
    out = tmp_path / "touched.txt"
    state, run_id = bcm_env.run(
        engine_runbook("exercise"), parameters={"out": str(out)}, mode="exercise", auto_approve=True
    )
    assert state.is_completed()
    assert not out.exists()
    steps = bcm_env.steps(run_id)
    assert steps["touch-system"].output == {
        "simulated": True,
        "would": f"run python3 -c import sys; print('touched', file=open(sys.argv[1], 'a')) {out}",
    }
    assert steps["read-only-check"].output["stdout"] == "healthy\n"
    assert (steps["skip-me"].status, steps["skip-me"].reason) == ("skipped", "exercise: skip")
    assert (steps["decide"].status, steps["decide"].actor) == ("succeeded", "auto-approve (exercise)")
    assert steps["decide"].output["approved"] is True
    transcript = [json.loads(line) for line in (bcm_env.home / "transcript.jsonl").read_text().splitlines()]
    posts = [c for c in transcript if c["method"] == "chat.postMessage"]
    assert {c["channel"] for c in posts} == {"bcm-exercises"}  # never a stakeholder channel
    assert all(c["text"].startswith("[EXERCISE] ") for c in transcript if c["method"].startswith("chat."))
    assert f"[EXERCISE] Voice outage at {out}" in [c["text"] for c in posts]
    assert not any(c["method"] == "conversations.create" for c in transcript)
    with bcm_env.store() as store:
        assert store.get_run(run_id).mode == "exercise"
    assert sorted(bcm_env.marks(run_id)) == ["acknowledged", "declared", "mitigated", "recovered"]


def test_bad_parameters_refuse_to_start(bcm_env: BcmEnv) -> None:
    """Missing or mistyped parameters stop the flow before any step runs, naming each problem."""
    from bcm.errors import InputError

    state, _ = bcm_env.run(engine_runbook("failures"), parameters={"flaky_until": "soon"})
    assert state.is_failed()
    with pytest.raises(InputError) as info:
        state.result()
    assert str(info.value) == (
        "missing required parameter 'counter' (File counting attempts): give it with -p counter=VALUE; "
        "parameter 'flaky_until': expected an integer, got 'soon'"
    )
    with bcm_env.store() as store:
        assert store.list_runs() == []
