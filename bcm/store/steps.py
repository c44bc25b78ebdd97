"""The ``step_runs`` table: each step's state within a run, one row per step, updated in place.

A step is written many times (started, output, finished, and again when a resumed run re-runs
it); only reaching a finished status is audited, once per status reached, with the sha256 of the
output rather than the output itself. Functions here take a ``Connection`` inside a transaction
from ``bcm.store.transactions``; ``changes`` checks its input before any transaction is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, select, update

from bcm.clock import Clock
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import StepRecord
from bcm.store.runs import require_run
from bcm.store.schema import step_runs
from bcm.store.types import optional_utc, sha256_json, to_stored_json
from bcm.vocabulary import FINISHED_STEP_STATUSES

#: Step fields a new attempt starts without (``upsert_step(..., fresh=True)``).
_ATTEMPT_FIELDS = ("ended_at", "output", "error", "actor", "reason", "process")


def to_record(row: Row[Any]) -> StepRecord:
    """A step record from a whole ``step_runs`` row."""
    return StepRecord(
        run_id=row.run_id,
        step_id=row.step_id,
        phase=row.phase,
        kind=row.kind,
        status=row.status,
        attempts=row.attempts,
        started_at=row.started_at,
        ended_at=row.ended_at,
        output=row.output,
        error=row.error,
        actor=row.actor,
        reason=row.reason,
        process=row.process,
    )


def changes(
    *,
    phase: str,
    kind: str,
    status: str,
    attempts: int | None,
    started_at: datetime | None,
    ended_at: datetime | None,
    output: object,
    error: str | None,
    actor: str | None,
    reason: str | None,
    process: str | None,
    fresh: bool,
) -> dict[str, object]:
    """The column values ``Store.upsert_step``'s arguments set (``None``: left as stored).

    Raises:
        ValueError: a naive time, or an output that is not JSON-able (e.g. NaN).
    """
    values: dict[str, object] = {"phase": phase, "kind": kind, "status": status}
    if fresh:
        values.update(dict.fromkeys(_ATTEMPT_FIELDS))
    optional: dict[str, object] = {
        "attempts": attempts,
        "started_at": optional_utc(started_at),
        "ended_at": optional_utc(ended_at),
        "output": to_stored_json(output),
        "error": error,
        "actor": actor,
        "reason": reason,
        "process": process,
    }
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


def _key(run_id: str, step_id: str) -> ColumnElement[bool]:
    return (step_runs.c.run_id == run_id) & (step_runs.c.step_id == step_id)


def upsert(conn: Connection, run_id: str, step_id: str, values: dict[str, object], *, clock: Clock) -> None:
    """Insert the step with ``values`` made by ``changes``, or update it; audit a newly reached finish.

    Raises:
        RunNotFound: no run has exactly ``run_id``.
    """
    key = _key(run_id, step_id)
    require_run(conn, run_id)
    before = conn.execute(select(step_runs).where(key)).first()
    if before is None:
        conn.execute(insert(step_runs).values(run_id=run_id, step_id=step_id, **{"attempts": 0, **values}))
    else:
        conn.execute(update(step_runs).where(key).values(**values))
    status = values["status"]
    if status in FINISHED_STEP_STATUSES and (before is None or before.status != status):
        after = conn.execute(select(step_runs).where(key)).one()
        append(
            conn,
            chain.STEP_FINISHED,
            {
                "step_id": step_id,
                "phase": after.phase,
                "kind": after.kind,
                "status": after.status,
                "attempts": after.attempts,
                "started_at": None if after.started_at is None else chain.format_at(after.started_at),
                "ended_at": None if after.ended_at is None else chain.format_at(after.ended_at),
                "output_sha256": sha256_json(after.output),
                "error": after.error,
                "actor": after.actor,
                "reason": after.reason,
            },
            run_id=run_id,
            at=clock(),
        )


def for_run(conn: Connection, run_id: str) -> list[StepRecord]:
    """A run's steps in the order they started; steps not started yet come last."""
    query = (
        select(step_runs)
        .where(step_runs.c.run_id == run_id)
        .order_by(step_runs.c.started_at.is_(None), step_runs.c.started_at, step_runs.c.step_id)
    )
    return [to_record(row) for row in conn.execute(query)]


def get(conn: Connection, run_id: str, step_id: str) -> StepRecord | None:
    """One step's state, or ``None`` when it has no record yet."""
    row = conn.execute(select(step_runs).where(_key(run_id, step_id))).first()
    return None if row is None else to_record(row)
