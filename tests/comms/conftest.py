"""Comms fixtures: the Slack stand-in, a store, the fixture catalog, an outbox notifier over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture
def notifier(slack: SlackStandIn, store: Store, catalog: Catalog) -> OutboxNotifier:
    """The outbox notifier over the real slack_sdk WebClient talking HTTP to the stand-in."""
    transport = SlackTransport(TOKEN, base_url=slack.base_url, retries=1, timeout_s=5)
    return OutboxNotifier(store, transport, catalog=catalog)


# The engine's fixtures (a bcm environment on the Prefect test server) serve the Slack run tests too.
from tests.engine.conftest import bcm_env  # noqa: E402, F401
