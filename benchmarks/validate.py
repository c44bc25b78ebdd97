"""Validate 1,000 synthetic runbooks of 20 steps in-process and print the seconds it takes.

Target: at most 2 s on the 2-core reference machine. Each runbook is different (ids, messages,
parameters), so no cache makes the figure look better than a real library would.

    python benchmarks/validate.py [--runbooks N] [--steps N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bcm.spec import validate  # noqa: E402


def synthetic_runbook(n: int, steps: int) -> str:
    lines = [
        "version: 1",
        f"id: synthetic-{n:04d}",
        f"title: Synthetic runbook {n}",
        "owner: voice_ops",
        "severity: sev2",
        "services: [voice-core]",
        "review: {last_reviewed: 2026-05-01, interval: 365d}",
        "parameters:",
        "  site: {type: string, required: true, description: Affected site}",
        f"  level_{n}: {{type: integer, default: {n}}}",
        "communication:",
        f'  channel: "inc-{{{{ run.short_id }}}}-syn{n}"',
        "  cadence: 30m",
        "phases:",
    ]
    per_phase = {"communication": 2, "response": steps - 6, "recovery": 4}
    index = 0
    for phase, count in per_phase.items():
        lines.append(f"  {phase}:")
        for _ in range(count):
            index += 1
            sid = f"step-{index}"
            lines.append(f"    - id: {sid}")
            kind = index % 5
            if kind == 0:
                lines.append(f'      notify: {{to: [exec], message: "Update {n}/{index} at {{{{ params.site }}}}"}}')
            elif kind == 1:
                lines.append(f'      run: [echo, "step {index}", "{{{{ params.level_{n} }}}}"]')
                lines.append("      retries: 2")
            elif kind == 2:
                lines.append(
                    f'      approve: {{by: incident_commander, prompt: "Proceed with {index}?", timeout: 30m}}'
                )
            elif kind == 3:
                lines.append(
                    f'      http: {{method: POST, url: "https://lb{n}.example.net/{index}", expect_status: [200]}}'
                )
                lines.append(f"      when: \"{{{{ steps['step-{index - 1}'].status == 'succeeded' }}}}\"")
            else:
                lines.append("      wait: 1s")
            if index > 2 and phase == "response" and index % 4 == 0:
                lines.append(f"      needs: [step-{index - 2}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runbooks", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bcm-bench-"))
    try:
        shutil.copytree(ROOT / "tests" / "fixtures" / "catalog", workdir / "catalog")
        for n in range(args.runbooks):
            (workdir / f"synthetic-{n:04d}.yaml").write_text(synthetic_runbook(n, args.steps), encoding="utf-8")
        start = time.perf_counter()
        loaded, problems = validate([workdir], library_root=workdir)
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        print("\n".join(str(p) for p in problems[:10]))
        raise SystemExit(f"{len(problems)} problems in the synthetic library")
    steps = sum(len(item.runbook.steps()) for item in loaded)
    print(f"validated {len(loaded)} runbooks ({steps} steps) in {elapsed:.2f} s (target <= 2.00 s)")


if __name__ == "__main__":
    main()
