"""The ``outbox`` table: every stakeholder message is stored before it is sent.

None is lost when Slack is down (the row waits as ``pending``), none is sent twice when a step is
retried or a run resumed (the key is unique), and two processes flushing at once never both send
one (a delivery first claims the row as ``sending``; a claim older than ``stale_after_s`` belonged
to a process that died and is taken over). Queuing and claiming are not audited; a delivery and a
permanent failure are.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from bcm.clock import Clock
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import OutboxRecord
from bcm.store.schema import outbox
from bcm.store.types import optional_utc, to_stored_json, truncate_text

UNDELIVERED = "undelivered"
"""The ``status`` filter of ``search`` that selects pending and claimed (being sent) rows together."""


def to_record(row: Row[Any]) -> OutboxRecord:
    """An outbox record from a whole ``outbox`` row."""
    return OutboxRecord(
        id=row.id,
        key=row.key,
        run_id=row.run_id,
        kind=row.kind,
        payload=row.payload if isinstance(row.payload, dict) else json.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        result=(row.result if isinstance(row.result, dict) or row.result is None else json.loads(row.result)),
        created_at=row.created_at,
        delivered_at=optional_utc(row.delivered_at),
    )


def insert_message(
    conn: Connection, key: str, *, kind: str, payload: dict[str, Any], run_id: str | None, created_at: datetime
) -> None:
    """Insert a pending message.

    Raises:
        IntegrityError: a message with ``key`` is stored already.
    """
    conn.execute(
        insert(outbox).values(
            key=key,
            run_id=run_id,
            kind=kind,
            payload=to_stored_json(payload),
            status="pending",
            attempts=0,
            created_at=created_at,
        )
    )


def get(conn: Connection, key: str) -> OutboxRecord | None:
    """The message with ``key``, if any."""
    row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
    return None if row is None else to_record(row)


def search(conn: Connection, *, status: str | None, run_id: str | None, limit: int | None) -> list[OutboxRecord]:
    """Messages in the order they were queued (the order they must be delivered in)."""
    query = select(outbox).order_by(outbox.c.id)
    if status == UNDELIVERED:
        query = query.where(outbox.c.status.in_(("pending", "sending")))
    elif status is not None:
        query = query.where(outbox.c.status == status)
    if run_id is not None:
        query = query.where(outbox.c.run_id == run_id)
    if limit is not None:
        query = query.limit(limit)
    return [to_record(row) for row in conn.execute(query)]


def claim(conn: Connection, key: str, *, at: datetime, stale_after_s: float) -> bool:
    """Mark the message ``sending`` if it is pending or its claim is stale.

    Returns:
        ``True`` when this call claimed it.
    """
    stale = at - timedelta(seconds=stale_after_s)
    result = conn.execute(
        update(outbox)
        .where(outbox.c.key == key)
        .where((outbox.c.status == "pending") | ((outbox.c.status == "sending") & (outbox.c.claimed_at < stale)))
        .values(status="sending", claimed_at=at)
    )
    return bool(result.rowcount == 1)


def mark_delivered(conn: Connection, key: str, *, result: dict[str, Any], at: datetime, clock: Clock) -> None:
    """Record the delivery and what the service answered; audit ``message.sent`` (once)."""
    row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
    if row is None or row.status == "delivered":
        return
    conn.execute(
        update(outbox)
        .where(outbox.c.key == key)
        .values(status="delivered", attempts=row.attempts + 1, result=to_stored_json(result), delivered_at=at)
    )
    append(
        conn,
        chain.MESSAGE_SENT,
        {"key": key, "kind": row.kind, "result": result, "at": chain.format_at(at)},
        run_id=row.run_id,
        at=clock(),
    )


def mark_attempt(conn: Connection, key: str, *, error: str, permanent: bool, clock: Clock) -> None:
    """Record a failed attempt and release the claim; a permanent failure is final and audited."""
    row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
    if row is None or row.status not in ("pending", "sending"):
        return
    conn.execute(
        update(outbox)
        .where(outbox.c.key == key)
        .values(
            claimed_at=None,
            status="failed" if permanent else "pending",
            attempts=row.attempts + 1,
            last_error=truncate_text(error),
        )
    )
    if permanent:
        append(
            conn,
            chain.MESSAGE_FAILED,
            {"key": key, "kind": row.kind, "error": truncate_text(error)},
            run_id=row.run_id,
            at=clock(),
        )
