"""Engines for the two supported backends: SQLite (the default, one machine) and PostgreSQL (a team).

SQLite connections get WAL (readers never wait for the writer), a 30 s busy timeout (writers queue
instead of failing at once with "database is locked") and foreign keys (off by default in SQLite).
Write transactions start with ``BEGIN IMMEDIATE`` so that the write lock is taken before the first
read: two writers can then never both read the same audit head and fork the chain, and never
deadlock upgrading a read lock. This is the pysqlite recipe from the SQLAlchemy documentation
("Serializable isolation / Savepoints / Transactional DDL"): the driver's own transaction handling
is switched off and the ``begin`` event issues the ``BEGIN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bcm.errors import StoreUnavailable

WRITE_OPTION = "bcm_write"
"""Execution option marking a connection whose transactions write (SQLite: ``BEGIN IMMEDIATE``)."""

SQLITE_BUSY_TIMEOUT_MS = 30_000


def safe_url(url: str | URL) -> str:
    """Return ``url`` fit for a message or a log: any password replaced by ``***``.

    A string that is not a URL at all is not echoed, since it may be a password pasted by mistake.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<not a database URL>"
    return parsed.render_as_string(hide_password=True)


def normalise_url(url: str) -> URL:
    """Parse ``url`` and pick the driver bcm ships with.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3 is the only
    PostgreSQL driver bcm depends on).

    Raises:
        StoreUnavailable: ``url`` does not parse, or names a backend or driver bcm does not support.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(safe_url(url), "this is not a database URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise StoreUnavailable(
            safe_url(parsed),
            f"the {parsed.drivername!r} backend is not supported (use sqlite:/// or postgresql+psycopg://)",
        )
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Hand transaction control to the ``begin`` listener below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.fetchall()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # In WAL mode NORMAL never corrupts the database and survives a process crash; only a power
        # cut can lose the last commits. FULL would fsync on every commit: each step writes several.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_store_engine(url: str) -> Engine:
    """Create the engine for ``url``, creating the SQLite file's directory when needed.

    Connecting is lazy: an unreachable server shows up on first use, which ``Store.open`` does
    straight away.

    Raises:
        StoreUnavailable: the URL is unsupported, or the SQLite directory cannot be created.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    safe_url(parsed), f"cannot create the directory {path.parent}: {exc.strerror}"
                ) from exc
        # Threads share the pool; a connection changes thread only between uses, through the pool.
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    # pre_ping: a shared server restarts under long-lived workers; check before handing out.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
