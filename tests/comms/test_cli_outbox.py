"""`bcm outbox flush` and `bcm status` as processes: queued messages delivered later, failures shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bcm.comms import Message, OutboxNotifier
from bcm.comms.slack import SlackTransport
from bcm.engine.status import run_document
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


def post(key: str, channel: str, text: str) -> dict[str, object]:
    return {"op": "post", "channel": {"name": channel}, "text": text}


def test_flush_delivers_what_slack_refused_earlier(tmp_path: Path, slack: SlackStandIn) -> None:
    """Messages queued during an outage are delivered by `bcm outbox flush`, in order, once; exit 0."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url))
        slack.fail(status=503)
        for n in (1, 2):
            notifier.send(Message(key=f"{RUN}/m{n}", run_id=None, kind="notify", text=f"m{n}", exercise=True))
    slack.recover()
    result = bcm(tmp_path, slack, "outbox", "flush", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "delivered": 2,
        "superseded": 0,
        "failed_now": 0,
        "pending": 0,
        "error": None,
        "failed": [],
        "exit_code": 0,
        "because": [],
    }
    again = bcm(tmp_path, slack, "outbox", "flush")
    assert (again.returncode, again.stdout) == (0, "delivered 0, superseded 0, failed 0, still pending 0\n")
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["m1", "m2"]


def test_flush_while_slack_is_down_exits_1_and_keeps_the_queue(tmp_path: Path, slack: SlackStandIn) -> None:
    """Still down: nothing is lost, the flush retries patiently (four calls), says it stopped and
    that one message is still pending, exit 1; a bad token is never printed."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        store.enqueue_message("k1", kind="notify", payload=post("k1", "bcm-exercises", "x"))
    slack.fail(status=503)
    result = bcm(tmp_path, slack, "outbox", "flush")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "delivered 0, superseded 0, failed 0, still pending 1",
        "stopped: chat.postMessage: Slack answered HTTP 503 (messages stay queued, in order)",
        "exit 1: 1 still pending (`bcm outbox flush` again later)",
    ]
    assert [c.status for c in slack.calls] == [503, 503, 503, 503]
    slack.recover()
    wrong = bcm(tmp_path, slack, "outbox", "flush", "--json", token="xoxb-leaky-secret")
    assert wrong.returncode == 1
    doc = json.loads(wrong.stdout)
    assert doc["failed"] == [{"key": "k1", "kind": "notify", "error": "chat.postMessage: invalid_auth"}]
    assert (doc["exit_code"], doc["because"]) == (1, ["1 failed for good"])
    assert "xoxb-leaky-secret" not in wrong.stdout + wrong.stderr


def test_flush_exits_1_when_a_message_failed_for_good(tmp_path: Path, slack: SlackStandIn) -> None:
    """Nothing pending but one message refused for good (channel_not_found): exit 1, and the output
    names the message and says it failed for good rather than that something is pending."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        store.enqueue_message("k1", kind="notify", payload=post("k1", "bcm-exercises", "one"))
        store.enqueue_message("k2", kind="notify", payload=post("k2", "no-such-channel", "two"))
        store.enqueue_message("k3", kind="notify", payload=post("k3", "bcm-exercises", "three"))
    result = bcm(tmp_path, slack, "outbox", "flush", "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == {
        "delivered": 2,
        "superseded": 0,
        "failed_now": 1,
        "pending": 0,
        "error": None,
        "failed": [{"key": "k2", "kind": "notify", "error": "chat.postMessage: channel_not_found"}],
        "exit_code": 1,
        "because": ["1 failed for good"],
    }
    again = bcm(tmp_path, slack, "outbox", "flush")
    assert again.returncode == 1
    assert again.stdout.splitlines() == [
        "delivered 0, superseded 0, failed 0, still pending 0",
        "not deliverable: k2 (notify): chat.postMessage: channel_not_found",
        "exit 1: 1 failed for good (a permanent Slack error: not retried)",
    ]
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["one", "three"]


def create_run(store: Store) -> None:
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


def test_status_shows_messages_that_cannot_be_delivered(tmp_path: Path, slack: SlackStandIn) -> None:
    """A permanent Slack error is shown in `bcm status` with the message and the error."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        create_run(store)
        notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url))
        payload_message = Message(key=f"{RUN}/n/notify", run_id=RUN, kind="notify", text="hello", to=("nobody",))
        slack.fail_permanently("channel_not_found", method="chat.postMessage")
        notifier.send(payload_message)
    result = bcm(tmp_path, slack, "status", RUN[:8], "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == {
        "delivered": 0,
        "superseded": 0,
        "pending": [],
        "failed": [{"key": f"{RUN}/n/notify/0", "kind": "notify", "error": "chat.postMessage: channel_not_found"}],
    }
    human = bcm(tmp_path, slack, "status", RUN[:8])
    assert f"message {RUN}/n/notify/0 (notify) not delivered: chat.postMessage: channel_not_found" in human.stdout


def test_status_counts_superseded_board_edits_apart_from_delivered(tmp_path: Path, slack: SlackStandIn) -> None:
    """Board edits queued during an outage: while the board is unposted nothing counts as
    delivered; after the flush, the edits the last one replaced count as superseded, not delivered."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        create_run(store)
        notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url))
        slack.fail(status=503)
        notifier.send(Message(key=f"{RUN}/board", run_id=RUN, kind="board", text="v0", exercise=True))
        for n in (1, 2, 3):
            notifier.send(Message(key=f"{RUN}/board/{n}", run_id=RUN, kind="board_update", text=f"v{n}", exercise=True))
        during = run_document(store, store.get_run(RUN))["messages"]
        assert (during["delivered"], during["superseded"], len(during["pending"]), during["failed"]) == (0, 0, 4, [])
        slack.recover()
        notifier.flush()
        after = run_document(store, store.get_run(RUN))["messages"]
        assert after == {"delivered": 2, "superseded": 2, "pending": [], "failed": []}
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["v3"]
