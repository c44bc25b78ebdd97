"""The outbox over the real WebClient and the Slack stand-in: routing, order, once, failures."""

from __future__ import annotations

import time

from bcm.comms import Message, OutboxNotifier
from bcm.comms.slack import SlackTransport
from bcm.store import Store
from bcm.testing.slack_standin import SlackStandIn

RUN = "0123456789abcdef0123456789abcdef"


def board(kind: str, key: str, text: str, *, exercise: bool = False) -> Message:
    return Message(key=key, run_id=RUN, kind=kind, text=text, exercise=exercise)


def open_channel(name: str = "inc-01234567-power") -> Message:
    return Message(
        key=f"{RUN}/channel",
        run_id=RUN,
        kind="open_channel",
        text="t",
        channel_name=name,
        topic="SEV1 power",
        invite=("U01ADA",),
    )


def test_channel_opened_board_pinned_and_updated_in_place(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """Real mode: the channel is created with its topic and invitees; the board is pinned, then edited."""
    notifier.send(open_channel())
    notifier.send(board("board", f"{RUN}/board", "running"))
    notifier.send(board("board_update", f"{RUN}/board/a", "step a done"))
    notifier.send(Message(key=f"{RUN}/thread/a", run_id=RUN, kind="thread", text="a succeeded"))
    channel = slack.calls_to("conversations.create")[0]
    assert channel.params["name"] == "inc-01234567-power"
    info = slack.channel("inc-01234567-power")
    assert info["topic"]["value"] == "SEV1 power"
    assert "U01ADA" in info["members"]
    messages = slack.messages("inc-01234567-power")
    top_level = [m for m in messages if m.get("thread_ts", m["ts"]) == m["ts"]]
    assert [m["text"] for m in top_level] == ["step a done"]  # edited in place
    board_ts = messages[0]["ts"]
    assert slack.pins("inc-01234567-power") == [board_ts]
    replies = [m for m in messages if m.get("thread_ts") == board_ts and m["ts"] != board_ts]
    assert [m["text"] for m in replies] == ["a succeeded"]


def test_taken_channel_name_gets_a_suffix(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """A channel name in use gets -2 (then -3, ...) rather than failing."""
    notifier.send(Message(key="other/channel", run_id="other", kind="open_channel", text="t", channel_name="inc-x"))
    notifier.send(open_channel("inc-x"))
    assert [c.params["name"] for c in slack.calls_to("conversations.create") if c.delivered] == ["inc-x", "inc-x-2"]


def test_exercise_messages_go_only_to_the_exercise_channel(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """Exercise: no channel is opened and notify messages go to the exercise channel, not to roles."""
    notifier.send(
        Message(key=f"{RUN}/channel", run_id=RUN, kind="open_channel", text="t", channel_name="x", exercise=True)
    )
    notifier.send(board("board", f"{RUN}/board", "[EXERCISE] running", exercise=True))
    notifier.send(
        Message(key=f"{RUN}/n/notify", run_id=RUN, kind="notify", text="[EXERCISE] hi", to=("exec",), exercise=True)
    )
    assert slack.calls_to("conversations.create") == []
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["[EXERCISE] running", "[EXERCISE] hi"]
    assert slack.messages("exec-bridge") == []


def test_notify_goes_to_role_channels_and_members(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """Real notify: a role with a channel gets it there; a role without one, each member directly."""
    notifier.send(
        Message(key=f"{RUN}/n/notify", run_id=RUN, kind="notify", text="power lost", to=("exec", "network_ops"))
    )
    posts = [(c.params["channel"], c.params["text"]) for c in slack.calls_to("chat.postMessage")]
    assert posts == [("exec-bridge", "power lost"), ("U01EDS", "power lost")]


def test_rate_limit_is_honoured(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """A 429 with Retry-After: 1 is waited out and the message is delivered once."""
    slack.rate_limit(times=1, retry_after=1, method="chat.postMessage")
    started = time.monotonic()
    notifier.send(board("board", f"{RUN}/board", "running", exercise=True))
    assert time.monotonic() - started >= 1.0
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["running"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


def test_outage_keeps_messages_in_order_and_delivers_each_once(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """Slack down: messages queue without error; when it answers again they arrive once, in order."""
    notifier.send(board("board", f"{RUN}/board", "first", exercise=True))
    slack.fail(status=503)
    for n in range(2, 5):
        notifier.send(Message(key=f"{RUN}/m{n}", run_id=RUN, kind="notify", text=f"message {n}", exercise=True))
    assert [m.key for m in store.list_messages(status="pending")] == [f"{RUN}/m2", f"{RUN}/m3", f"{RUN}/m4"]
    assert store.get_message(f"{RUN}/m2").last_error == "chat.postMessage: Slack answered HTTP 503"  # type: ignore[union-attr]
    slack.recover()
    report = notifier.flush()
    assert (report.delivered, report.pending) == (3, 0)
    notifier.flush()  # nothing left: nothing sent twice
    notifier.send(Message(key=f"{RUN}/m2", run_id=RUN, kind="notify", text="message 2", exercise=True))
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["first", "message 2", "message 3", "message 4"]


def test_permanent_errors_are_final_and_do_not_block(store: Store, slack: SlackStandIn) -> None:
    """invalid_auth is not retried: the message is failed with the error; the token is never in it."""
    bad = OutboxNotifier(store, SlackTransport("xoxb-wrong-token", base_url=slack.base_url, retries=1))
    bad.send(board("board", f"{RUN}/board", "running", exercise=True))
    failed = store.get_message(f"{RUN}/board")
    assert failed is not None and (failed.status, failed.last_error) == ("failed", "chat.postMessage: invalid_auth")
    assert "xoxb" not in str(store.export_audit())


def test_later_board_edits_supersede_queued_ones(notifier: OutboxNotifier, slack: SlackStandIn, store: Store) -> None:
    """Board edits queued during an outage collapse into the last one: one chat.update, the newest text."""
    notifier.send(board("board", f"{RUN}/board", "v0", exercise=True))
    slack.fail(status=503)
    for n in range(1, 4):
        notifier.send(board("board_update", f"{RUN}/board/{n}", f"v{n}", exercise=True))
    slack.recover()
    notifier.flush()
    assert [c.params["text"] for c in slack.calls_to("chat.update") if c.delivered] == ["v3"]
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["v3"]
    assert store.get_message(f"{RUN}/board/1").result == {"superseded": True}  # type: ignore[union-attr]
