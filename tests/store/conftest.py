"""Fixtures: every store test runs against SQLite (a file in tmp_path) and PostgreSQL (a fresh schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from bcm.store import RunRecord, Store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
"""The fixed time the store's clock returns in these tests."""


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open, migrated store whose audit clock always says ``T0``."""
    opened = Store.open(db_url, clock=lambda: T0)
    try:
        yield opened
    finally:
        opened.close()


MakeRun = Callable[..., RunRecord]


@pytest.fixture
def make_run(store: Store) -> MakeRun:
    """Create a run with sensible defaults; keyword arguments override them."""

    def make(**overrides: object) -> RunRecord:
        fields: dict[str, object] = {
            "run_id": "0a1b2c3d4e5f40718293a4b5c6d7e8f9",
            "runbook_id": "dc-power-loss",
            "runbook_title": "Data centre power loss",
            "runbook_hash": "ab" * 32,
            "runbook_path": "runbooks/dc-power-loss.yaml",
            "mode": "exercise",
            "parameters": {"site": "lon1"},
            "triggered_by": "alice",
            "services": ["voice-core"],
            "severity": "sev1",
            "started_at": T0,
        }
        fields.update(overrides)
        return store.create_run(**fields)  # type: ignore[arg-type]

    return make
