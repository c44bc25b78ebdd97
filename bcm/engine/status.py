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
        "waiting": doc["waiting_on"],
        "milestones": [{"name": m["milestone"], "at": m["at"][11:16]} for m in doc["milestones"]],
    }
