"""What people record during a run: decisions on approve and manual steps, milestones by hand.

Every refusal is explained. The run picks a decision up from the store within a fraction of a second
(``bcm.engine.runner``); a run whose runner died picks it up, with its true time, when resumed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from bcm import clock
from bcm.clock import Clock, as_utc
from bcm.errors import AlreadyDecided, ApprovalRefused, MarkRefused
from bcm.spec import load_one
from bcm.spec.models import Step
from bcm.store import ApprovalRecord, MarkRecord, RunRecord, Store
from bcm.vocabulary import EXERCISE_MILESTONES, MILESTONE_ORDER, MILESTONES


def decide(
    store: Store,
    run_ref: str,
    step_id: str,
    *,
    who: str,
    approve: bool,
    note: str | None,
    library_root: Path,
    now: Clock = clock.now,
) -> tuple[RunRecord, Step, ApprovalRecord]:
    """Record ``who``'s decision on ``step_id`` of run ``run_ref``.

    Raises:
        ApprovalRefused: when ``who`` does not hold the step's role, when the run is not waiting
            on that step, or when it was already decided.
    """
    run = store.get_run(run_ref)
    loaded, catalog = load_one(run.runbook_path, library_root=library_root)
    try:
        step = loaded.runbook.step(step_id)
    except KeyError:
        people_steps = [s.id for _, s in loaded.runbook.steps() if s.person_role]
        raise ApprovalRefused(
            f"runbook {loaded.runbook.id} has no step '{step_id}' (steps that wait for people: "
            f"{', '.join(people_steps) or 'none'})"
        ) from None
    role_id = step.person_role
    if role_id is None:
        raise ApprovalRefused(f"step '{step_id}' is a {step.kind} step: only approve and manual steps take decisions")
    role = catalog.roles[role_id]
    person = role.holder(who)
    if person is None:
        holders = ", ".join(p.name for p in [*role.members, *role.alternates])
        raise ApprovalRefused(
            f"{who} does not hold the role {role_id} ({role.name}) that step '{step_id}' needs; holders: {holders}"
        )
    existing = store.get_approval(run.id, step_id)
    if existing is not None:
        raise ApprovalRefused(_already(existing))
    record = store.get_step(run.id, step_id)
    if record is None or record.status != "waiting":
        status = record.status if record else "not started"
        raise ApprovalRefused(f"run {run.short_id} is not waiting on step '{step_id}' (its status: {status})")
    decision = ("approved" if approve else "rejected") if step.approve else ("done" if approve else "rejected")
    at = now()
    waited = (at - record.started_at).total_seconds() if record.started_at else 0.0
    try:
        approval = store.record_approval(
            run.id, step_id, by=person.name, decision=decision, note=note, waited_s=waited, at=at
        )
    except AlreadyDecided:
        found = store.get_approval(run.id, step_id)
        raise ApprovalRefused(_already(found) if found else f"step '{step_id}' was decided meanwhile") from None
    return run, step, approval


#: Roles that may record a milestone by hand (with the runbook's owner role), when the catalog has them.
MARKING_ROLES = ("incident_commander", "deputy", "scribe")


def record_mark(
    store: Store,
    run_ref: str,
    milestone: str,
    *,
    who: str,
    at: datetime | None,
    note: str | None,
    library_root: Path,
    now: Clock = clock.now,
) -> tuple[RunRecord, MarkRecord]:
    """Record by hand that run ``run_ref`` reached ``milestone`` at ``at`` (default: now); audited.

    Only the incident commander, deputy and scribe (where the catalog has those roles) and the
    runbook's owner role may.

    Raises:
        MarkRefused: see the class.
    """
    run = store.get_run(run_ref)
    if milestone not in MILESTONES:
        raise MarkRefused(f"unknown milestone '{milestone}' (known: {', '.join(MILESTONES)})")
    loaded, catalog = load_one(run.runbook_path, library_root=library_root)
    roles = [r for r in (*MARKING_ROLES, loaded.runbook.owner) if r in catalog.roles]
    person = next((p for r in roles if (p := catalog.roles[r].holder(who)) is not None), None)
    if person is None:
        raise MarkRefused(
            f"{who} holds none of the roles that may record milestones on run {run.short_id}: {', '.join(roles)}"
        )
    current = now()
    when = current if at is None else as_utc(at)
    if when > current + _CLOCK_SKEW:
        raise MarkRefused(f"--at {when.isoformat()} is in the future: give the time the milestone was reached")
    if milestone in EXERCISE_MILESTONES and run.mode != "exercise":
        raise MarkRefused(f"{milestone} is an exercise milestone; run {run.short_id} is a {run.mode} run")
    existing = {m.milestone: m for m in store.get_marks(run.id)}
    if milestone in existing:
        found = existing[milestone]
        raise MarkRefused(
            f"run {run.short_id} already has {milestone} at {found.at:%Y-%m-%d %H:%M:%S} UTC (from {found.source}); "
            "the first record of a milestone stands"
        )
    _check_order(milestone, when, existing)
    source = f"manual:{person.name}"
    store.add_mark(run.id, milestone, when, source, note=note)
    return run, MarkRecord(run_id=run.id, milestone=milestone, at=when, source=source)


_CLOCK_SKEW = timedelta(minutes=1)


def _check_order(milestone: str, when: datetime, existing: dict[str, MarkRecord]) -> None:
    """Refuse a time that puts the timeline out of order (detected before impact_started, ...)."""
    for earlier, later in MILESTONE_ORDER:
        if milestone == later and earlier in existing and when < existing[earlier].at:
            other, relation = earlier, "before"
        elif milestone == earlier and later in existing and when > existing[later].at:
            other, relation = later, "after"
        else:
            continue
        found = existing[other]
        raise MarkRefused(
            f"{milestone} at {when:%Y-%m-%d %H:%M:%S} UTC would be {relation} {other} "
            f"({found.at:%Y-%m-%d %H:%M:%S} UTC, from {found.source}): {earlier} comes before {later}"
        )


def _already(existing: ApprovalRecord) -> str:
    if existing.decision == "timed_out":
        return f"step '{existing.step_id}' timed out at {existing.at:%Y-%m-%d %H:%M:%S} UTC with no decision"
    when = f"{existing.at:%Y-%m-%d %H:%M:%S} UTC"
    return f"step '{existing.step_id}' was already {existing.decision} by {existing.by} at {when}"
