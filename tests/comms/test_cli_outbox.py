"""`bcm outbox flush` and `bcm status` as processes: queued messages delivered later, failures shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bcm.comms import Message, OutboxNotifier
from bcm.comms.slack import SlackTransport
from bcm.store import Store
from bcm.testing.slack_standin import SlackStandIn
from tests.comms.conftest import TOKEN
from tests.conftest import ROOT

RUN = "c0ffee00" * 4


def bcm(tmp_path: Path, slack: SlackStandIn, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BCM_HOME": str(tmp_path),
        "BCM_DATABASE_URL": f"sqlite:///{tmp_path / 'bcm.db'}",
        "SLACK_BOT_TOKEN": token,
        "BCM_SLACK_API_URL": slack.base_url,
    }
    return subprocess.run([sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_flush_delivers_what_slack_refused_earlier(tmp_path: Path, slack: SlackStandIn) -> None:
    """Messages queued during an outage are delivered by `bcm outbox flush`, in order, once; exit 0."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url, retries=0))
        slack.fail(status=503)
        for n in (1, 2):
            notifier.send(Message(key=f"{RUN}/m{n}", run_id=None, kind="notify", text=f"m{n}", exercise=True))
    slack.recover()
    result = bcm(tmp_path, slack, "outbox", "flush", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"delivered": 2, "failed_now": 0, "pending": 0, "error": None, "failed": []}
    again = bcm(tmp_path, slack, "outbox", "flush", "--json")
    assert json.loads(again.stdout)["delivered"] == 0
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["m1", "m2"]


def test_flush_while_slack_is_down_exits_1_and_keeps_the_queue(tmp_path: Path, slack: SlackStandIn) -> None:
    """Still down: nothing is lost, the error is reported, exit 1; a bad token is never printed."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        store.enqueue_message(
            "k1", kind="notify", payload={"op": "post", "channel": {"name": "bcm-exercises"}, "text": "x"}
        )
    slack.fail(status=503)
    result = bcm(tmp_path, slack, "outbox", "flush")
    assert result.returncode == 1
    assert "still pending 1" in result.stdout
    slack.recover()
    wrong = bcm(tmp_path, slack, "outbox", "flush", "--json", token="xoxb-leaky-secret")
    doc = json.loads(wrong.stdout)
    assert doc["failed"] == [{"key": "k1", "kind": "notify", "error": "chat.postMessage: invalid_auth"}]
    assert "xoxb-leaky-secret" not in wrong.stdout + wrong.stderr


def test_status_shows_messages_that_cannot_be_delivered(tmp_path: Path, slack: SlackStandIn) -> None:
    """A permanent Slack error is shown in `bcm status` with the message and the error."""
    from datetime import UTC, datetime

    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        store.create_run(
            run_id=RUN,
            runbook_id="x",
            runbook_title="X",
            runbook_hash="0" * 64,
            runbook_path="x.yaml",
            mode="real",
            parameters={},
            triggered_by="t",
            services=[],
            severity="sev2",
            started_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url, retries=0))
        payload_message = Message(key=f"{RUN}/n/notify", run_id=RUN, kind="notify", text="hello", to=("nobody",))
        slack.fail_permanently("channel_not_found", method="chat.postMessage")
        notifier.send(payload_message)
    result = bcm(tmp_path, slack, "status", RUN[:8], "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == {
        "delivered": 0,
        "pending": [],
        "failed": [{"key": f"{RUN}/n/notify/0", "kind": "notify", "error": "chat.postMessage: channel_not_found"}],
    }
    human = bcm(tmp_path, slack, "status", RUN[:8])
    assert f"message {RUN}/n/notify/0 (notify) not delivered: chat.postMessage: channel_not_found" in human.stdout
