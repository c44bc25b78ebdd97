"""The ``fulfilments`` table: when a run fulfilled an obligation (a deadline clock), by whom, with what.

One row per run and obligation: the first record wins (a resumed run replays its steps, and a
fulfilment recorded by hand is not overwritten by a later one). Each record is audited
(``obligation.fulfilled``) in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from bcm.clock import Clock
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import FulfilmentRecord
from bcm.store.runs import require_run
from bcm.store.schema import fulfilments
from bcm.store.types import record_of, row_values

OBLIGATION_FULFILLED = "obligation.fulfilled"


def add(conn: Connection, record: FulfilmentRecord, *, clock: Clock) -> bool:
    """Record a fulfilment (audited); ``False`` when the run had that obligation fulfilled already.

    Raises:
        RunNotFound: no run has exactly ``record.run_id``.
    """
    require_run(conn, record.run_id)
    key = (fulfilments.c.run_id == record.run_id, fulfilments.c.obligation_id == record.obligation_id)
    if conn.execute(select(fulfilments.c.obligation_id).where(*key)).first():
        return False
    conn.execute(insert(fulfilments).values(**row_values(record)))
    append(
        conn,
        OBLIGATION_FULFILLED,
        {
            "obligation_id": record.obligation_id,
            "at": chain.format_at(record.at),
            "by": record.by,
            "source": record.source,
            **({"evidence": record.evidence} if record.evidence is not None else {}),
        },
        run_id=record.run_id,
        at=clock(),
    )
    return True


def for_run(conn: Connection, run_id: str) -> list[FulfilmentRecord]:
    """A run's fulfilments, earliest first."""
    query = (
        select(fulfilments)
        .where(fulfilments.c.run_id == run_id)
        .order_by(fulfilments.c.at, fulfilments.c.obligation_id)
    )
    return [record_of(FulfilmentRecord, row) for row in conn.execute(query)]
