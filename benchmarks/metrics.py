"""Load 100,000 synthetic runs into the store, then time the per-service figures for a year.

Prints two figures: the seconds to load the runs (with their milestones and steps, through
``Store.import_runs`` in batches of 10,000, each batch one transaction), and the seconds to read a
year of runs back (``bcm.timelines.load_timelines``: a few bulk queries) and compute the
per-service figures (``bcm.metrics.summarise``). Target for the figures: at most 2 s.

The synthetic runs are audited like any import: each gets one ``benchmark.loaded`` entry in the
hash chain, so loading pays the hashing a real import pays. Each run has 7 milestones and 6
steps, one or two of 20 services, a stored RTO/RPO/MTPD, and is real or (one in five) an exercise;
durations are drawn from a skewed distribution, as incident durations are.

    python benchmarks/metrics.py [--runs N] [--database-url URL]   (default: a temporary SQLite file)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcm.metrics import summarise  # noqa: E402
from bcm.store import RunImport, RunRecord, RunTargets, StepRecord, Store  # noqa: E402
from bcm.timelines import load_timelines  # noqa: E402

END = datetime(2026, 5, 1, tzinfo=UTC)
SERVICES = [f"service-{n:02d}" for n in range(20)]
BATCH = 10_000


def synthetic_run(rng: random.Random) -> RunImport:
    started = END - timedelta(seconds=rng.uniform(0, 365 * 86400))
    detect = rng.lognormvariate(5.5, 1.0)
    acknowledge = rng.lognormvariate(4.5, 1.0)
    mitigate = detect + acknowledge + rng.lognormvariate(7.0, 0.8)
    recover = mitigate + rng.lognormvariate(7.5, 1.0)
    offsets = {
        "impact_started": 0.0,
        "detected": detect,
        "acknowledged": detect + acknowledge,
        "declared": detect + acknowledge / 2,
        "mitigated": mitigate,
        "recovered": recover,
        "resolved": recover + rng.lognormvariate(7.0, 1.0),
    }
    marks = tuple((name, started + timedelta(seconds=offset)) for name, offset in offsets.items())
    run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    steps = []
    at = started + timedelta(seconds=detect)
    for n in range(6):
        took = timedelta(seconds=rng.lognormvariate(5.0, 1.0))
        steps.append(
            StepRecord(
                run_id=run_id,
                step_id=f"step-{n}",
                phase="response" if n < 4 else "recovery",
                kind="run",
                status="succeeded",
                attempts=1,
                started_at=at,
                ended_at=at + took,
                output=None,
                error=None,
                actor=None,
                reason=None,
            )
        )
        at += took
    runbook = rng.randrange(10)
    run = RunRecord(
        id=run_id,
        runbook_id=f"runbook-{runbook}",
        runbook_title=f"Synthetic runbook {runbook}",
        runbook_hash="ab" * 32,
        runbook_path=f"runbooks/runbook-{runbook}.yaml",
        mode="exercise" if rng.random() < 0.2 else "real",
        parameters={},
        triggered_by="benchmark",
        services=tuple(rng.sample(SERVICES, rng.choice((1, 1, 1, 2)))),
        severity="sev2",
        status="succeeded",
        flow_run_id=None,
        error=None,
        started_at=started,
        ended_at=marks[-1][1],
        targets=RunTargets(rto=timedelta(hours=4), rpo=timedelta(minutes=15), mtpd=timedelta(hours=24)),
        source="engine",
    )
    return RunImport(run=run, marks=marks, steps=tuple(steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    rng = random.Random(20260501)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        with Store.open(url) as store:
            items = [synthetic_run(rng) for _ in range(args.runs)]
            started = time.perf_counter()
            for start in range(0, len(items), BATCH):
                store.import_runs(items[start : start + BATCH], audit_kind="benchmark.loaded")
            loaded = time.perf_counter() - started
            del items

            started = time.perf_counter()
            since = END - timedelta(days=365)
            timelines = load_timelines(store, since=since, until=END)
            read = time.perf_counter() - started
            groups = summarise(timelines, by="service", since=since, until=END)
            figures = time.perf_counter() - started
        print(f"store: {url.split('://')[0]}")
        print(f"loaded {args.runs:,} runs (7 milestones, 6 steps, 1 audit entry each) in {loaded:.2f} s")
        print(
            f"per-service figures for a year: {figures:.2f} s (read {len(timelines):,} timelines in {read:.2f} s, "
            f"{len(groups)} groups; target ≤ 2 s)"
        )


if __name__ == "__main__":
    main()
