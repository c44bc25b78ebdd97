"""Decision latency: from `bcm approve` (or the Slack button) to the run taking the decision.

A runbook of N approve steps that all wait at once (N = 1, 10, 50) runs as the real Prefect flow
on a local test server. A person decides the steps one at a time, in a seeded random order and
after a random pause (so decisions fall anywhere in the runner's polling cycle), through
``bcm.engine.approvals.decide`` (what ``bcm approve`` and the Slack button call). Each figure is
the time from ``decide()`` returning to the step leaving ``waiting`` in the store (the runner has
recorded it), polled every 10 ms. A few decisions also go through the real command line
(``python -m bcm approve``), timed from process start, which is what a person experiences.

Baseline, in the same run: one store round trip, ``decide()`` on a step of a run that no runner
watches followed by one ``get_step`` read; the ratio is bcm's ``decide()`` start to the run
taking the decision, over that. Target: median at most 2 s, whatever the number of pending steps.

With ``--slack`` the run talks to a local Slack stand-in instead of writing the transcript: the
runner edits the approval request (through the outbox) before it records the step, so Slack's
answer time is then part of the figures.

    python benchmarks/decision.py [--sizes 1,10,50] [--cli 5] [--seed 7] [--postgres] [--slack]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from bcm.engine.approvals import decide  # noqa: E402
from bcm.engine.runner import RunRequest, start_run  # noqa: E402
from bcm.spec import load_one  # noqa: E402
from bcm.store import Store  # noqa: E402
from bcm.testing.slack_standin import SlackStandIn  # noqa: E402

TARGET_S = 2.0
SLACK_TOKEN = "xoxb-benchmark"
WHO = "Grace Hopper"  # an alternate of incident_commander in the fixture catalog
POLL_S = 0.01  # how often the person's side looks at the step
# A decision comes up to this long after the previous one was taken: two of the runner's 0.25 s polling
# cycles, so decisions fall evenly over the cycle.
JITTER_S = 0.5
STEP_TIMEOUT_S = 30.0


@dataclass
class Samples:
    """Seconds per decision."""

    decide: list[float] = field(default_factory=list)  # decide() itself
    taken: list[float] = field(default_factory=list)  # decide() returned -> step left waiting
    total: list[float] = field(default_factory=list)  # decide() started -> step left waiting


def write_runbook(folder: Path, pending: int) -> Path:
    """A runbook whose ``pending`` approve steps all wait at once (they only need ``start``)."""
    steps = "".join(
        f"    - id: ok-{n:02d}\n      needs: [start]\n"
        f"      approve: {{by: incident_commander, prompt: 'Go {n}?', timeout: 10m, on_timeout: fail}}\n"
        for n in range(pending)
    )
    path = folder / f"pending-{pending}.yaml"
    path.write_text(
        f"version: 1\nid: pending-{pending}\ntitle: {pending} pending approvals\nowner: voice_ops\n"
        "severity: sev2\nservices: [voice-core]\n"
        "phases:\n  response:\n    - id: start\n      notify: {to: [exec], message: start}\n" + steps
    )
    return path


def step_ids(pending: int) -> list[str]:
    return [f"ok-{n:02d}" for n in range(pending)]


def wait_until_left_waiting(store: Store, run_id: str, step_id: str) -> float:
    """Poll the step until it is no longer waiting; return the perf_counter time it was seen."""
    deadline = time.perf_counter() + STEP_TIMEOUT_S
    while True:
        step = store.get_step(run_id, step_id)
        seen = time.perf_counter()
        if step is not None and step.status != "waiting":
            return seen
        if seen > deadline:
            raise SystemExit(f"step {step_id} of run {run_id[:8]} still waiting after {STEP_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def wait_until_all_waiting(store: Store, run_id: str, ids: list[str]) -> None:
    """Block until the run waits on every one of ``ids`` (and its tasks have had time to start)."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        with contextlib.suppress(Exception):  # the run may not exist yet
            if store.get_run(run_id).status == "waiting":
                statuses = {s.step_id: s.status for s in store.get_steps(run_id)}
                if all(statuses.get(step) == "waiting" for step in ids):
                    time.sleep(0.5)
                    return
        time.sleep(0.05)
    raise SystemExit(f"run {run_id[:8]} never waited on all its {len(ids)} steps")


