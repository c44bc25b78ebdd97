"""The ``corrective_actions`` table: the improvement plan, from exercises and real disruptions alike.

Every change is audited with what changed (``action.created``, ``action.updated``), so the plan's
history (who moved an action to done, when its due date slipped) is evidence in its own right.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bcm.clock import Clock
from bcm.errors import ActionNotFound
from bcm.store.audit_log import append
from bcm.store.records import CorrectiveActionRecord
from bcm.store.runs import require_run
from bcm.store.schema import corrective_actions
from bcm.store.types import record_of

ACTION_CREATED = "action.created"
ACTION_UPDATED = "action.updated"

#: The fields ``update`` may change.
CHANGEABLE = ("finding", "action", "owner", "element", "status", "start_on", "due_on", "evidence", "root_cause")


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def add(conn: Connection, values: dict[str, Any], *, by: str, clock: Clock) -> CorrectiveActionRecord:
    """Insert a corrective action (``values``: the table's columns but id and times); audit it with who."""
    if values.get("run_id") is not None:
        require_run(conn, values["run_id"])
    at = clock()
    row = {**values, "created_at": at, "updated_at": at, "closed_at": None}
    new_id = conn.execute(insert(corrective_actions).values(**row).returning(corrective_actions.c.id)).scalar_one()
    append(
        conn,
        ACTION_CREATED,
        {"id": new_id, "by": by, **{k: _json(v) for k, v in values.items()}},
        run_id=values.get("run_id"),
        at=at,
    )
    return get(conn, new_id)


def change(
    conn: Connection, action_id: int, changes: dict[str, Any], *, by: str, note: str | None, clock: Clock
) -> CorrectiveActionRecord:
    """Apply ``changes`` (only fields in ``CHANGEABLE``); audit the old and new values, who, and why (``note``).

    Moving to done or verified sets ``closed_at``; moving back to open or in progress clears it.

    Raises:
        ActionNotFound: no action has ``action_id``.
    """
    before = get(conn, action_id)
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    changed = {k: v for k, v in changes.items() if getattr(before, k) != v}
    if not changed:
        return before
    at = clock()
    values: dict[str, Any] = {**changed, "updated_at": at}
    if "status" in changed:
        values["closed_at"] = at if changed["status"] in ("done", "verified") else None
    conn.execute(update(corrective_actions).where(corrective_actions.c.id == action_id).values(**values))
    append(
        conn,
        ACTION_UPDATED,
        {
            "id": action_id,
            "by": by,
            "changes": {k: {"from": _json(getattr(before, k)), "to": _json(v)} for k, v in changed.items()},
            **({"note": note} if note else {}),
        },
        run_id=before.run_id,
        at=at,
    )
    return get(conn, action_id)


def get(conn: Connection, action_id: int) -> CorrectiveActionRecord:
    """The action numbered ``action_id``.

    Raises:
        ActionNotFound: there is none.
    """
    row = conn.execute(select(corrective_actions).where(corrective_actions.c.id == action_id)).first()
    if row is None:
        raise ActionNotFound(action_id)
    return record_of(CorrectiveActionRecord, row)


def listed(
    conn: Connection, *, statuses: tuple[str, ...] | None = None, owner: str | None = None, run_id: str | None = None
) -> list[CorrectiveActionRecord]:
    """Actions by due date (then number), filtered by status, owner role and run."""
    query = select(corrective_actions).order_by(corrective_actions.c.due_on, corrective_actions.c.id)
    if statuses is not None:
        query = query.where(corrective_actions.c.status.in_(statuses))
    if owner is not None:
        query = query.where(corrective_actions.c.owner == owner)
    if run_id is not None:
        query = query.where(corrective_actions.c.run_id == run_id)
    return [record_of(CorrectiveActionRecord, row) for row in conn.execute(query)]
