"""What people see of a runbook: effective targets, review status, the step graph as text/Mermaid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from bcm.spec.catalog import Catalog
from bcm.spec.graph import dependencies
from bcm.spec.models import Parameter, Runbook, RunbookObligation, Step
from bcm.spec.obligations import Obligation
from bcm.templates import when_expression
from bcm.vocabulary import INCIDENT_PHASES, PHASES


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


@dataclass(frozen=True)
class TargetSource:
    """One effective target and where its value comes from.

    Attributes:
        name: ``RTO``, ``RPO`` or ``MTPD``.
        value: the effective value; None when neither the runbook nor a service sets it.
        origin: ``runbook`` (its ``targets``), ``bia`` (the tightest of its services'), or None.
        services: for ``bia``, the services whose BIA has that value (several when they tie).
    """

    name: str
    value: timedelta | None
    origin: Literal["runbook", "bia"] | None
    services: tuple[str, ...] = ()

    def describe(self) -> str:
        """Where the value comes from, for people: ``the runbook``, ``the BIA of voice-core``."""
        if self.origin == "runbook":
            return "the runbook"
        if self.origin == "bia":
            return "the BIA of " + ", ".join(self.services)
        return "not set: no runbook target and no service with a BIA"


def target_sources(runbook: Runbook, catalog: Catalog) -> tuple[TargetSource, ...]:
    """RTO, RPO and MTPD as :func:`effective_targets` finds them, each with where it comes from.

    A runbook may set RTO and RPO (tighter than its services' BIA, which validation checks); MTPD
    always comes from the BIA.
    """
    found = effective_targets(runbook, catalog)
    services = [catalog.services[s] for s in runbook.services if s in catalog.services]
    sources = []
    for name, value, own in (
        ("rto", found.rto, runbook.targets.rto),
        ("rpo", found.rpo, runbook.targets.rpo),
        ("mtpd", found.mtpd, None),
    ):
        if value is None:
            sources.append(TargetSource(name.upper(), None, None))
        elif own is not None:
            sources.append(TargetSource(name.upper(), value, "runbook"))
        else:
            tightest = tuple(s.id for s in services if getattr(s, name) == value)
            sources.append(TargetSource(name.upper(), value, "bia", tightest))
    return tuple(sources)


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


@dataclass(frozen=True)
class ObligationSummary:
    """One of a runbook's obligations as people read it (``bcm show``).

    Attributes:
        id: the catalog id.
        name: the catalog's name for it.
        clock: how long it runs: the runbook's own period for an adjustable one, the catalog's
            otherwise, with the second bound (``4 hours, at most 24 hours after aware``).
        starts: what starts it: a milestone, or ``ID fulfilled`` for a chained clock.
        fulfilled_by: the steps that fulfil it, or ``milestone NAME``; empty when neither (a
            person records it by hand).
        when: the condition on params and step outputs (without its braces), None when it always applies.
    """

    id: str
    name: str
    clock: str
    starts: str
    fulfilled_by: tuple[str, ...]
    when: str | None


def obligation_summaries(runbook: Runbook, catalog: Catalog) -> tuple[ObligationSummary, ...]:
    """The runbook's obligations, in the order listed, with what the catalog says of each."""
    return tuple(
        _summarise(entry, catalog.obligations[entry.obligation], runbook)
        for entry in runbook.obligations
        if entry.obligation in catalog.obligations
    )


def _summarise(entry: RunbookObligation, obligation: Obligation, runbook: Runbook) -> ObligationSummary:
    clock = str(obligation.period)
    if entry.period is not None:
        default = f"; catalog: {obligation.period}" if entry.period != obligation.period else ""
        clock = f"{entry.period} (the runbook's{default})"
    if obligation.not_later_than is not None:
        bound = obligation.not_later_than
        clock += f", at most {bound.period} after {bound.starts}"
    if obligation.fulfilled_by.milestone is not None:
        fulfilled_by: tuple[str, ...] = (f"milestone {obligation.fulfilled_by.milestone}",)
    else:
        fulfilled_by = tuple(runbook.fulfilled_by(obligation.id))
    return ObligationSummary(
        id=obligation.id,
        name=obligation.name,
        clock=clock,
        starts=str(obligation.starts),
        fulfilled_by=fulfilled_by,
        when=when_expression(entry.when).strip() if entry.when else None,
    )


def describe_step(step: Step) -> str:
    """One line saying what a step does (its kind's ``describe``, in :mod:`bcm.kinds`)."""
    return step.kind_def.describe(step)


def describe_parameter_type(parameter: Parameter) -> str:
    """The type of a parameter for people: ``integer``, ``enum (lon-dc1, man-dc2)``."""
    if parameter.type == "enum" and parameter.values:
        return f"enum ({', '.join(parameter.values)})"
    return parameter.type


def drawn_dependencies(runbook: Runbook) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies less those another of them implies: the arrows of a drawing.

    The plan (:func:`bcm.spec.graph.dependencies`) makes every recovery step wait for every
    response step, and keeps ``needs`` as written. Drawn as it is, that is an arrow from each
    response step to each recovery step. This keeps the same order with one arrow per dependency
    that no path through other steps already gives (the transitive reduction): a recovery step
    is drawn after the response steps nothing else waits for, and after the step before it.
    Prevention steps form a graph of their own, as in the plan.
    """
    drawn: dict[str, tuple[str, ...]] = {}
    for phases in (("prevention",), INCIDENT_PHASES):
        deps = dependencies(runbook, phases=phases)
        before = {step_id: _ancestors(step_id, deps) for step_id in deps}
        for step_id, needs in deps.items():
            known = [n for n in needs if n in deps]
            drawn[step_id] = tuple(n for n in known if not any(n in before[m] for m in known if m != n))
    return drawn


def _ancestors(step_id: str, deps: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """Every step ``step_id`` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [n for n in deps[step_id] if n in deps]
    while todo:
        need = todo.pop()
        if need in seen:
            continue
        seen.add(need)
        todo += [n for n in deps[need] if n in deps]
    return frozenset(seen)


def mermaid(runbook: Runbook) -> str:
    """The step graph as a Mermaid flowchart (renders on GitHub).

    Phases are subgraphs; an arrow ``a --> b`` means b waits for a (see
    :func:`drawn_dependencies`). A step's ``when`` and ``marks`` are in its box, so a condition
    shows even on a step nothing comes before.
    """
    lines = ["flowchart TD"]
    for phase in PHASES:
        steps = getattr(runbook.phases, phase)
        if not steps:
            continue
        lines.append(f"  subgraph {phase}")
        for step in steps:
            label = f"{_mermaid_escape(step.label)}<br/><small>{_mermaid_escape(describe_step(step))}</small>"
            if step.when:
                label += "<br/>when: " + _mermaid_escape(when_expression(step.when))
            if step.marks:
                label += f"<br/>marks: {step.marks}"
            if step.fulfils:
                label += f"<br/>fulfils: {', '.join(step.fulfils)}"
            lines.append(f'    {_node(step.id)}["{label}"]')
        lines.append("  end")
    for step_id, needs in drawn_dependencies(runbook).items():
        lines += [f"  {_node(need)} --> {_node(step_id)}" for need in needs]
    return "\n".join(lines) + "\n"


def _node(step_id: str) -> str:
    return "s_" + step_id.replace("-", "_")


def _mermaid_escape(text: str) -> str:
    """Text shown as written in a quoted Mermaid label (Mermaid's ``#code;`` entities, line breaks)."""
    text = text.replace("#", "#35;")  # first: the entities below start with '#'
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;")):
        text = text.replace(char, code)
    return text.strip().replace("\n", "<br/>")
