"""Unusable database URLs give StoreUnavailable with a message that hides the password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bcm.errors import StoreUnavailable
from bcm.store import Store
from bcm.testing.db import postgres_available, postgres_server_url

HINT = (
    "Check BCM_DATABASE_URL (sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB) "
    "and that the database server is running and accepts connections."
)


def test_unreachable_postgres_is_unavailable_without_password() -> None:
    """A PostgreSQL URL nobody listens on raises StoreUnavailable naming the URL with *** for the password."""
    with pytest.raises(StoreUnavailable) as caught:
        Store.open("postgresql://bcm:s3cret-pw@127.0.0.1:1/bcm")
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert caught.value.url == "postgresql+psycopg://bcm:***@127.0.0.1:1/bcm"
    assert message.startswith("cannot use the bcm store at postgresql+psycopg://bcm:***@127.0.0.1:1/bcm: ")
    assert "Connection refused" in caught.value.reason
    assert message.endswith(HINT)


@pytest.mark.postgres
def test_missing_postgres_database_is_unavailable() -> None:
    """A database that does not exist on a live server raises StoreUnavailable quoting the server's reason."""
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    missing = make_url(postgres_server_url()).set(password="s3cret-pw", database="bcm_no_such_database")
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(missing.render_as_string(hide_password=False))
    assert "s3cret-pw" not in str(caught.value)
    assert caught.value.reason.endswith('database "bcm_no_such_database" does not exist')


def test_unsupported_backend_is_unavailable() -> None:
    """A URL for a backend bcm does not support is refused before connecting."""
    with pytest.raises(StoreUnavailable) as caught:
        Store.open("mysql://root:hunter2@db/bcm")
    assert str(caught.value) == (
        "cannot use the bcm store at mysql://root:***@db/bcm: the 'mysql' backend is not supported "
        "(use sqlite:/// or postgresql+psycopg://). " + HINT
    )


def test_unparseable_url_is_not_echoed() -> None:
    """A string that is not a URL is not repeated in the message (it may be a pasted secret)."""
    with pytest.raises(StoreUnavailable) as caught:
        Store.open("hunter2")
    assert str(caught.value) == "cannot use the bcm store at <not a database URL>: this is not a database URL. " + HINT


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    """A SQLite path under a regular file raises StoreUnavailable naming the directory."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(f"sqlite:///{blocker}/sub/bcm.db")
    assert caught.value.reason == f"cannot create the directory {blocker}/sub: Not a directory"


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    """Opening a SQLite URL creates the missing directories and a WAL-mode database file."""
    path = tmp_path / "a" / "b" / "bcm.db"
    with Store.open(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    assert path.is_file()
    assert (mode, timeout, foreign_keys) == ("wal", 30000, 1)
