"""Whole runs written at once (``Store.import_runs``): disruptions recorded afterwards, bulk loads.

Everything is checked and turned into rows first (``prepare``), then written in one transaction
(``write``): all the runs or none. Runs, marks (with their copy on the run row, see migration 4)
and steps go in as multi-row INSERTs; each run gets one audit entry carrying its facts, targets,
milestones and the sha256 of its steps, and the chain is extended in memory and written in
batches (``audit_log.append_many``), so a 10,000-run import reads the chain head once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, insert

from bcm.clock import Clock, as_utc
from bcm.store import audit as chain
from bcm.store.audit_log import ROWS_PER_INSERT, append_many
from bcm.store.milestones import milestones_text
from bcm.store.records import RunImport, StepRecord
from bcm.store.runs import check_mode
from bcm.store.schema import marks, runs, step_runs
from bcm.store.types import optional_utc, sha256_json, to_stored_json
from bcm.vocabulary import RUN_SOURCES


@dataclass
class Batch:
    """The rows of an import, ready to insert, and each run's audit entry as ``(run_id, data)``."""

    runs: list[dict[str, object]] = field(default_factory=list)
    marks: list[dict[str, object]] = field(default_factory=list)
    steps: list[dict[str, object]] = field(default_factory=list)
    entries: list[tuple[str | None, dict[str, object]]] = field(default_factory=list)


def _step_row(run_id: str, step: StepRecord) -> dict[str, object]:
    return {
        "run_id": run_id,
        "step_id": step.step_id,
        "phase": step.phase,
        "kind": step.kind,
        "status": step.status,
        "attempts": step.attempts,
        "started_at": optional_utc(step.started_at),
        "ended_at": optional_utc(step.ended_at),
        "output": to_stored_json(step.output),
        "error": step.error,
        "actor": step.actor,
        "reason": step.reason,
    }


def _add(batch: Batch, item: RunImport) -> None:
    run = item.run
    milestones = {milestone: chain.format_at(at) for milestone, at in item.marks}
    batch.runs.append(
        {
            "id": run.id,
            "runbook_id": run.runbook_id,
            "runbook_title": run.runbook_title,
            "runbook_hash": run.runbook_hash,
            "runbook_path": run.runbook_path,
            "mode": run.mode,
            "parameters": run.parameters,
            "triggered_by": run.triggered_by,
            "services": list(run.services),
            "severity": run.severity,
            "status": run.status,
            "flow_run_id": run.flow_run_id,
            "error": run.error,
            "started_at": as_utc(run.started_at),
            "ended_at": optional_utc(run.ended_at),
            "source": run.source,
            "milestones": milestones_text(milestones),
            **run.targets.to_json(),
        }
    )
    for milestone, at in item.marks:
        batch.marks.append({"run_id": run.id, "milestone": milestone, "at": as_utc(at), "source": run.source})
    step_rows = [_step_row(run.id, step) for step in item.steps]
    batch.steps.extend(step_rows)
    # The steps' digest leaves out the run id, which the entry carries anyway.
    steps_json = [{**row, "run_id": None} for row in step_rows]
    batch.entries.append(
        (
            run.id,
            {
                "runbook_id": run.runbook_id,
                "runbook_title": run.runbook_title,
                "mode": run.mode,
                "source": run.source,
                "triggered_by": run.triggered_by,
                "services": list(run.services),
                "severity": run.severity,
                "status": run.status,
                "started_at": chain.format_at(run.started_at),
                "ended_at": None if run.ended_at is None else chain.format_at(run.ended_at),
                "targets": run.targets.to_json(),
                "marks": milestones,
                "steps_sha256": sha256_json(steps_json) if steps_json else None,
                **(item.audit or {}),
            },
        )
    )


def prepare(items: Sequence[RunImport]) -> Batch:
    """Check every run, then build every row and audit entry (no database needed).

    Raises:
        ValueError: an unknown mode or source, or a naive time.
    """
    for item in items:
        check_mode(item.run.mode)
        if item.run.source not in RUN_SOURCES:
            raise ValueError(f"run source {item.run.source!r} is not one of {', '.join(sorted(RUN_SOURCES))}")
    batch = Batch()
    for item in items:
        _add(batch, item)
    return batch


def write(conn: Connection, batch: Batch, *, audit_kind: str, clock: Clock) -> None:
    """Insert the batch and its audit entries, inside the caller's write transaction."""
    for table, rows in ((runs, batch.runs), (marks, batch.marks), (step_runs, batch.steps)):
        for start in range(0, len(rows), ROWS_PER_INSERT):
            conn.execute(insert(table), rows[start : start + ROWS_PER_INSERT])
    append_many(conn, audit_kind, batch.entries, at=clock())
