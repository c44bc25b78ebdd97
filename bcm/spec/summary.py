"""What people see of a runbook: effective targets, review status, the step graph as text/Mermaid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bcm.durations import format_duration
from bcm.spec.graph import dependencies
from bcm.spec.loader import Catalog
from bcm.spec.models import PHASES, Runbook, Step


@dataclass(frozen=True)
class EffectiveTargets:
    """The targets a run is measured against: the runbook's, else the tightest of its services'."""

    rto: timedelta | None
    rpo: timedelta | None
    mtpd: timedelta | None


def effective_targets(runbook: Runbook, catalog: Catalog) -> EffectiveTargets:
    """Runbook targets, defaulting to the tightest RTO/RPO/MTPD among the runbook's services."""
    services = [catalog.services[s] for s in runbook.services if s in catalog.services]
    rto = runbook.targets.rto or min((s.rto for s in services), default=None)
    rpo = runbook.targets.rpo or min((s.rpo for s in services), default=None)
    mtpd = min((s.mtpd for s in services), default=None)
    return EffectiveTargets(rto=rto, rpo=rpo, mtpd=mtpd)


def review_status(runbook: Runbook, today: date) -> tuple[str, date | None]:
    """``("ok" | "due" | "OVERDUE" | "never reviewed", due date)``; due = within 30 days."""
    if runbook.review is None:
        return "never reviewed", None
    due = runbook.review.due()
    if due < today:
        return "OVERDUE", due
    if due <= today + timedelta(days=30):
        return "due", due
    return "ok", due


def describe_step(step: Step) -> str:
    """One line saying what a step does."""
    if step.run:
        return "run " + " ".join(step.run)
    if step.http:
        return f"http {step.http.method} {step.http.url}"
    if step.call:
        return f"call {step.call}"
    if step.notify:
        return f"notify {', '.join(step.notify.to)}"
    if step.approve:
        timeout = f", timeout {format_duration(step.approve.timeout)}" if step.approve.timeout else ""
        return f"approve by {step.approve.by}{timeout}"
    if step.manual:
        return f"manual by {step.manual.by}"
    return f"wait {format_duration(step.wait)}"


def mermaid(runbook: Runbook) -> str:
    """The step graph as a Mermaid flowchart (renders on GitHub)."""
    lines = ["flowchart TD"]
    deps = {**dependencies(runbook, phases=("prevention",)), **dependencies(runbook)}
    for phase in PHASES:
        steps = getattr(runbook.phases, phase)
        if not steps:
            continue
        lines.append(f"  subgraph {phase}")
        for step in steps:
            label = step.label.replace('"', "'")
            extra = f"<br/>marks: {step.marks}" if step.marks else ""
            lines.append(f'    {_node(step.id)}["{label}<br/><small>{describe_step(step)}</small>{extra}"]')
        lines.append("  end")
    for step_id, needs in deps.items():
        step = runbook.step(step_id)
        for need in needs:
            arrow = f"-- {_mermaid_text(step.when)} -->" if step.when else "-->"
            lines.append(f"  {_node(need)} {arrow} {_node(step_id)}")
    return "\n".join(lines) + "\n"


def _node(step_id: str) -> str:
    return "s_" + step_id.replace("-", "_")


def _mermaid_text(text: str) -> str:
    return '"when ' + text.replace('"', "'").replace("{{", "").replace("}}", "").strip() + '"'
