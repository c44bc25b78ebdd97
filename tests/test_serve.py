"""`bcm serve`: a local Prefect server with prefect.yaml's deployments and schedules, found by every bcm command.

One `bcm serve` process is shared by the Prefect tests of this module (module-scoped fixture); the
last of them stops it with Ctrl-C. The discovery rules (stale file, explicit PREFECT_API_URL, a
server that does not answer) and prefect.yaml's reading are checked in-process, without a server.
`bcm run` and `bcm resume` with serve up go through its launcher (flows/launcher.py): the command
never imports Prefect, says what a call in its own process says (that call is what a launcher that
cannot be reached falls back to, so one run of each compares them) and leaves on Ctrl-C the same way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bcm.cli.serve import find_served_server, serve_file
from bcm.store import Store
from tests.conftest import FIXTURES, ROOT

ORDERING = FIXTURES / "engine" / "ordering.yaml"
FAILING = FIXTURES / "engine" / "fails-then-fixed.yaml"
RESUMABLE = FIXTURES / "engine" / "resumable.yaml"
#: A line of `python -X importtime` for a module of Prefect or of flows/ (the runbook flow's imports).
PREFECT_IMPORT = re.compile(r"^import time:.*\|\s+(prefect|flows\.runbook|flows\.exercise)(\.|\s*$)", re.M)
STARTUP_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcm_env(tmp: Path) -> dict[str, str]:
    """A bcm environment with no Prefect server configured: no PREFECT_API_URL anywhere."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BCM_", "SLACK_"))},
        "PREFECT_HOME": str(tmp / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "BCM_HOME": str(tmp / "home"),
        "BCM_RUNBOOKS": str(FIXTURES),
    }


