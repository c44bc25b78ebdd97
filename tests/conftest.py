"""Shared fixtures: databases on both backends, a real Prefect test server, a bcm environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bcm.testing.db import postgres_available, temporary_postgres_url

# No network here: Prefect must not try to send analytics (it also avoids "database is locked").
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@functools.cache
def _postgres_skip_reason() -> str | None:
    return postgres_available()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend (PostgreSQL: a fresh schema, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'bcm.db'}"
        return
    reason = _postgres_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    with temporary_postgres_url() as url:
        yield url


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect server for the whole session (prefect_test_harness); yields its API URL."""
    import freezegun
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # Frozen time near Prefect would stop pauses from ever timing out.
    freezegun.configure(extend_ignore_list=["prefect"])
    with (
        prefect_test_harness(server_startup_timeout=60),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield str(PREFECT_API_URL.value())
