"""The outbox over the real WebClient and the Slack stand-in: routing, order, once, failures."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from bcm.comms import FLUSH_POLICY, RUN_POLICY, FlushReport, Message, OutboxNotifier, message_counts
from bcm.comms.slack import SlackTransport
from bcm.store import Store
from bcm.testing.slack_standin import SlackStandIn
from tests.comms.conftest import TOKEN, Ticks, closed_port_url, http_attempts_that_failed, shown

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


def test_short_rate_limit_is_waited_out(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """A 429 with Retry-After: 1 (within the run's 3s) is waited out and the message delivered once."""
    slack.rate_limit(times=1, retry_after=1, method="chat.postMessage")
    started = time.monotonic()
    notifier.send(board("board", f"{RUN}/board", "running", exercise=True))
    assert time.monotonic() - started >= 1.0
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["running"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


def test_long_rate_limit_is_left_to_the_outbox(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store, ticks: Ticks
) -> None:
    """A 429 with Retry-After: 30 is not waited out in a run: the message waits, and sends only
    queue until the 30 seconds have passed; then one send delivers both, in order."""
    slack.rate_limit(times=1, retry_after=30, method="chat.postMessage")
    started = time.monotonic()
    notifier.send(notice(1))
    assert time.monotonic() - started < 5  # nowhere near the 30 seconds asked
    assert store.get_message(f"{RUN}/m1").last_error == "chat.postMessage: ratelimited (Retry-After 30s)"  # type: ignore[union-attr]
    ticks.advance(29)
    notifier.send(notice(2))
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429]
    ticks.advance(1)
    notifier.send(notice(3))
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["message 1", "message 2", "message 3"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200, 200, 200]


def notice(n: int) -> Message:
    return Message(key=f"{RUN}/m{n}", run_id=RUN, kind="notify", text=f"message {n}", exercise=True)


def test_outage_keeps_messages_in_order_and_delivers_each_once(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """Slack down: messages queue without error; when it answers again they arrive once, in order."""
    notifier.send(board("board", f"{RUN}/board", "first", exercise=True))
    slack.fail(status=503)
    for n in range(2, 5):
        notifier.send(notice(n))
    assert [m.key for m in store.list_messages(status="pending")] == [f"{RUN}/m2", f"{RUN}/m3", f"{RUN}/m4"]
    assert store.get_message(f"{RUN}/m2").last_error == "chat.postMessage: Slack answered HTTP 503"  # type: ignore[union-attr]
    slack.recover()
    report = notifier.flush()
    assert (report.delivered, report.pending, report.error) == (3, 0, None)
    notifier.flush()  # nothing left: nothing sent twice
    notifier.send(notice(2))
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["first", "message 2", "message 3", "message 4"]


def test_outage_costs_one_delivery_per_cooldown(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store, ticks: Ticks
) -> None:
    """Slack answering 503: the first send makes two HTTP calls (one retry), the sends after it make
    none for the 30s cooldown, a send after the cooldown tries once more (then rests 60s), and once
    Slack answers a send delivers the whole backlog in order, each message once."""
    slack.fail(status=503)
    for n in range(1, 6):
        notifier.send(notice(n))
    assert [c.status for c in slack.calls] == [503, 503]
    assert [(m.key[-2:], m.attempts) for m in store.list_messages(status="pending")] == [
        ("m1", 1),
        ("m2", 0),
        ("m3", 0),
        ("m4", 0),
        ("m5", 0),
    ]
    ticks.advance(29.9)
    notifier.send(notice(6))
    assert len(slack.calls) == 2
    ticks.advance(0.1)
    notifier.send(notice(7))
    assert [c.status for c in slack.calls] == [503, 503, 503, 503]
    slack.recover()
    ticks.advance(59.9)
    notifier.send(notice(8))
    assert len(slack.calls) == 4
    ticks.advance(0.1)
    notifier.send(notice(9))
    assert [m["text"] for m in slack.messages("bcm-exercises")] == [f"message {n}" for n in range(1, 10)]
    assert len(slack.calls) == 4 + 9
    assert store.list_messages(status="undelivered") == []


def test_flush_tries_even_during_the_cooldown(notifier: OutboxNotifier, slack: SlackStandIn) -> None:
    """An explicit flush (the end of a run) does not wait for the cooldown: it tries, once."""
    slack.fail(status=503)
    notifier.send(notice(1))
    report = notifier.flush()
    assert (report.delivered, report.pending, report.error) == (0, 1, "chat.postMessage: Slack answered HTTP 503")
    assert len(slack.calls) == 4
    slack.recover()
    assert notifier.flush() == FlushReport(delivered=1, failed=0, pending=0)
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["message 1"]


def test_unreachable_slack_is_one_warning_not_a_flood(
    store: Store, bcm_logs: list[logging.LogRecord], ticks: Ticks
) -> None:
    """Connection refused: one WARNING that messages are queued, whatever the number of sends and
    flushes; slack_sdk's per-attempt ERROR lines come down to DEBUG (one per HTTP attempt)."""
    notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=closed_port_url()), monotonic=ticks)
    for n in range(1, 6):
        notifier.send(notice(n))
    notifier.flush()
    ticks.advance(60)  # the cooldown after a second failure in a row
    notifier.send(notice(6))
    loud = shown(bcm_logs)
    assert [(name, level) for name, level, _ in loud] == [("bcm.comms.outbox", "WARNING")]
    assert loud[0][2].startswith(
        "Slack is unreachable (chat.postMessage: URLError: <urlopen error [Errno 111] Connection refused>): "
        "messages are queued in the outbox, in order, and delivered when it answers again"
    )
    sdk = {(r.name, r.levelname) for r in bcm_logs if r.name.startswith(("bcm.slack", "slack_sdk"))}
    assert sdk == {("bcm.slack.sdk", "DEBUG")}
    assert http_attempts_that_failed(bcm_logs) == 6  # two each: the first send, the flush, the send after the cooldown
    assert [m.attempts for m in store.list_messages(status="pending")] == [3, 0, 0, 0, 0, 0]


