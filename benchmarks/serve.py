"""With `bcm serve` running: trigger to first Slack message, and `bcm approve` to the run moving on.

`bcm serve` is started here (its own Prefect server on SQLite, in a temporary BCM_HOME); every
command below runs WITHOUT PREFECT_API_URL and finds it through $BCM_HOME/serve.json, as a person's
commands do. Messages go to the Slack stand-in (bcm/testing/slack_standin.py).

(a) trigger -> first Slack message: from `python -m bcm run slack-demo --mode exercise
    --auto-approve` process start to the stand-in receiving the run's first chat.postMessage
    (as benchmarks/notify.py measures it). The command hands the flow call to serve's launcher
    (flows/launcher.py), whose forked child runs it with Prefect already imported. Baseline: a bare
    Prefect flow in a fresh process on the same server whose body posts one message to the
    stand-in (httpx), timed the same way; and the same `bcm run` with the launcher's socket moved
    away, so that it calls the flow itself (what it did before the launcher).
(b) `bcm approve` -> the run moving on: a real-mode run with 10 approve steps all waiting; each
    is decided by `python -m bcm approve` after a random pause (so decisions fall anywhere in the
    runner's 0.25 s polling cycle), timed from that process's start to the step leaving `waiting`
    in the store. Baseline: `bcm runs --json` from process start to exit (a bcm command that reads
    the store: the floor of any bcm command).

Both also against `python -c pass` (the process floor). Medians of --repeat (default 10) after a
warm-up; target at most 1 s each. Then where the time of a `bcm run` process goes: its imports
(`python -X importtime`, the whole command through the launcher), grouped.

    python benchmarks/serve.py [--repeat 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcm.engine.approvals import decide  # noqa: E402
from bcm.store import Store  # noqa: E402
from bcm.testing.slack_standin import SlackStandIn  # noqa: E402

TARGET_S = 1.0
TOKEN = "xoxb-benchmark"
WHO = "Grace Hopper"  # an alternate of incident_commander in the fixture catalog
PENDING = 10
JITTER_S = 0.5  # two of the runner's 0.25 s polling cycles
POLL_S = 0.01
SLACK_DEMO = ROOT / "tests" / "fixtures" / "engine" / "slack-demo.yaml"

BARE_FLOW = """
import os, sys, time
import httpx
from prefect import flow

@flow(persist_result=False)
def bare() -> None:
    httpx.post(os.environ["BCM_SLACK_API_URL"].rstrip("/") + "/chat.postMessage",
               headers={"Authorization": "Bearer " + os.environ["SLACK_BOT_TOKEN"]},
               json={"channel": "C0EXERCISE", "text": "bare flow"})

bare()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def write_library(lib: Path) -> None:
    """The fixture catalog and slack-demo."""
    shutil.copytree(ROOT / "tests" / "fixtures" / "catalog", lib / "catalog")
    shutil.copy(SLACK_DEMO, lib / SLACK_DEMO.name)


def approvals_runbook(lib: Path, name: str, count: int) -> Path:
    """A runbook whose ``count`` approve steps all wait at once (they only need ``start``)."""
    steps = "".join(
        f"    - id: ok-{n:02d}\n      needs: [start]\n"
        f"      approve: {{by: incident_commander, prompt: 'Go {n}?', timeout: 10m, on_timeout: fail}}\n"
        for n in range(count)
    )
    path = lib / f"{name}.yaml"
    path.write_text(
        f"version: 1\nid: {name}\ntitle: Pending approvals\nowner: voice_ops\nseverity: sev2\n"
        "services: [voice-core]\nphases:\n  response:\n    - id: start\n      notify: {to: [exec], message: start}\n"
        + steps
    )
    return path


