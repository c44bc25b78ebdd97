"""The exercise tables: ``exercise_runs`` (which exercise a run played), ``injects`` and ``observations``.

An exercise run is an ordinary run in mode ``exercise`` plus one ``exercise_runs`` row, written in
the same transaction as its STARTEX mark; ENDEX is written with the row's end the same way. Each
inject is recorded once (delivered or skipped), so a resumed exercise never delivers one twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from bcm.clock import Clock
from bcm.store import audit as chain
from bcm.store import milestones
from bcm.store.audit_log import append
from bcm.store.records import ExerciseRunRecord, InjectRecord, ObservationRecord
from bcm.store.runs import require_run
from bcm.store.schema import exercise_runs, injects, observations
from bcm.store.types import record_of, row_values

EXERCISE_STARTED = "exercise.started"
EXERCISE_ENDED = "exercise.ended"
INJECT_RECORDED = "inject.recorded"
OBSERVATION_RECORDED = "observation.recorded"


def start(conn: Connection, record: ExerciseRunRecord, *, clock: Clock) -> bool:
    """Record that the run plays an exercise and mark STARTEX; ``False`` when it was recorded already.

    Raises:
        RunNotFound: no run has exactly ``record.run_id``.
    """
    require_run(conn, record.run_id)
    if conn.execute(select(exercise_runs.c.run_id).where(exercise_runs.c.run_id == record.run_id)).first():
        return False
    conn.execute(insert(exercise_runs).values(**row_values(record)))
    append(
        conn,
        EXERCISE_STARTED,
        {
            "exercise_id": record.exercise_id,
            "exercise_hash": record.exercise_hash,
            "speed": record.speed,
            "auto_respond": record.auto_respond,
            "startex_at": chain.format_at(record.startex_at),
        },
        run_id=record.run_id,
        at=clock(),
    )
    milestones.add(conn, record.run_id, "startex", record.startex_at, "exercise", note=None, clock=clock)
    return True


def end(conn: Connection, run_id: str, at: datetime, ended_by: str, *, clock: Clock) -> bool:
    """Mark ENDEX and record who or what ended the exercise; ``False`` when it had ended already."""
    row = conn.execute(select(exercise_runs.c.endex_at).where(exercise_runs.c.run_id == run_id)).first()
    if row is None or row.endex_at is not None:
        return False
    conn.execute(update(exercise_runs).where(exercise_runs.c.run_id == run_id).values(endex_at=at, ended_by=ended_by))
    append(conn, EXERCISE_ENDED, {"at": chain.format_at(at), "ended_by": ended_by}, run_id=run_id, at=clock())
    milestones.add(conn, run_id, "endex", at, "exercise", note=ended_by, clock=clock)
    return True


def get(conn: Connection, run_id: str) -> ExerciseRunRecord | None:
    """The exercise a run played, or ``None`` for a run that is not an exercise run."""
    row = conn.execute(select(exercise_runs).where(exercise_runs.c.run_id == run_id)).first()
    return None if row is None else record_of(ExerciseRunRecord, row)


def listed(conn: Connection, exercise_id: str | None = None) -> list[ExerciseRunRecord]:
    """Exercise runs, oldest STARTEX first; of one exercise when ``exercise_id`` is given."""
    query = select(exercise_runs).order_by(exercise_runs.c.startex_at)
    if exercise_id is not None:
        query = query.where(exercise_runs.c.exercise_id == exercise_id)
    return [record_of(ExerciseRunRecord, row) for row in conn.execute(query)]


def record_inject(conn: Connection, inject: InjectRecord, *, clock: Clock) -> bool:
    """Record an inject delivered or skipped, once; ``False`` when the run has it already."""
    require_run(conn, inject.run_id)
    key = (injects.c.run_id == inject.run_id, injects.c.number == inject.number)
    if conn.execute(select(injects.c.number).where(*key)).first():
        return False
    conn.execute(insert(injects).values(**row_values(inject)))
    append(
        conn,
        INJECT_RECORDED,
        {
            "number": inject.number,
            "status": inject.status,
            "due_at": chain.format_at(inject.due_at),
            "at": chain.format_at(inject.at),
            "delivery": inject.delivery,
            "recipient": inject.recipient,
            "message": inject.message,
            **({"reason": inject.reason} if inject.reason else {}),
        },
        run_id=inject.run_id,
        at=clock(),
    )
    return True


def injects_for(conn: Connection, run_id: str) -> list[InjectRecord]:
    """A run's injects in the order they were delivered or skipped."""
    query = select(injects).where(injects.c.run_id == run_id).order_by(injects.c.at, injects.c.number)
    return [record_of(InjectRecord, row) for row in conn.execute(query)]


def observe(
    conn: Connection,
    run_id: str,
    *,
    objective_id: str | None,
    kind: str,
    rating: str | None,
    note: str,
    root_cause: str | None,
    by: str,
    role: str,
    at: datetime,
    clock: Clock,
) -> ObservationRecord:
    """Record an evaluator's observation (audited) and return it."""
    require_run(conn, run_id)
    values = {
        "run_id": run_id,
        "objective_id": objective_id,
        "kind": kind,
        "rating": rating,
        "note": note,
        "root_cause": root_cause,
        "by": by,
        "role": role,
        "at": at,
    }
    new_id = conn.execute(insert(observations).values(**values).returning(observations.c.id)).scalar_one()
    append(
        conn,
        OBSERVATION_RECORDED,
        {**{k: v for k, v in values.items() if k not in ("run_id", "at")}, "id": new_id, "at": chain.format_at(at)},
        run_id=run_id,
        at=clock(),
    )
    return ObservationRecord(id=new_id, **values)  # type: ignore[arg-type]


def observations_for(conn: Connection, run_id: str) -> list[ObservationRecord]:
    """A run's observations in the order they were recorded."""
    query = select(observations).where(observations.c.run_id == run_id).order_by(observations.c.id)
    return [record_of(ObservationRecord, row) for row in conn.execute(query)]
