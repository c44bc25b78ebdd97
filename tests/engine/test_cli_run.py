"""The run, status, approve, resume and check commands as separate processes, as people use them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT
from tests.engine.conftest import BcmEnv, engine_runbook

pytestmark = pytest.mark.prefect


def bcm_process_env(env: BcmEnv) -> dict[str, str]:
    return {
        **os.environ,
        "BCM_HOME": str(env.home),
        "BCM_DATABASE_URL": env.database_url,
        "BCM_RUNBOOKS": str(FIXTURES),
        "PREFECT_API_URL": env.api_url,
    }


def bcm(env: BcmEnv, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bcm", *args],
        capture_output=True,
        text=True,
        env=bcm_process_env(env),
        cwd=ROOT,
        timeout=timeout,
    )


def test_run_json_exercise_with_auto_approve(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """`bcm run --mode exercise --auto-approve --json` prints one JSON document and exits 0."""
    result = bcm(
        bcm_env,
        "run",
        engine_runbook("exercise"),
        "-p",
        f"out={tmp_path / 'x'}",
        "--mode",
        "exercise",
        "--auto-approve",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["run"]["status"], doc["run"]["mode"]) == ("succeeded", "exercise")
    # declared (communication) and mitigated (response) happen concurrently: compare as a set.
    assert sorted(m["milestone"] for m in doc["milestones"]) == ["acknowledged", "declared", "mitigated", "recovered"]
    assert doc["waiting_on"] == []


def test_run_failure_exits_1(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """A run that fails exits 1 and says which step stopped it."""
    result = bcm(bcm_env, "run", engine_runbook("failures"), "-p", f"counter={tmp_path / 'c'}", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["run"]["error"] == "step 'broken' exit code 4: disk full"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "flaky_until=soon"], "parameter 'flaky_until': expected an integer, got 'soon'"),
        (["-p", "nonsense"], "-p nonsense: write parameters as key=value, e.g. -p site=lon-dc1"),
        (["--auto-approve"], "--auto-approve is only for exercise mode: in a real disruption people approve"),
        (["--mode", "drill"], "--mode drill: use real or exercise"),
    ],
)
def test_bad_run_input_exits_2_before_anything_runs(bcm_env: BcmEnv, args: list[str], message: str) -> None:
    """Bad parameters or options: exit 2 with a clear message, no traceback, no run stored."""
    result = bcm(bcm_env, "run", engine_runbook("failures"), "-p", "counter=/tmp/x", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_prints_rendered_plan_and_runs_nothing(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """--dry-run prints the waves with rendered templates; nothing is executed or stored."""
    out = tmp_path / "order.txt"
    result = bcm(bcm_env, "run", engine_runbook("ordering"), "-p", f"out={out}", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Dry run of ordering (real): nothing is executed"
    assert lines[1] == "wave 1 (these start together)"
    assert lines[2] == "  communication/declare: notify exec: Declared Ordering and concurrency  [marks declared]"
    assert "  response/left:" in lines[5]
    assert str(out) in lines[5]
    assert not out.exists()
    assert not (bcm_env.home / "bcm.db").exists()


def test_killed_run_resumes_without_repeating_finished_steps(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """Kill -9 mid-run; `bcm resume` finishes it; the step that had finished ran exactly once."""
    out, gate = tmp_path / "out.txt", tmp_path / "gate"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", engine_runbook("resumable"), "-p", f"out={out}", "-p", f"gate={gate}"],
        env=bcm_process_env(bcm_env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        run_id = None
        while time.monotonic() < deadline and run_id is None:
            time.sleep(0.2)
            if (bcm_env.home / "bcm.db").exists():
                with bcm_env.store() as store:
                    runs = store.list_runs()
                    step = store.get_step(runs[0].id, "gated") if runs else None
                    # Running and its first attempt begun (the attempt counter is written by the task).
                    if step is not None and step.status == "running" and step.attempts >= 1:
                        run_id = runs[0].id
        assert run_id is not None, "the run never reached the gated step"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its step's child: a crash, not a stop
        proc.wait()
    with bcm_env.store() as store:
        assert store.get_run(run_id).status == "running"
    status = bcm(bcm_env, "status", run_id[:8], "--json")
    assert [(s["id"], s["status"]) for s in json.loads(status.stdout)["steps"]] == [
        ("once", "succeeded"),
        ("gated", "running"),
    ]
    gate.touch()
    result = bcm(bcm_env, "resume", run_id[:8], "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run"]["status"] == "succeeded"
    assert out.read_text().splitlines() == ["once", "gated", "last"]
    steps = {s["id"]: s for s in doc["steps"]}
    assert (steps["once"]["attempts"], steps["gated"]["attempts"]) == (1, 2)
    assert [m["milestone"] for m in doc["milestones"]] == ["acknowledged", "recovered"]
    again = bcm(bcm_env, "resume", run_id[:8])
    assert again.returncode == 2
    assert again.stderr.strip() == f"run {run_id[:8]} finished already (succeeded): nothing to resume"


def test_approve_from_another_process_resumes_the_run(bcm_env: BcmEnv) -> None:
    """`bcm approve` in another process reaches the running flow; a wrong person is refused (exit 2)."""
    run_id = "f6" * 16

    def people() -> None:
        bcm_env.wait_for_step(run_id, "failover", "waiting")
        refused = bcm(bcm_env, "approve", run_id[:8], "failover", "--by", "Alan Turing")
        assert refused.returncode == 2
        assert refused.stderr.startswith("Alan Turing does not hold the role incident_commander")
        granted = bcm(bcm_env, "approve", run_id[:8], "failover", "--by", "Ada Lovelace", "--note", "go")
        assert granted.returncode == 0, granted.stderr
        assert re.fullmatch(
            rf"approved by Ada Lovelace at \d\d:\d\d:\d\d UTC: run {run_id[:8]} step failover", granted.stdout.strip()
        ), granted.stdout
        assert granted.stderr == ""  # the run is alive and takes it: nothing to warn about
        bcm_env.wait_for_step(run_id, "test-calls", "waiting")
        assert bcm(bcm_env, "approve", run_id[:8], "test-calls", "--by", "U01ALAN").returncode == 0

    helper = bcm_env.in_background(people)
    state, _ = bcm_env.run(engine_runbook("approvals"), run_id=run_id)
    from tests.engine.conftest import join_checked

    join_checked(helper)
    assert state.is_completed()
    assert bcm_env.steps(run_id)["failover"].output["note"] == "go"


def test_check_runs_prevention_steps_and_records_them(bcm_env: BcmEnv) -> None:
    """`bcm check` runs readiness checks, prints pass/fail, records them, exits 1 when one fails."""
    ok = bcm(bcm_env, "check", str(FIXTURES / "valid" / "voice-outage.yaml"), "-p", "site=lon-dc1", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {
        "ready": True,
        "checks": [
            {"runbook": "voice-outage", "step": "sbc-health", "ok": True, "status": "succeeded", "detail": "ok lon-dc1"}
        ],
    }
    with bcm_env.store() as store:
        checks = store.list_checks(runbook_id="voice-outage")
    assert [(c.step_id, c.ok, c.output) for c in checks] == [("sbc-health", True, "ok lon-dc1")]


def test_unreachable_prefect_server_is_a_clear_message(bcm_env: BcmEnv) -> None:
    """PREFECT_API_URL pointing at nothing: exit 2 and what to do before a run is announced, not a traceback."""
    env = {**bcm_process_env(bcm_env), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    result = subprocess.run(
        [sys.executable, "-m", "bcm", "run", engine_runbook("cadence"), "--mode", "exercise"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    # Before any run is announced: the run id printed would not exist.
    assert result.stderr.splitlines() == [
        "cannot reach the Prefect server at http://127.0.0.1:9/api (ConnectError): start it (`prefect server "
        "start`) or unset PREFECT_API_URL to use Prefect's embedded server"
    ]