@contextlib.contextmanager
def bcm_serve(env: dict[str, str], home: Path, log: Path) -> Iterator[str]:
    """`bcm serve` on a free port; yields its API URL once serve.json is written; Ctrl-C at the end."""
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bcm", "serve", "--port", str(free_port())],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        record = home / "serve.json"
        while not record.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bcm serve did not start (exit {proc.returncode}):\n{log.read_text()}")
            time.sleep(0.2)
        yield str(json.loads(record.read_text())["url"])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def time_process(argv: list[str], env: dict[str, str], slack: SlackStandIn | None = None) -> float:
    """Seconds from process start to its exit, or (with ``slack``) to the stand-in's first delivered message."""
    if slack is not None:
        slack.reset()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if slack is None:
            proc.wait(120)
        else:
            while not any(c.delivered for c in slack.calls_to("chat.postMessage")):
                if proc.poll() is not None and proc.returncode != 0:
                    raise SystemExit(f"{argv[2:]} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
                time.sleep(POLL_S)
        took = time.perf_counter() - started
    finally:
        _, stderr = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[2:]} failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    if b"embedded server" in stderr:
        raise SystemExit(f"{argv[2:]} started an embedded server instead of using bcm serve")
    return took


def repeat(times: int, measure: Callable[[], float]) -> list[float]:
    measure()  # warm-up
    return [measure() for _ in range(times)]


def wait_until_left_waiting(store: Store, run_id: str, step_id: str) -> float:
    deadline = time.perf_counter() + 60
    while True:
        step = store.get_step(run_id, step_id)
        seen = time.perf_counter()
        if step is not None and step.status != "waiting":
            return seen
        if seen > deadline:
            raise SystemExit(f"step {step_id} still waiting after 60 s")
        time.sleep(POLL_S)


