"""Throwaway PostgreSQL databases for tests: one fresh schema per test on a shared server.

The server defaults to the one CI and the development machines run on ``127.0.0.1:5432`` with
trust authentication; ``BCM_TEST_POSTGRES_URL`` points elsewhere. Each test gets its own schema
(``bcm_test_<random>``) selected through ``search_path``, so tests never see each other's rows and
need no database-creation rights.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

POSTGRES_URL_ENV = "BCM_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_SCHEMA_NAME = re.compile(r"^bcm_test_[0-9a-f]+$")


def postgres_server_url() -> str:
    """The test server's URL: ``BCM_TEST_POSTGRES_URL`` or the local default."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def _server_url() -> URL:
    url = make_url(postgres_server_url())
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def postgres_available() -> str | None:
    """Return ``None`` when the test server answers, otherwise why not (a pytest skip reason)."""
    url = _server_url()
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[:1] or [type(exc).__name__]
        return (
            f"no PostgreSQL server answers at {url.render_as_string(hide_password=True)} "
            f"({first_line[0]}); set {POSTGRES_URL_ENV} to use another"
        )
    finally:
        engine.dispose()
    return None


@contextmanager
def temporary_postgres_url() -> Iterator[str]:
    """Create an empty schema on the test server and yield a URL whose connections use it.

    The schema and everything in it is dropped on exit. The yielded URL includes the password,
    if the server URL has one: it is for the test's own use, not for messages.
    """
    server = _server_url()
    schema = f"bcm_test_{secrets.token_hex(6)}"
    # Identifiers cannot be bound as parameters; the name is ours and checked, never user input.
    assert _SCHEMA_NAME.match(schema)
    admin = create_engine(server, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = server.update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
