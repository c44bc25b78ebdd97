"""Where a run stands: its steps, milestones and what it waits on, as one JSON-able document."""

from __future__ import annotations

from typing import Any

from bcm.store import RunRecord, Store


def run_document(store: Store, run: RunRecord) -> dict[str, Any]:
    """The run, its steps (with durations), milestones and the steps waiting for people."""
    steps = store.get_steps(run.id)
    marks = store.get_marks(run.id)
    duration = (run.ended_at - run.started_at).total_seconds() if run.ended_at else None
    waiting = [s.step_id for s in steps if s.status == "waiting"]
    messages = store.list_messages(run_id=run.id)
    return {
        "run": {
            "id": run.id,
            "short_id": run.short_id,
            "runbook": run.runbook_id,
            "title": run.runbook_title,
            "mode": run.mode,
            "status": run.status,
            "severity": run.severity,
            "services": list(run.services),
            "parameters": run.parameters,
            "triggered_by": run.triggered_by,
            "started_at": run.started_at.isoformat(),
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
            "duration_s": duration,
            "flow_run_id": run.flow_run_id,
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
            }
            for s in steps
        ],
        "milestones": [{"milestone": m.milestone, "at": m.at.isoformat(), "source": m.source} for m in marks],
        "waiting_on": waiting,
        "messages": {
            "delivered": sum(1 for m in messages if m.status == "delivered"),
            "pending": [
                {"key": m.key, "kind": m.kind, "attempts": m.attempts, "last_error": m.last_error}
                for m in messages
                if m.status in ("pending", "sending")
            ],
            "failed": [{"key": m.key, "kind": m.kind, "error": m.last_error} for m in messages if m.status == "failed"],
        },
    }
