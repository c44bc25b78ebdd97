"""The ``approvals`` table: a person's decision on an ``approve`` step, one per run and step.

The first decision is final: when two people click in Slack at once, the second gets
``AlreadyDecided`` naming who decided what, and the run goes on with the first. Only a timed-out
"decision", which nobody made, can be reopened, so a resumed run can ask again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, select

from bcm.clock import Clock
from bcm.errors import AlreadyDecided
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import ApprovalRecord
from bcm.store.runs import require_run
from bcm.store.schema import approvals


def to_record(row: Row[Any]) -> ApprovalRecord:
    """An approval record from a whole ``approvals`` row."""
    return ApprovalRecord(
        run_id=row.run_id,
        step_id=row.step_id,
        by=row.by,
        decision=row.decision,
        note=row.note,
        waited_s=row.waited_s,
        at=row.at,
    )


def _key(run_id: str, step_id: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return approvals.c.run_id == run_id, approvals.c.step_id == step_id


def record(conn: Connection, approval: ApprovalRecord, *, clock: Clock) -> None:
    """Insert ``approval`` unless the step was decided already; audit ``approval.recorded``.

    Raises:
        RunNotFound: no run has exactly ``approval.run_id``.
        AlreadyDecided: a decision was already recorded for the step.
    """
    run_id, step_id = approval.run_id, approval.step_id
    require_run(conn, run_id)
    existing = conn.execute(select(approvals).where(*_key(run_id, step_id))).first()
    if existing is not None:
        raise AlreadyDecided(run_id, step_id, by=existing.by, decision=existing.decision, at=existing.at)
    conn.execute(
        insert(approvals).values(
            run_id=run_id,
            step_id=step_id,
            by=approval.by,
            decision=approval.decision,
            note=approval.note,
            waited_s=approval.waited_s,
            at=approval.at,
        )
    )
    append(
        conn,
        chain.APPROVAL_RECORDED,
        {
            "step_id": step_id,
            "by": approval.by,
            "decision": approval.decision,
            "note": approval.note,
            "waited_s": approval.waited_s,
            "at": chain.format_at(approval.at),
        },
        run_id=run_id,
        at=clock(),
    )


def reopen(conn: Connection, run_id: str, step_id: str, *, clock: Clock) -> bool:
    """Delete a timed-out approval (audited as ``approval.reopened``); leave any other alone.

    Returns:
        ``True`` when a timed-out approval was deleted.
    """
    row = conn.execute(select(approvals).where(*_key(run_id, step_id))).first()
    if row is None or row.decision != "timed_out":
        return False
    conn.execute(approvals.delete().where(*_key(run_id, step_id)))
    append(
        conn,
        "approval.reopened",
        {"step_id": step_id, "was": "timed_out", "timed_out_at": chain.format_at(row.at)},
        run_id=run_id,
        at=clock(),
    )
    return True


def for_run(conn: Connection, run_id: str) -> dict[str, ApprovalRecord]:
    """Every decision recorded for a run, by step id."""
    return {row.step_id: to_record(row) for row in conn.execute(select(approvals).where(approvals.c.run_id == run_id))}


def get(conn: Connection, run_id: str, step_id: str) -> ApprovalRecord | None:
    """The decision recorded for a step, or ``None``."""
    row = conn.execute(select(approvals).where(*_key(run_id, step_id))).first()
    return None if row is None else to_record(row)
