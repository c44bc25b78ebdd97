"""The ``marks`` table: the timeline milestones a run reached, and their copy on the run row.

``marks`` is the source of truth, one row per run and milestone; the first record of a milestone
wins, because a resumed run replays its steps' marks and the original time is the true one.
Since migration 4 each run row also carries a copy, ``runs.milestones``: milestone to time as
canonical JSON text, written in the same transaction as every mark, so the two never disagree and
``bcm.store.timeline`` reads a year of runs and their timelines in one scan of ``runs`` instead of
a GROUP BY over every mark.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from bcm.clock import Clock
from bcm.errors import RunNotFound
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import MarkRecord
from bcm.store.schema import marks, runs
from bcm.store.types import canonical_json


def milestones_text(milestones: dict[str, str]) -> str:
    """``runs.milestones``: milestone to ``audit.format_at`` time, as canonical JSON (see migration 4)."""
    return canonical_json(milestones)


def add(
    conn: Connection, run_id: str, milestone: str, at: datetime, source: str, *, note: str | None, clock: Clock
) -> bool:
    """Record the mark and its copy on the run row unless the run has it already; audit ``mark.added``.

    Args:
        conn: a connection in a ``transactions.write`` transaction.
        at: when the milestone was reached, in UTC.
        note: kept in the audit entry only.

    Returns:
        ``True`` when recorded, ``False`` when the run already had that milestone.

    Raises:
        RunNotFound: no run has exactly ``run_id``.
    """
    run = conn.execute(select(runs.c.milestones).where(runs.c.id == run_id)).first()
    if run is None:
        raise RunNotFound(run_id)
    exists = conn.execute(
        select(marks.c.milestone).where(marks.c.run_id == run_id, marks.c.milestone == milestone)
    ).first()
    if exists is not None:
        return False
    conn.execute(insert(marks).values(run_id=run_id, milestone=milestone, at=at, source=source))
    milestones = json.loads(run.milestones)
    milestones[milestone] = chain.format_at(at)
    conn.execute(update(runs).where(runs.c.id == run_id).values(milestones=milestones_text(milestones)))
    append(
        conn,
        chain.MARK_ADDED,
        {
            "milestone": milestone,
            "at": chain.format_at(at),
            "source": source,
            # Only when given, so entries written before notes existed hash the same.
            **({"note": note} if note else {}),
        },
        run_id=run_id,
        at=clock(),
    )
    return True


def for_run(conn: Connection, run_id: str) -> list[MarkRecord]:
    """A run's milestones in time order."""
    query = select(marks).where(marks.c.run_id == run_id).order_by(marks.c.at, marks.c.milestone)
    return [
        MarkRecord(run_id=row.run_id, milestone=row.milestone, at=row.at, source=row.source)
        for row in conn.execute(query)
    ]
