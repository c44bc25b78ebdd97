"""Recording a person's decision on an approve or manual step, with every refusal explained."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bcm import clock
from bcm.clock import Clock
from bcm.spec import InputError, load_one
from bcm.spec.models import Step
from bcm.store import AlreadyDecided, ApprovalRecord, RunRecord, Store


class ApprovalRefused(InputError):
    """The decision cannot be taken: wrong person, not waiting, already decided."""


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


def step_moved_on(database_url: str, run_id: str, step_id: str) -> Callable[[], bool]:
    """A check that the run is no longer waiting on ``step_id``: it took the decision (possibly
    from the store, before it paused), so delivering it to the paused flow run is not needed."""

    def moved_on() -> bool:
        with Store.open(database_url) as store:
            found = store.get_step(run_id, step_id)
        return found is not None and found.status != "waiting"

    return moved_on


def _already(existing: ApprovalRecord) -> str:
    if existing.decision == "timed_out":
        return f"step '{existing.step_id}' timed out at {existing.at:%Y-%m-%d %H:%M:%S} UTC with no decision"
    when = f"{existing.at:%Y-%m-%d %H:%M:%S} UTC"
    return f"step '{existing.step_id}' was already {existing.decision} by {existing.by} at {when}"
