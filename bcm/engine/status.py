"""Where a run stands: its steps, milestones, who it waits on and whether its runner lives, as one
JSON-able document (``bcm status --json``, the status table, ``/bcm status`` in Slack); for an
exercise run, also the exercise it plays and its injects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bcm.comms.outbox import is_superseded
from bcm.engine.liveness import assess, shown_status
from bcm.errors import BcmError
from bcm.spec import load_one
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.store import ExerciseRunRecord, InjectRecord, RunRecord, StepRecord, Store


def run_document(store: Store, run: RunRecord, *, library_root: Path | None = None) -> dict[str, Any]:
    """The run, its steps (with durations), milestones, and the person steps it waits on.

    ``status`` is ``interrupted`` when the run says running or waiting but its runner is dead
    (``stored_status`` keeps what the store says); ``waiting_on`` names, for each person step,
    the role and the people who may answer and the command to do it.
    """
    steps = store.get_steps(run.id)
    marks = store.get_marks(run.id)
    duration = (run.ended_at - run.started_at).total_seconds() if run.ended_at else None
    messages = store.list_messages(run_id=run.id)
    liveness = assess(run)
    approvals = store.get_approvals(run.id)
    waiting = [s for s in steps if s.status == "waiting"]
    runbook = _runbook(run, library_root) if waiting else None
    played = store.get_exercise_run(run.id) if run.mode == "exercise" else None
    return {
        "run": {
            "id": run.id,
            "short_id": run.short_id,
            "runbook": run.runbook_id,
            "title": run.runbook_title,
            "mode": run.mode,
            "status": shown_status(run, liveness),
            "stored_status": run.status,
            "interrupted": liveness.why if liveness.interrupted else None,
            "severity": run.severity,
            "services": list(run.services),
            "parameters": run.parameters,
            "triggered_by": run.triggered_by,
            "started_at": run.started_at.isoformat(),
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "duration_s": duration,
            "flow_run_id": run.flow_run_id,
            "runner": run.runner,
            "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
            "error": run.error,
        },
        "steps": [
            {
                "id": s.step_id,
                "phase": s.phase,
                "kind": s.kind,
                "status": s.status,
                "attempts": s.attempts,
                "started_at": s.started_at.isoformat() if s.started_at else None,
                "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                "duration_s": s.duration.total_seconds() if s.duration is not None else None,
                "actor": s.actor,
                "reason": s.reason,
                "error": s.error,
                "output": s.output,
                "note": (approvals[s.step_id].note if s.step_id in approvals else None),
            }
            for s in steps
        ],
        "milestones": [{"milestone": m.milestone, "at": m.at.isoformat(), "source": m.source} for m in marks],
        "waiting_on": [_waiting(run, s, runbook, approvals) for s in waiting],
        "exercise": exercise_document(played) if played is not None else None,
        "injects": [inject_document(i) for i in store.get_injects(run.id)] if played is not None else [],
        "messages": {
            # A board edit replaced by a later one before it was sent is superseded, not delivered.
            "delivered": sum(1 for m in messages if m.status == "delivered" and not is_superseded(m)),
            "superseded": sum(1 for m in messages if is_superseded(m)),
            "pending": [
                {"key": m.key, "kind": m.kind, "attempts": m.attempts, "last_error": m.last_error}
                for m in messages
                if m.status in ("pending", "sending")
            ],
            "failed": [{"key": m.key, "kind": m.kind, "error": m.last_error} for m in messages if m.status == "failed"],
        },
    }


def exercise_document(played: ExerciseRunRecord) -> dict[str, Any]:
    """The exercise a run plays: which, on what clock, STARTEX and ENDEX (and what ended it)."""
    return {
        "id": played.exercise_id,
        "title": played.exercise_title,
        "path": played.exercise_path,
        "speed": played.speed,
        "auto_respond": played.auto_respond,
        "startex": played.startex_at.isoformat(),
        "endex": played.endex_at.isoformat() if played.endex_at else None,
        "ended_by": played.ended_by,
    }


def inject_document(inject: InjectRecord) -> dict[str, Any]:
    """One inject of an exercise run, delivered or skipped, as JSON."""
    return {
        "number": inject.number,
        "status": inject.status,
        "due_at": inject.due_at.isoformat(),
        "at": inject.at.isoformat(),
        "delivery": inject.delivery,
        "recipient": inject.recipient,
        "message": inject.message,
        "reason": inject.reason,
    }


def _runbook(run: RunRecord, library_root: Path | None) -> tuple[LoadedRunbook, Catalog] | None:
    """The run's runbook, to name who may answer; None when it cannot be read any more."""
    try:
        return load_one(run.runbook_path, library_root=library_root or Path(run.runbook_path).parent)
    except (BcmError, OSError):
        return None


def _waiting(
    run: RunRecord,
    step: StepRecord,
    runbook: tuple[LoadedRunbook, Catalog] | None,
    approvals: dict[str, Any],
) -> dict[str, Any]:
    role_id: str | None = None
    role_name: str | None = None
    holders: list[str] = []
    if runbook is not None:
        loaded, catalog = runbook
        try:
            role_id = loaded.runbook.step(step.step_id).person_role
        except KeyError:
            role_id = None
        role = catalog.roles.get(role_id) if role_id else None
        if role is not None:
            role_name = role.name
            holders = [p.name for p in [*role.members, *role.alternates]]
    decided = approvals.get(step.step_id)
    return {
        "step": step.step_id,
        "kind": step.kind,
        "since": step.started_at.isoformat() if step.started_at else None,
        "role": role_id,
        "role_name": role_name,
        "holders": holders,
        # Decided while the runner was away: the run takes it when resumed.
        "decided": None if decided is None else {"decision": decided.decision, "by": decided.by},
        "command": f"bcm approve {run.short_id} {step.step_id} --by YOU [--reject] [--note TEXT]",
    }


def board_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The status board's content (see :func:`bcm.comms.messages.board_text`) from a run document."""
    from bcm.comms.messages import format_duration_s
    from bcm.templates import escape_mrkdwn

    run = doc["run"]
    phases: dict[str, list[dict[str, Any]]] = {}
    for step in doc["steps"]:
        note = step["error"] or step["reason"] or (f"by {step['actor']}" if step["actor"] else "")
        phases.setdefault(step["phase"], []).append(
            {
                "id": step["id"],
                "label": "",
                "status": step["status"],
                "took": format_duration_s(step["duration_s"]) if step["duration_s"] is not None else "",
                "note": escape_mrkdwn(note)[:200],
            }
        )
    return {
        "run": {
            "id": run["id"],
            "short_id": run["short_id"],
            "mode": run["mode"],
            "status": run["status"],
            "triggered_by": escape_mrkdwn(run["triggered_by"]),
            "started": run["started_at"][:16].replace("T", " "),
        },
        "runbook": {"id": run["runbook"], "title": run["title"], "severity": run["severity"]},
        "services": run["services"],
        "phases": [{"name": name, "steps": steps} for name, steps in phases.items()],
        "waiting": [w["step"] for w in doc["waiting_on"]],
        "milestones": [{"name": m["milestone"], "at": m["at"][11:16]} for m in doc["milestones"]],
    }
