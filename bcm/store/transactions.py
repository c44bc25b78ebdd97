"""How the store reads and writes: one transaction per ``Store`` method, opened here and nowhere else.

Every state change appends its audit entry in the same transaction, so the chain can never say
something happened that the tables do not show, nor miss something they do. Write transactions
are serialised (SQLite: ``BEGIN IMMEDIATE``, see ``bcm.store.engine``; PostgreSQL: an exclusive
lock on ``audit`` taken first thing), so two writers never read the same chain head, and always
lock in the same order, so they never deadlock. A runbook engine writes a few rows a second at
most; serialising costs nothing it would notice.

The table modules (``runs``, ``steps``, ``approvals``, ...) take the ``Connection`` opened here and
never begin, commit or lock themselves: a ``Store`` method is one transaction however many of them
it calls, and the locking rules above live in this one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, update
from sqlalchemy.exc import OperationalError

from bcm.errors import StoreUnavailable
from bcm.store.engine import WRITE_OPTION
from bcm.store.schema import runs


def unavailable_reason(exc: OperationalError, engine: Engine) -> str:
    """The driver's first line, with the password scrubbed in case the driver echoed it."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    reason = lines[0]
    password = engine.url.password
    if password:
        reason = reason.replace(str(password), "***")
    return reason


@contextmanager
def unavailable_as_store_error(engine: Engine, url: str) -> Iterator[None]:
    """Turn the driver's "cannot connect" / "read-only" errors into ``StoreUnavailable`` for ``url``.

    Raises:
        StoreUnavailable: the body raised SQLAlchemy's ``OperationalError``.
    """
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(url, unavailable_reason(exc, engine)) from exc


@contextmanager
def read(engine: Engine, url: str) -> Iterator[Connection]:
    """A read transaction: a consistent view of every table, taking no write lock.

    Args:
        engine: the store's engine.
        url: the store's URL with the password hidden, for ``StoreUnavailable``.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    with unavailable_as_store_error(engine, url), engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def write(engine: Engine, url: str, *, audited: bool = True) -> Iterator[Connection]:
    """A serialised write transaction, committed when the body returns and rolled back when it raises.

    Args:
        engine: the store's engine.
        url: the store's URL with the password hidden, for ``StoreUnavailable``.
        audited: ``False`` for writes that append no audit entry (heartbeats), which then need not
            queue behind the audit chain's lock on PostgreSQL.

    Raises:
        StoreUnavailable: the database cannot be reached or refuses writes.
    """
    with unavailable_as_store_error(engine, url), engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if audited and conn.dialect.name == "postgresql":
                # EXCLUSIVE still lets readers (and verify_audit) through; only writers queue.
                conn.exec_driver_sql("LOCK TABLE audit IN EXCLUSIVE MODE")
            yield conn


def check_writable(engine: Engine, url: str) -> None:
    """Take the write lock and write nothing, to learn now whether the database accepts writes.

    Raises:
        StoreUnavailable: the database (or, for SQLite, its file or folder) is read-only, or the
            server refuses writes.
    """
    with write(engine, url, audited=False) as conn:
        # Touches no row, but takes the write lock, which a read-only database refuses.
        conn.execute(update(runs).where(runs.c.id == "").values(status=runs.c.status))
