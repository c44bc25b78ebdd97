"""Comms fixtures: the Slack stand-in, a store, the fixture catalog, an outbox notifier over real HTTP."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bcm.comms import OutboxNotifier
from bcm.comms.slack import SlackTransport
from bcm.spec import Catalog, load_catalog
from bcm.store import Store
from bcm.testing.slack_standin import SlackStandIn
from tests.conftest import FIXTURES

TOKEN = "xoxb-test-secret-token"
USERS = {u: f"{u.lower()}@example.net" for u in ("U01ADA", "U01GRACE", "U01ALAN", "U01EDS", "U01BARB")}
SEEDED = {
    "C0EXERCISE": "bcm-exercises",
    "C0INCIDENTS": "bcm-incidents",
    "C0VOICE": "voice-ops",
    "C0EXEC": "exec-bridge",
}


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A running Slack Web API stand-in with the channels bcm posts to."""
    with SlackStandIn(tokens={TOKEN}, channels=SEEDED, users=USERS) as standin:
        yield standin


@pytest.fixture
def catalog() -> Catalog:
    """The fixture catalog (roles with channels and members)."""
    found, problems = load_catalog(FIXTURES / "catalog")
    assert problems == [] and found is not None
    return found


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as opened:
        yield opened


@dataclass
class Ticks:
    """A monotonic clock that moves only when told (the notifier's cooldowns and budgets)."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ticks() -> Ticks:
    """The notifier fixture's clock."""
    return Ticks()


@pytest.fixture
def notifier(slack: SlackStandIn, store: Store, catalog: Catalog, ticks: Ticks) -> OutboxNotifier:
    """The outbox notifier as a run has it (RUN_POLICY) over the real slack_sdk WebClient talking
    HTTP to the stand-in; its cooldowns follow ``ticks``."""
    return OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url), catalog=catalog, monotonic=ticks)


@pytest.fixture
def bcm_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record logged under ``bcm`` and ``slack_sdk`` during the test, from DEBUG up.

    Not caplog: a Prefect flow run configures the root logger and drops caplog's handler there.
    """
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("bcm", "slack_sdk")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def shown(records: list[logging.LogRecord]) -> list[tuple[str, str, str]]:
    """The records a console shows (WARNING and up): logger, level, message."""
    return [(r.name, r.levelname, r.getMessage()) for r in records if r.levelno >= logging.WARNING]


def http_attempts_that_failed(records: list[logging.LogRecord]) -> int:
    """How many HTTP attempts slack_sdk saw fail without an answer (it logs each one)."""
    return sum(1 for r in records if r.getMessage().startswith("Failed to send a request to Slack API server"))


def closed_port_url() -> str:
    """A Web API base URL on a local port nothing listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/"


# The engine's fixtures (a bcm environment on the Prefect test server) serve the Slack run tests too.
from tests.engine.conftest import bcm_env  # noqa: E402, F401