def measure_approvals(store: Store, env: dict[str, str], runbook: Path, count: int, rng: random.Random) -> list[float]:
    """A real run with PENDING approve steps waiting; ``count`` decided by `python -m bcm approve`, timed."""
    ids = [f"ok-{n:02d}" for n in range(PENDING)]
    run_id = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", str(runbook), "--run-id", run_id, "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    taken = []
    try:
        wait_for_steps(store, run_id, ids, proc)
        for step in rng.sample(ids, count):
            time.sleep(rng.uniform(0, JITTER_S))
            started = time.perf_counter()
            approve = subprocess.Popen(
                [sys.executable, "-m", "bcm", "approve", run_id[:8], step, "--by", WHO],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            seen = wait_until_left_waiting(store, run_id, step)
            _, err = approve.communicate(timeout=60)
            if approve.returncode != 0:
                raise SystemExit(f"bcm approve failed ({approve.returncode}): {err.decode()}")
            taken.append(seen - started)
        for step in ids:  # the rest only so the run ends
            if store.get_step(run_id, step).status == "waiting":  # type: ignore[union-attr]
                decide(store, run_id, step, who=WHO, approve=True, note=None, library_root=runbook.parent)
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode != 0 or b"embedded server" in stderr:
            raise SystemExit(f"bcm run failed ({proc.returncode}) or used an embedded server: {stderr.decode()}")
    finally:
        if proc.poll() is None:
            proc.kill()
    return taken


def wait_for_steps(store: Store, run_id: str, ids: list[str], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bcm run ended early ({proc.returncode}): {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        with contextlib.suppress(Exception):  # the run may not exist yet
            statuses = {s.step_id: s.status for s in store.get_steps(run_id)}
            if all(statuses.get(step) == "waiting" for step in ids):
                time.sleep(0.5)  # the runner's tasks have all started polling
                return
        time.sleep(0.05)
    raise SystemExit(f"run {run_id[:8]} never waited on all its {len(ids)} steps")


def import_breakdown(env: dict[str, str], run_argv: list[str]) -> list[tuple[str, float]]:
    """What a `bcm run` process imports (through the launcher: no Prefect), grouped, in seconds."""
    result = subprocess.run(
        [run_argv[0], "-X", "importtime", *run_argv[1:], "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"bcm run failed ({result.returncode}): {result.stderr[-2000:]}")
    groups: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        top = name.strip().split(".")[0]
        groups[top] = groups.get(top, 0.0) + int(self_us) / 1e6
    return sorted(groups.items(), key=lambda item: -item[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bcm-serve-bench-"))
    lib = work / "lib"
    write_library(lib)
    pending = approvals_runbook(lib, "pending", PENDING)
    home = work / "home"
    channels = {"C0EXERCISE": "bcm-exercises", "C0INCIDENTS": "bcm-incidents"}
    try:
        with SlackStandIn(tokens={TOKEN}, channels=channels) as slack:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BCM_", "SLACK_"))},
                "PREFECT_HOME": str(work / "prefect-client"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "DO_NOT_TRACK": "1",
                "BCM_HOME": str(home),
                "BCM_RUNBOOKS": str(lib),
                "SLACK_BOT_TOKEN": TOKEN,
                "BCM_SLACK_API_URL": slack.base_url,
            }
            with (
                bcm_serve(env, home, work / "serve.log") as api_url,
                Store.open(f"sqlite:///{home / 'bcm.db'}") as store,
            ):
                floor = repeat(args.repeat, lambda: time_process([sys.executable, "-c", "pass"], env))
                bare_env = {**env, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
                bare = repeat(args.repeat, lambda: time_process([sys.executable, "-c", BARE_FLOW], bare_env, slack))
                run_argv = [sys.executable, "-m", "bcm", "run", str(lib / SLACK_DEMO.name), "-p", "site=lon"]
                run_argv += ["--mode", "exercise", "--auto-approve"]
                first = repeat(args.repeat, lambda: time_process(run_argv, env, slack))
                launcher = home / "launcher.sock"
                launcher.rename(home / "moved.sock")  # bcm run then calls the flow itself
                try:
                    itself = repeat(args.repeat, lambda: time_process(run_argv, env, slack))
                finally:
                    (home / "moved.sock").rename(launcher)
                imports = import_breakdown(env, run_argv)
                runs_argv = [sys.executable, "-m", "bcm", "runs", "--json"]
                floor_bcm = repeat(args.repeat, lambda: time_process(runs_argv, env))
                measure_approvals(store, env, pending, 1, rng)  # warm-up
                moved = measure_approvals(store, env, pending, min(args.repeat, PENDING), rng)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def line(label: str, values: list[float], base: list[float] | None = None) -> str:
        ratio = f"   ratio {statistics.median(values) / statistics.median(base):5.2f}" if base else ""
        return (
            f"  {label:<52} median {statistics.median(values):5.2f} s  p90 {p90(values):5.2f} s  "
            f"max {max(values):5.2f} s{ratio}"
        )

    print(f"bcm serve (Prefect server on SQLite), store on SQLite, Slack stand-in; medians of {args.repeat}")
    print("baselines:")
    print(line("`python -c pass`, start to exit", floor))
    print(line("bare Prefect flow process, start to its Slack message", bare))
    print(line("`bcm runs --json` (a bcm command), start to exit", floor_bcm))
    print("(a) trigger -> first Slack message:")
    print(line("`bcm run` start to the stand-in's first message", first, bare))
    print(line("the same, the command calling the flow itself", itself, bare))
    print("(b) decision -> the run moving on:")
    print(line("`bcm approve` start to the step leaving waiting", moved, floor_bcm))
    print("(ratios: over the bare Prefect flow for (a), over `bcm runs --json` for (b))")
    total = sum(seconds for _, seconds in imports)
    shown = ", ".join(f"{name} {seconds:.2f}" for name, seconds in imports[:6])
    prefect = "none of Prefect" if not any(name == "prefect" for name, _ in imports) else "Prefect among them"
    print(f"imports of a `bcm run` process through the launcher: {total:.2f} s ({shown} ...; {prefect})")
    for label, values in (("(a)", first), ("(b)", moved)):
        worst = statistics.median(values)
        verdict = "PASS" if worst <= TARGET_S else "FAIL"
        print(f"{verdict} {label}: median {worst:.2f} s (target <= {TARGET_S:.0f} s)")


if __name__ == "__main__":
    main()
