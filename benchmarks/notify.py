"""Time from `bcm run` process start to the Slack stand-in receiving the run's first message.

Measured twice: with Prefect's embedded (ephemeral) server, which the `bcm run` process starts
itself, and against an already running `prefect server start`. Targets: at most 10 s and 2 s.
Each figure is the median of --repeat runs after one warm-up (the Prefect database exists).

    python benchmarks/notify.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcm.testing.slack_standin import SlackStandIn  # noqa: E402

TOKEN = "xoxb-benchmark"
RUNBOOK = ROOT / "tests" / "fixtures" / "engine" / "slack-demo.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_first_message(env: dict[str, str], slack: SlackStandIn) -> float:
    slack.reset()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcm", "run", str(RUNBOOK), "-p", "site=lon", "--mode", "exercise", "--auto-approve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not any(c.delivered for c in slack.calls_to("chat.postMessage")):
            if proc.poll() is not None and proc.returncode != 0:
                raise SystemExit(f"bcm run failed with exit code {proc.returncode}")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        proc.wait(timeout=120)


def measure(env: dict[str, str], slack: SlackStandIn, repeat: int) -> float:
    time_to_first_message(env, slack)  # warm-up: creates the databases
    return statistics.median(time_to_first_message(env, slack) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bcm-notify-bench-"))
    with SlackStandIn(tokens={TOKEN}, channels={"C0EXERCISE": "bcm-exercises"}) as slack:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_HOME": str(work / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "BCM_HOME": str(work / "bcm"),
            "BCM_RUNBOOKS": str(RUNBOOK.parent),
            "SLACK_BOT_TOKEN": TOKEN,
            "BCM_SLACK_API_URL": slack.base_url,
        }
        embedded = measure(env, slack, args.repeat)
        print(f"embedded Prefect server: {embedded:.2f} s from process start to first Slack message (target <= 10 s)")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            api = f"http://127.0.0.1:{port}/api"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            running = measure({**env, "PREFECT_API_URL": api}, slack, args.repeat)
            print(f"running Prefect server:  {running:.2f} s from process start to first Slack message (target <= 2 s)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