def run_with_person(runbook: Path, run_id: str, person: Callable[[], None]) -> None:
    """Run the runbook flow here while ``person`` decides in another thread."""
    from flows.runbook import run_runbook

    errors: list[BaseException] = []

    def target() -> None:
        try:
            person()
        except BaseException as exc:  # re-raised below, after the flow
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    state = run_runbook(runbook=str(runbook), run_id=run_id, return_state=True)
    thread.join(60)
    if errors:
        raise errors[0]
    if not state.is_completed():
        raise SystemExit(f"run {run_id[:8]} did not complete: {state}")


def measure_in_process(store: Store, lib: Path, runbook: Path, pending: int, rng: random.Random, out: Samples) -> None:
    """One run with ``pending`` waiting steps, each decided through decide()."""
    run_id = uuid.uuid4().hex
    ids = step_ids(pending)
    order = rng.sample(ids, len(ids))
    pauses = [rng.uniform(0, JITTER_S) for _ in ids]

    def person() -> None:
        wait_until_all_waiting(store, run_id, ids)
        for step, pause in zip(order, pauses, strict=True):
            time.sleep(pause)
            started = time.perf_counter()
            decide(store, run_id, step, who=WHO, approve=True, note=None, library_root=lib)
            returned = time.perf_counter()
            seen = wait_until_left_waiting(store, run_id, step)
            out.decide.append(returned - started)
            out.taken.append(seen - returned)
            out.total.append(seen - started)

    run_with_person(runbook, run_id, person)


def measure_cli(
    store: Store, lib: Path, runbook: Path, pending: int, count: int, env: dict[str, str], rng: random.Random
) -> tuple[list[float], list[float]]:
    """One run with ``pending`` waiting steps; ``count`` of them decided by `python -m bcm approve`.

    Returns (process start -> decision recorded, process start -> step left waiting).
    """
    run_id = uuid.uuid4().hex
    ids = step_ids(pending)
    order = rng.sample(ids, len(ids))
    recorded: list[float] = []
    taken: list[float] = []

    def person() -> None:
        wait_until_all_waiting(store, run_id, ids)
        for step in order[:count]:
            time.sleep(rng.uniform(0, JITTER_S))
            wall = time.time()
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "bcm", "approve", run_id[:8], step, "--by", WHO],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            seen = wait_until_left_waiting(store, run_id, step)
            stdout, stderr = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise SystemExit(f"bcm approve failed ({proc.returncode}): {stdout}{stderr}")
            approval = store.get_approval(run_id, step)
            assert approval is not None
            recorded.append(approval.at.timestamp() - wall)
            taken.append(seen - started)
        for step in order[count:]:  # the rest only so the run ends
            decide(store, run_id, step, who=WHO, approve=True, note=None, library_root=lib)

    run_with_person(runbook, run_id, person)
    return recorded, taken


def measure_baseline(store: Store, lib: Path, runbook: Path, count: int) -> list[float]:
    """decide() on a step of a run no runner watches, then one get_step read: seconds each."""
    loaded, catalog = load_one(str(runbook), library_root=lib)
    run = start_run(store, RunRequest(loaded=loaded, catalog=catalog, params={}, triggered_by="benchmark"))
    now = datetime.now(UTC)
    ids = step_ids(count)
    for step in ids:
        store.upsert_step(run.id, step, phase="response", kind="approve", status="waiting", started_at=now)
    times = []
    for step in ids:
        started = time.perf_counter()
        decide(store, run.id, step, who=WHO, approve=True, note=None, library_root=lib)
        assert store.get_step(run.id, step) is not None
        times.append(time.perf_counter() - started)
    return times[1:]  # the first one warms up


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f}"