def test_flush_policy_is_patient_where_a_run_is_not(store: Store, slack: SlackStandIn) -> None:
    """Three 503s in a row: a run's delivery gives up after two calls; `bcm outbox flush`'s policy
    retries three times and delivers."""
    slack.fail(status=503, times=3)
    in_run = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url, policy=RUN_POLICY))
    in_run.send(notice(1))
    assert [c.status for c in slack.calls] == [503, 503]
    patient = replace(FLUSH_POLICY, backoff_s=0.01)  # the same retries, without the seconds of backoff
    flushing = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url, policy=patient), policy=patient)
    report = flushing.flush()
    assert (report.delivered, report.pending) == (1, 0)
    assert [c.status for c in slack.calls] == [503, 503, 503, 200]


def test_a_flush_stops_starting_deliveries_when_its_budget_is_spent(store: Store, slack: SlackStandIn) -> None:
    """With its time budget spent a flush still makes one delivery, then leaves the rest queued, in order."""
    policy = replace(RUN_POLICY, budget_s=0)
    notifier = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url), policy=policy)
    for n in (1, 2, 3):
        store.enqueue_message(
            f"k{n}", kind="notify", payload={"op": "post", "channel": {"name": "bcm-exercises"}, "text": f"m{n}"}
        )
    report = notifier.flush()
    assert (report.delivered, report.pending) == (1, 2)
    assert report.error == "stopped after 0.0s (this flush's time budget): the rest waits"
    notifier.flush()
    notifier.flush()
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["m1", "m2", "m3"]


def test_permanent_errors_are_final_and_do_not_block(store: Store, slack: SlackStandIn) -> None:
    """invalid_auth is not retried: the message is failed with the error; the token is never in it."""
    bad = OutboxNotifier(store, SlackTransport("xoxb-wrong-token", base_url=slack.base_url))
    bad.send(board("board", f"{RUN}/board", "running", exercise=True))
    failed = store.get_message(f"{RUN}/board")
    assert failed is not None and (failed.status, failed.last_error) == ("failed", "chat.postMessage: invalid_auth")
    assert "xoxb" not in str(store.export_audit())


def test_a_posted_message_is_not_posted_again_when_its_pin_fails(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """The board is posted but pins.add answers 503: the board counts as delivered (the missing pin
    recorded) and is never posted a second time."""
    slack.fail(status=503, method="pins.add")
    notifier.send(board("board", f"{RUN}/board", "running", exercise=True))
    notifier.flush()
    posted = store.get_message(f"{RUN}/board")
    assert posted is not None and posted.status == "delivered"
    assert posted.result == {"channel": "C0EXERCISE", "ts": "1700000000.000100", "pin_error": "Slack answered HTTP 503"}
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200]
    assert slack.pins("bcm-exercises") == []


