"""Engine overhead: a 50-step runbook of no-op steps through bcm against a bare Prefect flow.

Both run on the same Prefect server (a local test server started here) in one process, after a
warm-up of each. bcm's run includes everything a real run does: validation, the store (SQLite,
with the audit chain), the transcript, a task per step. Target: ratio at most 1.5.

    python benchmarks/engine.py [--steps 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402


@task(cache_policy=NO_CACHE, persist_result=False)
def noop(i: int) -> int:
    return i


@flow(persist_result=False)
def bare(steps: int) -> None:
    for i in range(steps):  # one after another, like a runbook phase without `needs`
        noop.with_options(task_run_name=f"step-{i}").submit(i).result()


def write_runbook(folder: Path, steps: int) -> Path:
    shutil.copytree(ROOT / "tests" / "fixtures" / "catalog", folder / "catalog")
    lines = ["version: 1", "id: noop", "title: No-op steps", "owner: voice_ops", "severity: sev4", "phases:"]
    lines.append("  response:")
    lines += [f"    - {{id: step-{i}, wait: 0s}}" for i in range(steps)]
    path = folder / "noop.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bcm-engine-bench-"))
    try:
        runbook = write_runbook(work / "lib", args.steps)
        os.environ.update(
            BCM_HOME=str(work / "home"), BCM_RUNBOOKS=str(work / "lib"), BCM_DATABASE_URL=f"sqlite:///{work / 'bcm.db'}"
        )
        from flows.runbook import run_runbook

        with prefect_test_harness(), temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            bare(2)
            run_runbook(runbook=str(runbook), mode="exercise", return_state=True)  # warm-up
            bcm_times, bare_times = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                state = run_runbook(runbook=str(runbook), mode="exercise", return_state=True)
                bcm_times.append(time.perf_counter() - start)
                assert state.is_completed(), state
                start = time.perf_counter()
                bare(args.steps)
                bare_times.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bcm_s, bare_s = statistics.median(bcm_times), statistics.median(bare_times)
    print(f"{args.steps}-step runbook through bcm: {bcm_s:.2f} s (median of {args.repeat})")
    print(f"bare Prefect flow, {args.steps} no-op tasks: {bare_s:.2f} s (median of {args.repeat})")
    print(f"ratio: {bcm_s / bare_s:.2f} (target <= 1.50)")


if __name__ == "__main__":
    main()
