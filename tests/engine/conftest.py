"""Engine fixtures: a bcm environment (state folder, store URL, fixture library) on the Prefect test server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bcm.store import Store
from tests.conftest import FIXTURES


@dataclass
class BcmEnv:
    """Where a test's bcm state lives."""

    home: Path
    database_url: str
    api_url: str

    def store(self) -> Store:
        return Store.open(self.database_url)

    def run(self, runbook: str, **kwargs: Any) -> tuple[Any, str]:
        """Run the runbook flow in this process; return (final Prefect state, run id)."""
        from flows.runbook import run_runbook

        run_id = kwargs.pop("run_id", None) or uuid.uuid4().hex
        state = run_runbook(runbook=runbook, run_id=run_id, return_state=True, **kwargs)
        return state, run_id

    def steps(self, run_id: str) -> dict[str, Any]:
        with self.store() as store:
            return {s.step_id: s for s in store.get_steps(run_id)}

    def marks(self, run_id: str) -> dict[str, Any]:
        with self.store() as store:
            return {m.milestone: m for m in store.get_marks(run_id)}

    def wait_for_step(self, run_id: str, step_id: str, status: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.store() as store:
                    step = store.get_step(run_id, step_id)
            except Exception:  # the run may not exist yet
                step = None
            if step is not None and step.status == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"step {step_id} of run {run_id[:8]} never reached {status}")

    def in_background(self, work: Callable[[], None]) -> threading.Thread:
        """Do ``work`` (a person answering) in another thread while the flow runs here."""
        errors: list[BaseException] = []

        def target() -> None:
            try:
                work()
            except BaseException as exc:  # surfaced by join_checked
                errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.errors = errors  # type: ignore[attr-defined]
        thread.start()
        return thread


def join_checked(thread: threading.Thread) -> None:
    """Join a background helper and re-raise what it raised."""
    thread.join(60)
    errors = thread.errors  # type: ignore[attr-defined]
    if errors:
        raise errors[0]


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, api_url: str) -> BcmEnv:
    home = tmp_path / "bcm-home"
    monkeypatch.setenv("BCM_HOME", str(home))
    monkeypatch.setenv("BCM_DATABASE_URL", url)
    monkeypatch.setenv("BCM_RUNBOOKS", str(FIXTURES))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return BcmEnv(home=home, database_url=url, api_url=api_url)


@pytest.fixture
def bcm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_server: str) -> Iterator[BcmEnv]:
    """A bcm environment on SQLite."""
    yield _env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'bcm-home' / 'bcm.db'}", prefect_server)


@pytest.fixture
def bcm_env_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefect_server: str, db_url: str) -> Iterator[BcmEnv]:
    """A bcm environment on each store backend (SQLite and PostgreSQL)."""
    yield _env(monkeypatch, tmp_path, db_url, prefect_server)


def engine_runbook(name: str) -> str:
    """Path of a runbook under tests/fixtures/engine."""
    return str(FIXTURES / "engine" / f"{name}.yaml")