@contextlib.contextmanager
def database(work: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{work / 'bcm.db'}"
        return
    from bcm.testing.db import postgres_available, temporary_postgres_url

    why = postgres_available()
    if why is not None:
        raise SystemExit(why)
    with temporary_postgres_url() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="numbers of pending steps, comma-separated")
    parser.add_argument("--min-samples", type=int, default=8, help="runs are repeated to get at least this many")
    parser.add_argument(
        "--cli", type=int, default=5, help="decisions through `python -m bcm approve` (N=10, at most 10)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true", help="store on PostgreSQL (127.0.0.1:5432/test)")
    parser.add_argument("--slack", action="store_true", help="deliver to a local Slack stand-in, not the transcript")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bcm-decision-bench-"))
    lib = work / "lib"
    lib.mkdir()
    shutil.copytree(ROOT / "tests" / "fixtures" / "catalog", lib / "catalog")
    runbooks = {n: write_runbook(lib, n) for n in {*sizes, 1, 10, 20}}
    results: dict[int, Samples] = {}
    slack_calls = 0
    try:
        with database(work, args.postgres) as url, contextlib.ExitStack() as stack:
            os.environ.update(BCM_HOME=str(work / "home"), BCM_RUNBOOKS=str(lib), BCM_DATABASE_URL=url)
            for name in ("SLACK_BOT_TOKEN", "BCM_SLACK_API_URL", "BCM_SLACK_INCIDENTS_CHANNEL"):
                os.environ.pop(name, None)
            if args.slack:
                slack = stack.enter_context(
                    SlackStandIn(tokens={SLACK_TOKEN}, channels={"C0INCIDENTS": "bcm-incidents"})
                )
                os.environ.update(SLACK_BOT_TOKEN=SLACK_TOKEN, BCM_SLACK_API_URL=slack.base_url)
            env = {**os.environ, "PREFECT_HOME": str(work / "prefect-cli")}
            with (
                Store.open(url) as store,
                prefect_test_harness(),
                temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
            ):
                baseline = measure_baseline(store, lib, runbooks[20], 20)
                measure_in_process(store, lib, runbooks[1], 1, rng, Samples())  # warm-up
                for n in sizes:
                    results[n] = Samples()
                    for _ in range(math.ceil(args.min_samples / n)):
                        measure_in_process(store, lib, runbooks[n], n, rng, results[n])
                cli_recorded, cli_taken = measure_cli(store, lib, runbooks[10], 10, args.cli, env, rng)
            if args.slack:
                slack_calls = sum(c.ok for c in slack.calls)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(baseline)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    chat = f"a local Slack stand-in ({slack_calls} calls answered)" if args.slack else "the transcript"
    print(f"Decision latency: store on {backend}, messages to {chat}")
    print("Times in ms; the runner looks for decisions every 250 ms.")
    print(f"baseline: decide() + get_step read, no runner: {ms(base).strip()} ms (median of {len(baseline)})")
    print()
    print("pending  decisions  decide()   decide() returned -> run took it   ratio")
    print("  steps                median    median      p90      max")
    medians = []
    for n in sizes:
        s = results[n]
        median = statistics.median(s.taken)
        medians.append(median)
        ratio = statistics.median(s.total) / base
        print(
            f"{n:7d}  {len(s.taken):9d}  {ms(statistics.median(s.decide))}   "
            f"{ms(median)}  {ms(p90(s.taken))}  {ms(max(s.taken))}   {ratio:5.1f}"
        )
    print("(ratio: median of decide() start -> run took it, over the baseline)")
    print()
    if cli_taken:
        cli_median = statistics.median(cli_taken)
        medians.append(cli_median)
        print(f"`python -m bcm approve`, 10 pending, {len(cli_taken)} decisions, from process start:")
        print(f"  decision recorded:  median {ms(statistics.median(cli_recorded)).strip()} ms")
        print(
            f"  run took it:        median {ms(cli_median).strip()} ms, p90 {ms(p90(cli_taken)).strip()} ms, "
            f"max {ms(max(cli_taken)).strip()} ms"
        )
        print()
    worst = max(medians)
    verdict = "PASS" if worst <= TARGET_S else "FAIL"
    print(f"{verdict}: worst median {worst:.2f} s (target <= {TARGET_S:.0f} s, whatever the number of pending steps)")


if __name__ == "__main__":
    main()