def write_project(folder: Path) -> Path:
    """prefect.yaml's deployments, the outbox flush every 5 s (so a schedule fires during the tests
    without waiting for a minute boundary), and one whose entrypoint does not import yet."""
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for deployment in project["deployments"]:
        if deployment["name"] == "outbox-flush":
            deployment["schedules"] = [{"interval": 5}]
    project["deployments"].append(
        {"name": "later", "entrypoint": "flows/not_written_yet.py:run_later", "work_pool": {"name": "bcm"}}
    )
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    return path


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    home: Path
    record: dict[str, Any]
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return str(self.record["url"])

    @property
    def launcher(self) -> Path:
        return Path(self.record["launcher"])

    def bcm(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python -m bcm ARGS`` (``-X importtime`` when the first is ``-X``) with serve's environment."""
        python = [sys.executable, *args[:2]] if args[:1] == ("-X",) else [sys.executable]
        command = [*python, "-m", "bcm", *(args[2:] if args[:1] == ("-X",) else args)]
        return subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def log_of(self, run_id: str) -> Path:
        return self.home / "logs" / f"{run_id}.log"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_for_flow_run(self, flow_filter: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The first flow run matching ``flow_filter`` that completed; fails on a failed one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.api("POST", "/flow_runs/filter", json=flow_filter):
                if run["state_type"] == "COMPLETED":
                    return dict(run)
                assert run["state_type"] not in ("FAILED", "CRASHED"), run["state"]
            time.sleep(1)
        raise AssertionError(f"no flow run matching {flow_filter} completed within {timeout:.0f} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`python -m bcm serve --port <free>` with a temporary BCM_HOME, once serve.json is written."""
    tmp = tmp_path_factory.mktemp("serve")
    env = bcm_env(tmp)
    home = Path(env["BCM_HOME"])
    stdout, stderr = tmp / "serve.out", tmp / "serve.err"
    command = [sys.executable, "-m", "bcm", "serve", "--port", str(free_port())]
    command += ["--prefect-yaml", str(write_project(tmp))]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not serve_file(home).exists():
            assert proc.poll() is None, f"bcm serve exited {proc.returncode}: {stderr.read_text()}"
            assert time.monotonic() < deadline, f"no serve.json after {STARTUP_TIMEOUT_S} s: {stderr.read_text()}"
            time.sleep(0.2)
        record = json.loads(serve_file(home).read_text())
        yield Served(proc, env, home, record, stdout, stderr)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.prefect
def test_start_says_where_what_and_who_uses_it(served: Served) -> None:
    """On start: the UI's URL, the database, each deployment with its schedule, a warning for the
    one that does not import, and that other commands use it; serve.json says where it listens."""
    output = served.stdout.read_text()
    ui = served.url.removesuffix("/api")
    assert f"bcm serve: Prefect server at {ui} (the UI; API {served.url})" in output
    assert f"database: SQLite {served.home / 'prefect' / 'prefect.db'}" in output
    assert "flush-outbox/outbox-flush: every 5s" in output
    assert "readiness-checks/readiness-daily: cron 0 6 * * * (UTC)" in output
    assert "by hand (UI, `prefect deployment run`, Slack's /bcm run): ai-incident, dc-power-loss," in output
    assert (
        "warning: not serving later: flows/not_written_yet.py:run_later does not load "
        "(ModuleNotFoundError: No module named 'flows.not_written_yet')" in output
    )
    assert f"bcm commands with BCM_HOME={served.home} now use this server" in output
    assert f"launcher: bcm run, resume and exercise run start their flows from here ({served.launcher})" in output
    assert served.launcher == served.home / "launcher.sock" and served.launcher.is_socket()
    assert served.launcher.stat().st_mode & 0o077 == 0  # this user's only: a call runs whatever a runbook says
    record = served.record
    assert (record["pid"], record["host"]) == (served.proc.pid, socket.gethostname())
    assert datetime.fromisoformat(record["started_at"]).tzinfo is not None
    assert "flush-outbox/outbox-flush" in record["deployments"]
    assert "later" not in " ".join(record["deployments"])
    assert served.api("GET", "/health") is True


@pytest.mark.prefect
def test_bcm_run_without_prefect_api_url_uses_the_served_server(served: Served, tmp_path: Path) -> None:
    """`bcm run` with no PREFECT_API_URL finds serve.json: its flow run is on the served server,
    and no embedded server was started. Its launcher ran the flow: the command imported nothing of
    Prefect, and the runner's log is in BCM_HOME/logs."""
    assert "PREFECT_API_URL" not in served.env
    started = time.monotonic()
    result = served.bcm("-X", "importtime", "run", str(ORDERING), "-p", f"out={tmp_path / 'out'}", "--json")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "embedded server" not in result.stderr
    assert PREFECT_IMPORT.search(result.stderr) is None, PREFECT_IMPORT.findall(result.stderr)
    assert re.search(r"^import time:.*\|\s+bcm\.cli$", result.stderr, re.M)  # importtime saw the command's imports
    run_id = json.loads(result.stdout)["run"]["id"]
    assert served.log_of(run_id).read_text().startswith("--- bcm launcher: ")
    flow_runs = served.api(
        "POST", "/flow_runs/filter", json={"flow_runs": {"name": {"any_": [f"ordering/real/{run_id[:8]}"]}}}
    )
    assert [r["state_type"] for r in flow_runs] == ["COMPLETED"]
    assert "runbook:ordering" in flow_runs[0]["tags"]
    assert took < 60, f"bcm run took {took:.1f} s"


@pytest.mark.prefect
def test_second_serve_says_so_and_exits_2(served: Served) -> None:
    """A second `bcm serve` for the same BCM_HOME, even on another port: exit 2, the first one named."""
    result = subprocess.run(
        [sys.executable, "-m", "bcm", "serve", "--port", str(free_port())],
        env=served.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"bcm serve is already running for BCM_HOME={served.home} (pid {served.proc.pid}, {served.url})" in (
        result.stderr
    )
    assert json.loads(serve_file(served.home).read_text()) == served.record


@pytest.mark.prefect
def test_a_deployment_triggered_by_hand_runs_on_the_served_runner(served: Served, tmp_path: Path) -> None:
    """A runbook deployment run (what the UI's Run button and Slack's /bcm run create) runs with no worker."""
    deployment = served.api("GET", "/deployments/name/run-runbook/dc-power-loss")
    out = tmp_path / "out"
    parameters = {"runbook": str(ORDERING), "parameters": {"out": str(out)}, "mode": "real"}
    flow_run = served.api("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
    served.wait_for_flow_run({"flow_runs": {"id": {"any_": [flow_run["id"]]}}}, timeout=180)
    steps = out.read_text().split()
    assert (steps[0], sorted(steps[1:3]), steps[3:]) == ("first", ["left", "right"], ["join", "restore"])


@pytest.mark.prefect
def test_a_schedule_fires_with_no_worker(served: Served) -> None:
    """The outbox flush (every 5 s here) creates flow runs that the served runner completes."""
    served.wait_for_flow_run(
        {
            "deployments": {"name": {"any_": ["outbox-flush"]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        },
        timeout=180,
    )


def _normalised(text: str, run_id: str) -> str:
    """Output with its run id, times and durations made the same from one run to the next."""
    return re.sub(r"\d", "0", text.replace(run_id, "RUN").replace(run_id[:8], "RUN"))


def _shown(stderr: str, run_id: str) -> list[str]:
    """What a run's command said on stderr, in order-independent form: its progress lines (but when a
    step started, which a quick step may end before the progress display looks) and Prefect's log."""
    drop = ("  started   ", "bcm serve's launcher does not answer")
    return sorted(line for line in _normalised(stderr, run_id).splitlines() if not line.startswith(drop))


@pytest.mark.prefect
@pytest.mark.parametrize(("runbook", "param", "code"), [(ORDERING, "out", 0), (FAILING, "gate", 1)])
def test_the_launcher_says_what_a_call_in_the_command_says(
    served: Served, tmp_path: Path, runbook: Path, param: str, code: int
) -> None:
    """The same runbook through the launcher, then with its socket gone (the command then calls the
    flow itself, saying so in one line): the same exit code, steps, timeline and Prefect's log lines."""
    argv = ("run", str(runbook), "-p", f"{param}={tmp_path / 'file'}")
    launched = served.bcm(*argv)
    hidden = served.launcher.with_name("moved.sock")
    served.launcher.rename(hidden)
    try:
        here = served.bcm(*argv)
    finally:
        hidden.rename(served.launcher)
    assert (launched.returncode, here.returncode) == (code, code), (launched.stderr, here.stderr)
    with Store.open(f"sqlite:///{served.home / 'bcm.db'}") as store:
        ids = [store.get_run(r.stderr.split()[1]).id for r in (launched, here)]
    assert [served.log_of(run_id).exists() for run_id in ids] == [True, False]  # only the launcher's child logs
    assert (
        f"bcm serve's launcher does not answer at {served.launcher} (No such file or directory): "
        "running the flow in this process" in here.stderr
    )
    assert _normalised(launched.stdout, ids[0]) == _normalised(here.stdout, ids[1])
    assert _shown(launched.stderr, ids[0]) == _shown(here.stderr, ids[1])
    assert "on the Prefect server of `bcm serve`" in launched.stderr
    if code:
        assert "| ERROR   | Task run 'needs-gate' - Task run failed with exception" in launched.stderr


def _wait_for_step(home: Path, run_id: str, step_id: str, status: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    with Store.open(f"sqlite:///{home / 'bcm.db'}") as store:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            step = store.get_step(run_id, step_id)
            if step is not None and step.status == status:
                return
            time.sleep(0.1)
    raise AssertionError(f"step {step_id} of run {run_id[:8]} never {status}")


@pytest.mark.prefect
def test_ctrl_c_of_a_launched_run_ends_its_runner_and_resume_goes_on(served: Served, tmp_path: Path) -> None:
    """Ctrl-C of `bcm run` reaches the launcher's child: the run is left resumable with the words of a
    runner in a terminal, exit 130, its runner gone; `bcm resume` (launched too) then finishes it."""
    out, gate, run_id = tmp_path / "out", tmp_path / "gate", "c0ffee00" + "0" * 24
    command = [sys.executable, "-m", "bcm", "run", str(RESUMABLE), "-p", f"out={out}", "-p", f"gate={gate}"]
    proc = subprocess.Popen(
        [*command, "--run-id", run_id],
        env=served.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_step(served.home, run_id, "gated", "running", proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    line = (
        "interrupted: run c0ffee00 is kept in the store as it was; `bcm resume c0ffee00` continues it where it stopped"
    )
    assert stderr.endswith(f"\n{line}\n") and stderr.count(line) == 1, stderr
    status = served.bcm("status", "c0ffee00", "--json")
    assert json.loads(status.stdout)["run"]["interrupted"].startswith("its runner (pid "), status.stdout

    gate.touch()
    resumed = served.bcm("resume", "c0ffee00")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_text().split() == ["once", "gated", "last"]
    assert served.log_of(run_id).read_text().count("--- bcm launcher: ") == 2


@pytest.mark.prefect
def test_ctrl_c_stops_everything_and_removes_serve_json(served: Served) -> None:
    """Ctrl-C: the launcher, the runner, then the server stopped, serve.json and the launcher's socket
    removed, exit 130; nothing answers."""
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(60) == 130
    assert not serve_file(served.home).exists()
    assert not served.launcher.exists()
    assert "bcm serve: Ctrl-C: stopping the launcher and the runner, then the Prefect server" in (
        served.stderr.read_text()
    )
    for pid in (served.record["server_pid"], served.record["runner_pid"], served.record["launcher_pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{served.url}/health", timeout=2)


# Discovery, in-process: no Prefect server needed.


def _record(home: Path, **fields: Any) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    record = {"url": "http://127.0.0.1:9/api", "pid": os.getpid(), "host": socket.gethostname(), **fields}
    path = serve_file(home)
    path.write_text(json.dumps(record))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def health_server() -> Iterator[str]:
    """A stand-in Prefect API answering /api/health; yields its API URL."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/api/health"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"true" if ok else b"")

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def test_a_live_serve_is_found_and_an_explicit_prefect_api_url_wins(tmp_path: Path, health_server: str) -> None:
    home = tmp_path / "home"
    _record(home, url=health_server)
    assert find_served_server(home, {}) == (health_server, None)
    assert find_served_server(home, {"PREFECT_API_URL": "http://prefect.example/api"}) == (None, None)
    profiles = tmp_path / "prefect" / "profiles.toml"
    profiles.parent.mkdir()
    profiles.write_text('active = "team"\n[profiles.team]\nPREFECT_API_URL = "http://prefect.example/api"\n')
    assert find_served_server(home, {"PREFECT_HOME": str(profiles.parent)}) == (None, None)
    assert serve_file(home).exists()


def test_a_stale_serve_json_is_ignored_and_removed(tmp_path: Path) -> None:
    """A serve.json whose process is gone: ignored and removed, by any command, with no error."""
    home = tmp_path / "home"
    path = _record(home, pid=_dead_pid())
    assert find_served_server(home, {}) == (None, None)
    assert not path.exists()

    _record(home, pid=_dead_pid())
    env = bcm_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "bcm", "schema"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert not path.exists()


def test_a_serve_that_does_not_answer_is_not_used_and_another_hosts_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    path = _record(home, url=url)
    assert find_served_server(home, {}) == (None, f"bcm serve (pid {os.getpid()}) does not answer at {url}")
    assert path.exists()  # its process lives: not ours to remove
    _record(home, host="another-host", pid=_dead_pid())
    assert find_served_server(home, {}) == (None, None)
    assert path.exists()  # a shared BCM_HOME: the other machine's bcm serve may well be alive
    path.write_text("{not json")
    assert find_served_server(home, {}) == (None, None)
    assert not path.exists()  # unreadable and no bcm serve holds the lock


def test_prefect_yaml_is_read_generically(tmp_path: Path) -> None:
    """Entrypoints are imported as modules; one that does not import, or is not a flow, is skipped with why."""
    from flows.serve import read_project

    (tmp_path / "prefect.yaml").write_text(
        yaml.safe_dump(
            {
                "deployments": [
                    {
                        "name": "daily",
                        "entrypoint": "flows/readiness.py:readiness_checks",
                        "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/London"}],
                    },
                    {"name": "often", "entrypoint": "flows/outbox.py:flush_outbox", "schedules": [{"interval": 300}]},
                    {"name": "by-hand", "entrypoint": "flows/runbook.py:run_runbook", "parameters": {"mode": "real"}},
                    {"name": "missing", "entrypoint": "flows/nowhere.py:gone"},
                    {"name": "not-a-flow", "entrypoint": "flows/runbook.py:WAIT_SLICE_S"},
                    {"name": "outside", "entrypoint": "/etc/passwd.py:x"},
                ]
            }
        )
    )
    project = read_project(tmp_path / "prefect.yaml")
    assert [(s.name, s.schedules) for s in project.served] == [
        ("readiness-checks/daily", ["cron 0 6 * * * (Europe/London)"]),
        ("flush-outbox/often", ["every 5m"]),
        ("run-runbook/by-hand", []),
    ]
    assert [d.parameters for d in project.deployments][2] == {"mode": "real"}
    assert [(s.name, s.why.split(":")[0]) for s in project.skipped] == [
        ("missing", "ModuleNotFoundError"),
        ("not-a-flow", "ValueError"),
        ("outside", "ValueError"),
    ]


def test_the_launcher_refuses_what_it_cannot_make_from_its_warm_imports(tmp_path: Path) -> None:
    """A call is refused (the command then makes it itself) for a flow it does not know, a setting bcm
    reads at import that differs, or a thread beside its main one (forking it would copy its locks)."""
    from flows.launcher import Launcher

    launcher = Launcher(tmp_path / "launcher.sock")
    launcher.environ.pop("BCM_HEARTBEAT_S", None)
    call = {"flow": "run-runbook", "parameters": {}, "env": {}, "cwd": str(tmp_path), "log": str(tmp_path / "a.log")}
    assert launcher.refusal({**call, "flow": "rm-rf"}) == "no flow 'rm-rf' here"
    assert launcher.refusal({**call, "cwd": None}) == "a malformed call"
    heartbeat = {**call, "env": {"BCM_HEARTBEAT_S": "1"}}
    assert launcher.refusal(heartbeat) == "BCM_HEARTBEAT_S differs from bcm serve's (None)"
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="a-thread", daemon=True)
    thread.start()
    try:
        assert "a-thread" in (launcher.refusal(call) or "")
    finally:
        stop.set()
        thread.join()
