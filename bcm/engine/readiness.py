"""Readiness checks: a runbook's prevention steps, run outside any incident, recorded pass/fail."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from bcm import clock
from bcm.clock import Clock
from bcm.comms.notifier import Notifier
from bcm.engine.actions import StepOutcome, action_env, execute
from bcm.engine.context import RunContext, RunInfo, StepState
from bcm.engine.plan import Plan
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.params import coerce_parameter
from bcm.store import Store


@dataclass(frozen=True)
class CheckResult:
    """One readiness check's result."""

    runbook_id: str
    step_id: str
    ok: bool
    status: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "runbook": self.runbook_id,
            "step": self.step_id,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
        }


def check_parameters(loaded: LoadedRunbook, given: dict[str, str]) -> dict[str, object]:
    """Parameters for checks: defaults, then what was given; unknown names are ignored."""
    values: dict[str, object] = {}
    for name, param in loaded.runbook.parameters.items():
        if name in given:
            values[name] = coerce_parameter(param, given[name])
        elif param.default is not None:
            values[name] = coerce_parameter(param, param.default)
    return values


def check_context(loaded: LoadedRunbook, catalog: Catalog, params: dict[str, object], *, now: Clock) -> RunContext:
    """A context for prevention steps: a check id instead of a run, mode ``check``."""
    plan = Plan.build(loaded.runbook, phases=("prevention",))
    return RunContext(
        loaded=loaded,
        catalog=catalog,
        run=RunInfo(id="check-" + uuid.uuid4().hex[:26], mode="check", started_at=now(), triggered_by="readiness"),
        params=params,
        steps={p.id: StepState() for p in plan.steps},
    )


def summarise_outcome(outcome: StepOutcome) -> str:
    """One line saying what a check found (for a failed script: the subjects that are not ready)."""
    output = outcome.output
    if isinstance(output, dict) and "stdout" in output:
        lines = str(output["stdout"]).strip().splitlines()
        if outcome.ok:
            return lines[-1] if lines else "ok"
        # A script checking several subjects prints a line each: show the ones not ready.
        bad = [line for line in lines if not re.search(r":\s*ok\b", line, re.IGNORECASE)]
        if bad:
            return f"exit code {output.get('exit_code')}: " + "; ".join(bad)
    if outcome.error:
        return outcome.error
    return str(output)[:200] if output is not None else "ok"


def run_checks(
    loaded: LoadedRunbook,
    catalog: Catalog,
    params: dict[str, object],
    *,
    store: Store,
    notifier: Notifier,
    now: Clock = clock.now,
) -> list[CheckResult]:
    """Run one runbook's prevention steps in dependency order and record each result.

    A check whose dependency failed is not run and counts as failed (it could not be checked).
    """
    ctx = check_context(loaded, catalog, params, now=now)
    plan = Plan.build(loaded.runbook, phases=("prevention",))
    env = action_env(notifier, ctx)
    results: list[CheckResult] = []
    failed: set[str] = set()
    for wave in plan.waves():
        for step_id in wave:
            planned = plan.get(step_id)
            blocked = [n for n in planned.needs if n in failed and plan.get(n).step.on_failure == "stop"]
            if blocked:
                outcome = StepOutcome("failed", error=f"not checked: {', '.join(blocked)} failed first")
            else:
                outcome = _with_retries(planned.step.retries, lambda s=planned.step: execute(s, ctx, env=env))
            ctx.steps[step_id] = StepState(status=outcome.status, output=outcome.output)
            if not outcome.ok:
                failed.add(step_id)
            detail = summarise_outcome(outcome)
            store.record_check(runbook_id=loaded.runbook.id, step_id=step_id, ok=outcome.ok, output=detail, at=now())
            results.append(CheckResult(loaded.runbook.id, step_id, outcome.ok, outcome.status, detail))
    return results


def _with_retries(retries: int, attempt: Any) -> StepOutcome:
    outcome: StepOutcome = attempt()
    for _ in range(retries):
        if outcome.ok:
            break
        outcome = attempt()
    return outcome