def test_an_opened_channel_is_not_opened_again_when_its_topic_fails(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """conversations.create succeeds but setTopic answers 503: one channel, the topic error recorded."""
    slack.fail(status=503, method="conversations.setTopic")
    notifier.send(open_channel())
    notifier.flush()
    assert [c.params["name"] for c in slack.calls_to("conversations.create")] == ["inc-01234567-power"]
    opened = store.get_message(f"{RUN}/channel")
    assert opened is not None and opened.status == "delivered"
    assert opened.result == {
        "channel": "C0000000001",
        "name": "inc-01234567-power",
        "topic_error": "Slack answered HTTP 503",
    }


def test_later_board_edits_supersede_queued_ones(notifier: OutboxNotifier, slack: SlackStandIn, store: Store) -> None:
    """Board edits queued during an outage collapse into the last one: one chat.update, the newest
    text; the others count as superseded, not delivered."""
    notifier.send(board("board", f"{RUN}/board", "v0", exercise=True))
    slack.fail(status=503)
    for n in range(1, 4):
        notifier.send(board("board_update", f"{RUN}/board/{n}", f"v{n}", exercise=True))
    slack.recover()
    report = notifier.flush()
    assert (report.delivered, report.superseded, report.pending) == (1, 2, 0)
    assert [c.params["text"] for c in slack.calls_to("chat.update") if c.delivered] == ["v3"]
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["v3"]
    assert store.get_message(f"{RUN}/board/1").result == {"superseded": True, "by": f"{RUN}/board/3"}  # type: ignore[union-attr]
    assert message_counts(store.list_messages(run_id=RUN)) == {
        "delivered": 2,
        "superseded": 2,
        "pending": 0,
        "failed": 0,
    }


def test_edits_of_a_board_never_posted_are_not_counted_delivered(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store, ticks: Ticks
) -> None:
    """Slack down from the start: the board's edits wait while the board is unposted (no chat.update
    is tried); when Slack answers, the board is posted, then edited once."""
    slack.fail(status=503)
    notifier.send(board("board", f"{RUN}/board", "v0", exercise=True))
    for n in range(1, 4):
        notifier.send(board("board_update", f"{RUN}/board/{n}", f"v{n}", exercise=True))
    notifier.flush()
    assert message_counts(store.list_messages(run_id=RUN)) == {
        "delivered": 0,
        "superseded": 0,
        "pending": 4,
        "failed": 0,
    }
    assert slack.calls_to("chat.update") == []
    slack.recover()
    notifier.flush()
    assert [m["text"] for m in slack.messages("bcm-exercises")] == ["v3"]
    assert [c.status for c in slack.calls_to("chat.update")] == [200]
    assert message_counts(store.list_messages(run_id=RUN)) == {
        "delivered": 2,
        "superseded": 2,
        "pending": 0,
        "failed": 0,
    }


def test_edits_of_a_board_that_failed_for_good_fail_too(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """The board's post fails for good (channel_not_found): its edits fail, naming why; none counts
    as delivered and no chat.update is tried."""
    slack.fail_permanently("channel_not_found", method="chat.postMessage")
    notifier.send(board("board", f"{RUN}/board", "v0", exercise=True))
    for n in range(1, 3):
        notifier.send(board("board_update", f"{RUN}/board/{n}", f"v{n}", exercise=True))
    assert [(m.key[len(RUN) :], m.status, m.last_error) for m in store.list_messages(run_id=RUN)] == [
        ("/board", "failed", "chat.postMessage: channel_not_found"),
        (
            "/board/1",
            "failed",
            f"chat.update: the message to edit ({RUN}/board) was not delivered: chat.postMessage: channel_not_found",
        ),
        (
            "/board/2",
            "failed",
            f"chat.update: the message to edit ({RUN}/board) was not delivered: chat.postMessage: channel_not_found",
        ),
    ]
    assert slack.calls_to("chat.update") == []
    assert message_counts(store.list_messages(run_id=RUN)) == {
        "delivered": 0,
        "superseded": 0,
        "pending": 0,
        "failed": 3,
    }


def test_an_edit_waits_for_a_board_another_process_is_sending(
    notifier: OutboxNotifier, slack: SlackStandIn, store: Store
) -> None:
    """The board is being sent by another process: a flush stops at its edit (order kept, no
    chat.update tried) without taking Slack for down: sends still try it at once."""
    slack.fail(status=503)
    notifier.send(board("board", f"{RUN}/board", "v0", exercise=True))
    notifier.send(board("board_update", f"{RUN}/board/1", "v1", exercise=True))
    slack.recover()
    assert store.claim_message(f"{RUN}/board")  # another process took it
    fresh = OutboxNotifier(store, SlackTransport(TOKEN, base_url=slack.base_url))
    report = fresh.flush()
    assert (report.delivered, report.pending) == (0, 2)
    assert report.error == f"chat.update: the message it belongs to ({RUN}/board) is not sent yet"
    assert (fresh.resting(), slack.calls_to("chat.update")) == (False, [])
