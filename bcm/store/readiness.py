"""The ``checks`` table: results of readiness (prevention) steps, run on a schedule or by hand.

A check belongs to a runbook and may belong to a run. Its output is cut to 4000 characters and
only the output's sha256 goes into the audit entry: the chain proves which result was recorded
without carrying every probe's text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from bcm.clock import Clock
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import CheckRecord
from bcm.store.runs import require_run
from bcm.store.schema import checks
from bcm.store.types import sha256_json, truncate_text


def record(
    conn: Connection,
    *,
    runbook_id: str,
    step_id: str,
    ok: bool,
    output: str,
    at: datetime,
    run_id: str | None,
    clock: Clock,
) -> None:
    """Insert one result, its output cut to 4000 characters; audit ``check.recorded``.

    Raises:
        RunNotFound: ``run_id`` is given and no run has exactly that id.
    """
    stored_output = truncate_text(output)
    if run_id is not None:
        require_run(conn, run_id)
    conn.execute(
        insert(checks).values(runbook_id=runbook_id, step_id=step_id, ok=ok, output=stored_output, at=at, run_id=run_id)
    )
    append(
        conn,
        chain.CHECK_RECORDED,
        {
            "runbook_id": runbook_id,
            "step_id": step_id,
            "ok": ok,
            "output_sha256": sha256_json(stored_output),
            "at": chain.format_at(at),
        },
        run_id=run_id,
        at=clock(),
    )


def search(conn: Connection, *, runbook_id: str | None) -> list[CheckRecord]:
    """Results, newest first; only ``runbook_id``'s when given."""
    query = select(checks).order_by(checks.c.at.desc(), checks.c.id.desc())
    if runbook_id is not None:
        query = query.where(checks.c.runbook_id == runbook_id)
    return [
        CheckRecord(
            id=row.id,
            runbook_id=row.runbook_id,
            step_id=row.step_id,
            ok=bool(row.ok),
            output=row.output,
            at=row.at,
            run_id=row.run_id,
        )
        for row in conn.execute(query)
    ]
