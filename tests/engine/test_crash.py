"""A runner killed with kill -9: status says interrupted, a decision taken meanwhile keeps its time,
nothing it started runs on unsupervised, and `bcm resume` never runs a second copy of a step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bcm.engine.processes import ProcessId
from tests.conftest import ROOT
from tests.engine.conftest import BcmEnv, engine_runbook
from tests.engine.test_cli_run import bcm, bcm_process_env

pytestmark = pytest.mark.prefect


def start_runner(env: BcmEnv, *args: str, environ: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`bcm run ...` in a session of its own, as a person would start it in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", *args],
        env=environ or bcm_process_env(env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(what: str, check: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def only_run(env: BcmEnv) -> str | None:
    if not (env.home / "bcm.db").exists():
        return None
    with env.store() as store:
        runs = store.list_runs()
    return runs[0].id if runs else None


def alive(pid: int) -> bool:
    return ProcessId(host=os.uname().nodename, pid=pid, start=0).alive() is True


def test_decision_while_the_runner_is_dead_keeps_its_time(bcm_env: BcmEnv) -> None:
    """kill -9 while a manual step waits: status and runs say interrupted; `bcm approve` records the
    decision and says to resume; 8 s later `bcm resume` finishes the run with the step ended and
    `recovered` marked at the decision time, and the step's start kept."""
    proc = start_runner(bcm_env, engine_runbook("crash-decide"))
    try:
        wait_until("the run waits for confirm", lambda: (r := only_run(bcm_env)) and _status(bcm_env, r) == "waiting")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the runner alone, as the OOM killer would
        proc.wait()
    run_id = only_run(bcm_env)
    assert run_id is not None
    short = run_id[:8]
    before = bcm_env.steps(run_id)["confirm"]

    status = json.loads(bcm(bcm_env, "status", short, "--json").stdout)
    assert (status["run"]["status"], status["run"]["stored_status"]) == ("interrupted", "waiting")
    assert status["run"]["interrupted"].startswith(f"its runner (pid {proc.pid} on ")
    assert status["waiting_on"][0]["holders"] == ["Alan Turing"]
    listed = json.loads(bcm(bcm_env, "runs", "--active", "--json").stdout)["runs"]
    assert [(r["short_id"], r["status"]) for r in listed] == [(short, "interrupted")]
    shown = bcm(bcm_env, "status", short)
    assert f"interrupted: its runner (pid {proc.pid} on" in shown.stdout
    assert f"run `bcm resume {short}` to go on" in shown.stdout

    approved = bcm(bcm_env, "approve", short, "confirm", "--by", "Alan Turing", "--note", "calls complete")
    assert approved.returncode == 0, approved.stderr
    assert approved.stderr.strip() == (
        f"run {short} is not running (its runner (pid {proc.pid} on {os.uname().nodename}) is gone); the decision "
        f"is recorded with its time: `bcm resume {short}` continues the run with it"
    )
    with bcm_env.store() as store:
        decision = store.get_approval(run_id, "confirm")
    assert decision is not None
    time.sleep(max(0.0, 8 - (time.time() - decision.at.timestamp())))  # the runner stays dead for 8 s

    resumed = bcm(bcm_env, "resume", short, "--json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["run"]["status"] == "succeeded"
    after = bcm_env.steps(run_id)["confirm"]
    marks = bcm_env.marks(run_id)
    assert after.started_at == before.started_at
    assert after.ended_at == decision.at
    assert (marks["recovered"].at, marks["recovered"].source) == (decision.at, "step:confirm")
    assert after.output["waited_s"] == pytest.approx((decision.at - before.started_at).total_seconds())
    assert after.output["note"] == "calls complete"
    with bcm_env.store() as store:
        run = store.get_run(run_id)
    assert run.ended_at is not None and run.ended_at - decision.at >= timedelta(seconds=7)


def test_killed_runner_leaves_no_orphan_and_resume_stops_what_is_left(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """kill -9 of a runner on the embedded server with a long `run:` step: the step's command and the
    embedded server die with it; a grandchild the command left in its process group is found by
    `bcm resume`, which stops it (saying so) before running the step again, once."""
    marker = tmp_path / "marker"
    embedded = {k: v for k, v in bcm_process_env(bcm_env).items() if k != "PREFECT_API_URL"}
    proc = start_runner(bcm_env, engine_runbook("long-step"), "-p", f"marker={marker}", environ=embedded)
    try:
        wait_until("the step's command started", lambda: marker.exists() and marker.read_text().strip(), timeout=120)
        command = int(marker.read_text())
        grandchild = int(Path(f"{marker}.grandchild").read_text())
        server = _children(proc.pid, "uvicorn")
        assert len(server) == 1, "the embedded server is a child of the runner"
        run_id = only_run(bcm_env)
        assert run_id is not None
        process = ProcessId.parse(bcm_env.steps(run_id)["long"].process or "")
        assert process is not None and process.pid == command
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    wait_until("the step's command died with its runner", lambda: not alive(command), timeout=5)
    wait_until("the embedded server died with its runner", lambda: not alive(server[0]), timeout=10)
    assert alive(grandchild)  # what the command left behind: `bcm resume` must see to it

    resumed = bcm(bcm_env, "resume", run_id[:8], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.splitlines() == [
        "step 'long': its last attempt is still running; waiting before running it again",
        f"step 'long': process group {command} was still running after 5s: stopped it (SIGTERM)",
    ]
    assert not alive(grandchild)
    step = {s["id"]: s for s in json.loads(resumed.stdout)["steps"]}["long"]
    assert (step["status"], step["attempts"], step["output"]["stdout"]) == ("succeeded", 2, "second attempt\n")


def test_resume_of_a_live_run_is_refused(bcm_env: BcmEnv) -> None:
    """`bcm resume` of a run whose runner is alive says so and exits 2: no second runner. Meanwhile
    `bcm run` shows progress: each step as it starts, waits (who may answer, the command) and ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", engine_runbook("crash-decide")],
        env=bcm_process_env(bcm_env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until("the run waits", lambda: (r := only_run(bcm_env)) and _status(bcm_env, r) == "waiting")
        run_id = only_run(bcm_env)
        assert run_id is not None
        refused = bcm(bcm_env, "resume", run_id[:8])
        assert refused.returncode == 2
        assert refused.stderr.startswith(f"run {run_id[:8]} is still running: its runner (")
        assert bcm(bcm_env, "approve", run_id[:8], "confirm", "--by", "Alan Turing").returncode == 0
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0
        short = run_id[:8]
        lines = stderr.splitlines()
        assert lines[:3] == [
            f"run {short} of crash-decide (real) starting; `bcm status {short}` shows it",
            "  waiting   response/confirm: voice_ops (Alan Turing) may answer",
            f"            answer with: bcm approve {short} confirm --by YOU [--reject]",
        ], stderr
        assert re.fullmatch(r"  succeeded response/confirm in \d+s: by Alan Turing", lines[3]), stderr
        assert len(lines) == 4, stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _status(env: BcmEnv, run_id: str) -> str:
    """``waiting`` once the step waits and the run says so; else where the step is."""
    with env.store() as store:
        step = store.get_step(run_id, "confirm")
        run = store.get_run(run_id)
    if step is None:
        return "-"
    if step.status == "waiting" and run.status != "waiting":
        return "step waiting, run not yet"
    return step.status


def _children(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent and name in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_ends_the_runner_at_once_and_resume_continues(
    bcm_env: BcmEnv, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C (SIGINT) or SIGTERM while a person step waits ends `bcm run` within seconds with 130/143
    and the resume hint; the run shows as interrupted and `bcm resume` finishes it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", engine_runbook("crash-decide")],
        env=bcm_process_env(bcm_env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until("the run waits", lambda: (r := only_run(bcm_env)) and _status(bcm_env, r) == "waiting")
        os.kill(proc.pid, sig)
        _, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    run_id = only_run(bcm_env)
    assert run_id is not None
    short = run_id[:8]
    assert proc.returncode == code
    assert stderr.splitlines()[-1] == (
        f"interrupted: run {short} is kept in the store as it was; `bcm resume {short}` continues it where it stopped"
    )
    assert json.loads(bcm(bcm_env, "status", short, "--json").stdout)["run"]["status"] == "interrupted"
    assert bcm(bcm_env, "approve", short, "confirm", "--by", "Alan Turing").returncode == 0
    resumed = bcm(bcm_env, "resume", short, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["run"]["status"] == "succeeded"


class _Interrupted(Exception):
    pass


def test_a_signal_caught_by_another_thread_is_handled_while_the_flow_waits(prefect_server: str) -> None:
    """Linux may hand Ctrl-C or SIGTERM to any thread of the runner; the flow's main thread, waiting
    for a step that takes 20 s, still runs the handler within two seconds, not when the step ends."""
    import threading

    from prefect import flow, task

    from flows.runbook import PrefectExecutor, _Future

    release = threading.Event()

    @task
    def slow() -> str:
        release.wait(20)
        return "done"

    def interrupt(_signum: int, _frame: object) -> None:
        raise _Interrupted

    @flow
    def waits() -> float:
        future = _Future(slow.submit())
        # Not the main thread: what the kernel may choose when the main thread is blocked.
        sender = threading.Timer(0.5, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGUSR1))
        started = time.monotonic()
        sender.start()
        try:
            PrefectExecutor().wait_any([future])
        except _Interrupted:
            return time.monotonic() - started
        finally:
            release.set()
        return float("inf")

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        handled_after = waits()
    finally:
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    assert handled_after < 2.0


def test_resume_after_the_runbook_changed_is_refused_before_anything_runs(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """A runbook edited since its run started: `bcm resume` says so in one line, exit 2, and starts nothing."""
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "catalog").symlink_to(ROOT / "tests" / "fixtures" / "catalog")
    path = folder / "crash-decide.yaml"
    path.write_text(Path(engine_runbook("crash-decide")).read_text())
    proc = start_runner(bcm_env, str(path))
    try:
        wait_until("the run waits", lambda: (r := only_run(bcm_env)) and _status(bcm_env, r) == "waiting")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    run_id = only_run(bcm_env)
    assert run_id is not None
    path.write_text(path.read_text().replace("timeout: 10m", "timeout: 20m"))
    refused = bcm(bcm_env, "resume", run_id[:8])
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"runbook crash-decide ({path}) changed since run {run_id[:8]} started; resuming would mix two versions "
        "of the plan: restore the file (git) or start a new run"
    ]
    assert bcm_env.steps(run_id)["confirm"].status == "waiting"
