"""The ``audit`` table: entries appended inside the change they record, the chain verified and exported.

How an entry is hashed and how a chain is checked is ``bcm.store.audit``; this module reads and
writes the rows. Appending reads the chain head and inserts the entry after it, so it only runs
inside a serialised write transaction (``bcm.store.transactions.write``), the same transaction as
the change it records: two writers reading the same head would fork the chain.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, insert, select

from bcm.store import audit as chain
from bcm.store.records import AuditRecord, AuditVerification
from bcm.store.schema import audit
from bcm.store.types import canonical_json

ROWS_PER_INSERT = 5_000
"""Rows per multi-row INSERT in bulk writes: few round trips, bounded statement size."""

_COLUMNS = (
    audit.c.seq,
    audit.c.at,
    audit.c.kind,
    audit.c.run_id,
    audit.c.data,
    audit.c.prev_hash,
    audit.c.hash,
)


def _head(conn: Connection) -> tuple[int, str]:
    """The last entry's ``seq`` and hash; ``(0, GENESIS_HASH)`` for an empty chain."""
    head = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).first()
    return (0, chain.GENESIS_HASH) if head is None else (head.seq, head.hash)


def append(conn: Connection, kind: str, data: dict[str, object], *, run_id: str | None, at: datetime) -> AuditRecord:
    """Append one entry to the chain, inside the caller's write transaction.

    Args:
        conn: a connection in a ``transactions.write`` transaction.
        kind: what happened, dotted like ``run.created``.
        data: JSON-able facts; datetimes are written as ISO 8601 text.
        run_id: the run it concerns, if any.
        at: when it was recorded (the store's clock, read inside the transaction).

    Returns:
        The entry as stored.
    """
    last_seq, prev_hash = _head(conn)
    seq = last_seq + 1
    data_text = canonical_json(data)
    # Hash what verify will read back: the data as parsed from its stored text.
    stored_data = json.loads(data_text)
    hash_ = chain.entry_hash(prev_hash, seq=seq, at=at, kind=kind, run_id=run_id, data=stored_data)
    conn.execute(
        insert(audit).values(seq=seq, at=at, kind=kind, run_id=run_id, data=data_text, prev_hash=prev_hash, hash=hash_)
    )
    return AuditRecord(seq=seq, at=at, kind=kind, run_id=run_id, data=stored_data, prev_hash=prev_hash, hash=hash_)


def append_many(
    conn: Connection, kind: str, entries: Sequence[tuple[str | None, dict[str, object]]], *, at: datetime
) -> None:
    """Extend the chain by many entries of one ``kind`` with one read of its head.

    Args:
        conn: a connection in a ``transactions.write`` transaction.
        kind: what happened, the same for every entry.
        entries: ``(run_id, data)`` pairs, in the order they join the chain.
        at: when they were recorded.
    """
    seq, prev_hash = _head(conn)
    rows: list[dict[str, object]] = []
    for run_id, data in entries:
        seq += 1
        data_text = canonical_json(data)
        hash_ = chain.entry_hash(prev_hash, seq=seq, at=at, kind=kind, run_id=run_id, data=json.loads(data_text))
        rows.append(
            {
                "seq": seq,
                "at": at,
                "kind": kind,
                "run_id": run_id,
                "data": data_text,
                "prev_hash": prev_hash,
                "hash": hash_,
            }
        )
        prev_hash = hash_
        if len(rows) >= ROWS_PER_INSERT:
            conn.execute(insert(audit), rows)
            rows = []
    if rows:
        conn.execute(insert(audit), rows)


def verify(conn: Connection) -> AuditVerification:
    """Recompute the whole chain and name the first entry that was changed or removed."""
    rows = conn.execute(select(*_COLUMNS).order_by(audit.c.seq))
    return chain.verify_chain(tuple(row) for row in rows)


def export(conn: Connection, *, run_id: str | None = None) -> list[dict[str, object]]:
    """Entries as JSON-able dicts with their hashes, in chain order; only ``run_id``'s when given."""
    query = select(*_COLUMNS).order_by(audit.c.seq)
    if run_id is not None:
        query = query.where(audit.c.run_id == run_id)
    return [chain.to_record(tuple(row)).to_json() for row in conn.execute(query)]
