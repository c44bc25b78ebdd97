"""The Slack stand-in, driven by the real ``slack_sdk.WebClient`` over HTTP on 127.0.0.1."""

from __future__ import annotations

import gc
import re
import select
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected
from pathlib import Path

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bcm.testing.slack_standin import BOT_ID, BOT_USER_ID, TEAM_ID, RecordedCall, SlackStandIn, StandInControl

TOKEN = "xoxb-test"
CHANNELS = {"C0EXERCISE": "bcm-exercises", "C0EXEC": "exec-updates"}
USERS = {"U0IC": "ic@example.net", "U0COMMS": "comms@example.net"}
REPO = Path(__file__).resolve().parents[2]
# Retry handlers wait this long between attempts (except for 429, where Retry-After rules).
QUICK = FixedValueRetryIntervalCalculator(fixed_internal=0.01)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    """A running stand-in with two channels and two users seeded."""
    with SlackStandIn(tokens={TOKEN}, channels=CHANNELS, users=USERS) as standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> WebClient:
    """A client that never retries, so every refusal reaches the test."""
    return WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> tuple[int, str]:
    """The HTTP status and Slack error of a raised SlackApiError."""
    return excinfo.value.response.status_code, excinfo.value.response["error"]


# -- workspace behaviour --------------------------------------------------------------------------


def test_base_url_is_the_api_root_on_loopback(slack: SlackStandIn) -> None:
    """base_url is http://127.0.0.1:<port>/api/ with the bound port, ending with a slash."""
    assert slack.base_url == f"http://127.0.0.1:{slack.port}/api/"
    assert slack.port > 0


def test_base_url_before_start_is_an_error() -> None:
    """Asking for the URL of a stand-in that is not running raises RuntimeError."""
    with pytest.raises(RuntimeError, match="not running"):
        _ = SlackStandIn().base_url


def test_auth_test_names_the_bot(client: WebClient) -> None:
    """auth.test answers the stand-in's team and bot identity."""
    assert client.auth_test().data == {
        "ok": True,
        "url": "https://bcm-standin.slack.com/",
        "team": "bcm stand-in",
        "user": "bcm",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def test_post_update_pin_round_trip(slack: SlackStandIn, client: WebClient) -> None:
    """A posted message can be updated and pinned; messages() shows its current state."""
    posted = client.chat_postMessage(channel="C0EXERCISE", text="STARTEX: power loss at DC2")
    assert posted["channel"] == "C0EXERCISE"
    assert posted["ts"] == "1700000000.000100"
    assert posted["message"] == {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "ts": "1700000000.000100",
        "text": "STARTEX: power loss at DC2",
    }

    updated = client.chat_update(channel="C0EXERCISE", ts=posted["ts"], text="STARTEX: generators holding")
    assert (updated["channel"], updated["ts"], updated["text"]) == (
        "C0EXERCISE",
        "1700000000.000100",
        "STARTEX: generators holding",
    )
    assert client.pins_add(channel="C0EXERCISE", timestamp=posted["ts"]).data == {"ok": True}

    assert slack.messages("C0EXERCISE") == [
        {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "team": TEAM_ID,
            "ts": "1700000000.000100",
            "text": "STARTEX: generators holding",
            "pinned_to": ["C0EXERCISE"],
        }
    ]
    assert slack.pins("C0EXERCISE") == ["1700000000.000100"]
    assert [c.method for c in slack.calls] == ["chat.postMessage", "chat.update", "pins.add"]
    assert slack.calls_to("chat.update")[0].params == {
        "channel": "C0EXERCISE",
        "ts": "1700000000.000100",
        "text": "STARTEX: generators holding",
    }


def test_pin_twice_is_already_pinned(client: WebClient) -> None:
    """Pinning a message a second time answers already_pinned."""
    ts = client.chat_postMessage(channel="C0EXERCISE", text="pin me")["ts"]
    client.pins_add(channel="C0EXERCISE", timestamp=ts)
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_add(channel="C0EXERCISE", timestamp=ts)
    assert api_error(excinfo) == (200, "already_pinned")


def test_post_by_name_and_hash_name_with_blocks(slack: SlackStandIn, client: WebClient) -> None:
    """chat.postMessage takes a channel name or #name and keeps blocks sent as JSON."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Declared*"}}]
    first = client.chat_postMessage(channel="exec-updates", text="declared", blocks=blocks)
    with pytest.warns(UserWarning, match="top-level `text` argument is missing"):
        second = client.chat_postMessage(channel="#exec-updates", blocks=blocks)
    assert (first["channel"], second["channel"]) == ("C0EXEC", "C0EXEC")
    assert [(m["text"], m["blocks"]) for m in slack.messages("#exec-updates")] == [
        ("declared", blocks),
        ("", blocks),
    ]


def test_update_keeps_blocks_unless_replaced(slack: SlackStandIn, client: WebClient) -> None:
    """chat.update without blocks keeps the old ones; an empty list removes them, as in Slack."""
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "status"}}]
    ts = client.chat_postMessage(channel="C0EXEC", text="v1", blocks=blocks)["ts"]
    client.chat_update(channel="C0EXEC", ts=ts, text="v2")
    assert slack.messages("C0EXEC")[0]["blocks"] == blocks
    client.chat_update(channel="C0EXEC", ts=ts, text="v3", blocks=[])
    assert "blocks" not in slack.messages("C0EXEC")[0]


def test_thread_reply_is_counted_on_its_parent(slack: SlackStandIn, client: WebClient) -> None:
    """A reply with thread_ts is stored with it and the parent counts the reply."""
    parent = client.chat_postMessage(channel="C0EXERCISE", text="parent")["ts"]
    reply = client.chat_postMessage(channel="C0EXERCISE", text="reply", thread_ts=parent)
    assert reply["message"]["thread_ts"] == "1700000000.000100"
    first, second = slack.messages("C0EXERCISE")
    assert (first["thread_ts"], first["reply_count"], first["latest_reply"]) == (
        "1700000000.000100",
        1,
        "1700000000.000200",
    )
    assert (second["ts"], second["thread_ts"]) == ("1700000000.000200", "1700000000.000100")


def test_ts_strictly_increasing_under_concurrent_posts(slack: SlackStandIn) -> None:
    """Forty posts from eight threads get forty distinct ts, increasing in arrival order."""

    def post() -> None:
        client = WebClient(token=TOKEN, base_url=slack.base_url)
        for _ in range(5):
            client.chat_postMessage(channel="C0EXERCISE", text="tick")

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps = [m["ts"] for m in slack.messages("C0EXERCISE")]
    assert stamps == [f"1700000000.{100 * n:06d}" for n in range(1, 41)]
    assert len(slack.calls_to("chat.postMessage")) == 40


def test_create_then_name_taken(slack: SlackStandIn, client: WebClient) -> None:
    """Creating a channel twice, or with a seeded name, answers name_taken."""
    created = client.conversations_create(name="inc-a1b2-power")["channel"]
    assert (created["id"], created["name"], created["is_member"], created["num_members"]) == (
        "C0000000001",
        "inc-a1b2-power",
        True,
        1,
    )
    for name in ("inc-a1b2-power", "bcm-exercises"):
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_create(name=name)
        assert api_error(excinfo) == (200, "name_taken")
    assert [c.error for c in slack.calls_to("conversations.create")] == [None, "name_taken", "name_taken"]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Inc-Power", "invalid_name_specials"),
        ("inc power", "invalid_name_specials"),
        ("inc.power", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("---", "invalid_name_punctuation"),
        ("", "invalid_name_required"),
    ],
)
def test_create_rejects_bad_names(client: WebClient, name: str, error: str) -> None:
    """Channel names must be lowercase letters, digits, - and _, 1 to 80 characters."""
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name=name)
    assert api_error(excinfo) == (200, error)


def test_create_accepts_80_characters(client: WebClient) -> None:
    """A channel name of exactly 80 characters is accepted."""
    assert client.conversations_create(name="x" * 80)["channel"]["name"] == "x" * 80


def test_unknown_channel_is_channel_not_found(client: WebClient) -> None:
    """Posting to a channel that does not exist raises SlackApiError channel_not_found."""
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="#no-such-channel", text="hello")
    assert api_error(excinfo) == (200, "channel_not_found")


def test_update_and_pin_need_a_channel_id(client: WebClient) -> None:
    """chat.update and pins.add take IDs only: a channel name is channel_not_found."""
    ts = client.chat_postMessage(channel="bcm-exercises", text="x")["ts"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="bcm-exercises", ts=ts, text="y")
    assert api_error(excinfo) == (200, "channel_not_found")
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_add(channel="bcm-exercises", timestamp=ts)
    assert api_error(excinfo) == (200, "channel_not_found")


def test_post_without_text_or_blocks_is_no_text(client: WebClient) -> None:
    """chat.postMessage with neither text nor blocks answers no_text."""
    with pytest.raises(SlackApiError) as excinfo, pytest.warns(UserWarning, match="`text` argument is missing"):
        client.chat_postMessage(channel="C0EXERCISE")
    assert api_error(excinfo) == (200, "no_text")


def test_update_unknown_ts_is_message_not_found(client: WebClient) -> None:
    """chat.update of a ts that was never posted answers message_not_found."""
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0EXERCISE", ts="1600000000.000100", text="x")
    assert api_error(excinfo) == (200, "message_not_found")


def test_topic_invite_info_join(slack: SlackStandIn, client: WebClient) -> None:
    """setTopic, invite (comma-separated users) and join show up in conversations.info."""
    channel_id = client.conversations_create(name="inc-topic")["channel"]["id"]
    client.conversations_setTopic(channel=channel_id, topic="DC2 power loss | IC: @ic")
    client.conversations_invite(channel=channel_id, users=["U0IC", "U0COMMS"])
    joined = client.conversations_join(channel=channel_id)
    assert joined["warning"] == "already_in_channel"

    info = client.conversations_info(channel=channel_id)["channel"]
    assert (info["topic"]["value"], info["topic"]["creator"], info["num_members"]) == (
        "DC2 power loss | IC: @ic",
        BOT_USER_ID,
        3,
    )
    assert slack.channel(channel_id)["members"] == [BOT_USER_ID, "U0IC", "U0COMMS"]
    assert slack.calls_to("conversations.invite")[0].params == {"channel": channel_id, "users": "U0IC,U0COMMS"}


@pytest.mark.parametrize(
    ("users", "error"),
    [("U0NOBODY", "user_not_found"), ("U0IC", "already_in_channel"), (BOT_USER_ID, "cant_invite_self")],
)
def test_invite_errors(client: WebClient, users: str, error: str) -> None:
    """Inviting an unknown user, a member, or the bot itself is refused with Slack's error."""
    client.conversations_invite(channel="C0EXERCISE", users="U0IC")
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_invite(channel="C0EXERCISE", users=users)
    assert api_error(excinfo) == (200, error)


def test_topic_over_250_characters_is_too_long(client: WebClient) -> None:
    """A topic longer than 250 characters answers too_long."""
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_setTopic(channel="C0EXERCISE", topic="t" * 251)
    assert api_error(excinfo) == (200, "too_long")


def test_users_lookup_by_email_and_info(client: WebClient) -> None:
    """users.lookupByEmail and users.info find seeded users; unknown ones are refused."""
    user = client.users_lookupByEmail(email="IC@example.net")["user"]
    assert (user["id"], user["name"], user["profile"]["email"]) == ("U0IC", "ic", "ic@example.net")
    assert client.users_info(user="U0COMMS")["user"]["profile"]["email"] == "comms@example.net"
    with pytest.raises(SlackApiError) as excinfo:
        client.users_lookupByEmail(email="nobody@example.net")
    assert api_error(excinfo) == (200, "users_not_found")
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U0NOBODY")
    assert api_error(excinfo) == (200, "user_not_found")


def test_ephemeral_goes_only_to_members(slack: SlackStandIn, client: WebClient) -> None:
    """chat.postEphemeral needs the user in the channel and is kept apart from messages."""
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel="C0EXERCISE", user="U0IC", text="approve?")
    assert api_error(excinfo) == (200, "user_not_in_channel")
    client.conversations_invite(channel="C0EXERCISE", users="U0IC")
    sent = client.chat_postEphemeral(channel="C0EXERCISE", user="U0IC", text="approve?")
    assert sent["message_ts"] == "1700000000.000100"
    assert slack.ephemerals("C0EXERCISE") == [
        {"type": "message", "user": "U0IC", "ts": "1700000000.000100", "text": "approve?"}
    ]
    assert slack.messages("C0EXERCISE") == []


def test_unknown_method(client: WebClient) -> None:
    """A method the stand-in does not know answers unknown_method."""
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("admin.teams.create")
    assert api_error(excinfo) == (200, "unknown_method")


def test_invalid_and_missing_token(slack: SlackStandIn) -> None:
    """A wrong token answers invalid_auth, no token not_authed; both are recorded as refused."""
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    assert api_error(excinfo) == (200, "invalid_auth")
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(base_url=slack.base_url).auth_test()
    assert api_error(excinfo) == (200, "not_authed")
    assert [(c.token, c.error, c.delivered) for c in slack.calls] == [
        ("xoxb-wrong", "invalid_auth", False),
        (None, "not_authed", False),
    ]


def test_token_form_field_and_get_query_string(slack: SlackStandIn) -> None:
    """The token may come as a form field (POST) or in the query string (GET)."""
    posted = httpx.post(f"{slack.base_url}chat.postMessage", data={"token": TOKEN, "channel": "C0EXEC", "text": "a"})
    got = httpx.get(f"{slack.base_url}conversations.info", params={"token": TOKEN, "channel": "C0EXEC"})
    assert (posted.status_code, posted.json()["ts"]) == (200, "1700000000.000100")
    assert (got.status_code, got.json()["channel"]["name"]) == (200, "exec-updates")
    assert [(c.method, c.token, c.params) for c in slack.calls] == [
        ("chat.postMessage", TOKEN, {"channel": "C0EXEC", "text": "a"}),
        ("conversations.info", TOKEN, {"channel": "C0EXEC"}),
    ]


def test_clear_forgets_calls_and_reset_restores_the_seed(slack: SlackStandIn, client: WebClient) -> None:
    """clear() drops the recorded calls only; reset() also empties channels and restarts ts."""
    client.conversations_create(name="inc-reset")
    client.chat_postMessage(channel="C0EXERCISE", text="before")
    slack.clear()
    assert slack.calls == []
    assert [m["text"] for m in slack.messages("C0EXERCISE")] == ["before"]

    slack.fail(503)
    slack.reset()
    assert client.chat_postMessage(channel="C0EXERCISE", text="after")["ts"] == "1700000000.000100"
    assert [m["text"] for m in slack.messages("C0EXERCISE")] == ["after"]
    with pytest.raises(KeyError, match="inc-reset"):
        slack.messages("inc-reset")


# -- injected failures ----------------------------------------------------------------------------


def test_rate_limit_then_success_honours_retry_after(slack: SlackStandIn) -> None:
    """With RateLimitErrorRetryHandler, a 429 with Retry-After: 1 is retried after >= 1 s."""
    client = WebClient(
        token=TOKEN, base_url=slack.base_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    slack.rate_limit(times=1, retry_after=1)
    started = time.monotonic()
    posted = client.chat_postMessage(channel="C0EXERCISE", text="after the limit")
    elapsed = time.monotonic() - started

    assert elapsed >= 1.0
    assert posted["ts"] == "1700000000.000100"
    assert [(c.status, c.error, c.fault, c.delivered) for c in slack.calls] == [
        (429, "ratelimited", "rate_limit", False),
        (200, None, None, True),
    ]
    assert [m["text"] for m in slack.messages("C0EXERCISE")] == ["after the limit"]


def test_rate_limit_without_retry_surfaces_429(slack: SlackStandIn, client: WebClient) -> None:
    """Without a retry handler the 429 reaches the caller with ratelimited and Retry-After."""
    slack.rate_limit(times=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.auth_test()
        assert api_error(excinfo) == (429, "ratelimited")
        assert excinfo.value.response.headers["Retry-After"] == "7"
    assert client.auth_test()["ok"] is True


def test_rate_limit_can_target_one_method(slack: SlackStandIn, client: WebClient) -> None:
    """A rate limit for chat.postMessage leaves other methods alone."""
    slack.rate_limit(times=1, method="chat.postMessage")
    assert client.auth_test()["ok"] is True
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0EXERCISE", text="x")
    assert api_error(excinfo) == (429, "ratelimited")
    assert [(c.method, c.fault) for c in slack.calls] == [("auth.test", None), ("chat.postMessage", "rate_limit")]


def test_outage_until_recover(slack: SlackStandIn, client: WebClient) -> None:
    """fail(503) refuses every call until recover(); nothing reaches the workspace meanwhile."""
    slack.fail(503)
    for _ in range(3):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel="C0EXERCISE", text="during the outage")
        assert api_error(excinfo) == (503, "service_unavailable")
    assert slack.messages("C0EXERCISE") == []

    slack.recover()
    client.chat_postMessage(channel="C0EXERCISE", text="after the outage")
    assert [m["text"] for m in slack.messages("C0EXERCISE")] == ["after the outage"]
    delivered = [c for c in slack.calls if c.delivered]
    refused = [c for c in slack.calls if not c.delivered]
    assert (len(delivered), len(refused)) == (1, 3)
    assert {(c.status, c.fault) for c in refused} == {(503, "fail")}


def test_counted_failure_is_retried_by_server_error_handler(slack: SlackStandIn) -> None:
    """fail(500, times=1) is absorbed by ServerErrorRetryHandler; the second attempt lands."""
    client = WebClient(
        token=TOKEN,
        base_url=slack.base_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK)],
    )
    slack.fail(500, times=1)
    assert client.chat_postMessage(channel="C0EXEC", text="x")["ts"] == "1700000000.000100"
    assert [(c.status, c.error) for c in slack.calls] == [(500, "internal_error"), (200, None)]


def test_dropped_connection_is_retried(slack: SlackStandIn) -> None:
    """A connection closed without an answer is retried by ConnectionErrorRetryHandler."""
    client = WebClient(
        token=TOKEN,
        base_url=slack.base_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=QUICK)],
    )
    slack.drop_connections(times=2)
    assert client.chat_postMessage(channel="C0EXERCISE", text="third time")["ts"] == "1700000000.000100"
    assert [(c.status, c.error, c.fault) for c in slack.calls] == [
        (0, "connection_dropped", "drop_connections"),
        (0, "connection_dropped", "drop_connections"),
        (200, None, None),
    ]


def test_dropped_connection_without_retry_is_a_connection_error(slack: SlackStandIn, client: WebClient) -> None:
    """Without retries the client sees the closed connection as RemoteDisconnected."""
    slack.drop_connections(times=1)
    with pytest.raises(RemoteDisconnected):
        client.auth_test()
    assert client.auth_test()["ok"] is True


def test_fail_permanently_for_one_method_until_recover(slack: SlackStandIn, client: WebClient) -> None:
    """fail_permanently answers its error, HTTP 200, for that method only, until recover()."""
    slack.fail_permanently("channel_not_found", method="chat.postMessage")
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel="C0EXERCISE", text="x")
        assert api_error(excinfo) == (200, "channel_not_found")
    assert client.conversations_info(channel="C0EXERCISE")["channel"]["name"] == "bcm-exercises"
    slack.recover()
    assert client.chat_postMessage(channel="C0EXERCISE", text="x")["ok"] is True
    assert [c.fault for c in slack.calls] == ["fail_permanently", "fail_permanently", None, None]


def test_failures_are_served_in_the_order_injected(slack: SlackStandIn, client: WebClient) -> None:
    """Two injected failures apply one after the other, then calls succeed."""
    slack.fail(502, times=1)
    slack.fail_permanently("invalid_auth")
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert api_error(excinfo) == (502, "bad_gateway")
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert api_error(excinfo) == (200, "invalid_auth")


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        (lambda s: s.rate_limit(times=0), "times must be >= 1, got 0"),
        (lambda s: s.fail(status=200), "status must be an HTTP error status (400-599), got 200"),
        (lambda s: s.fail_permanently(""), "error must be a Slack error string, e.g. 'channel_not_found'"),
        (lambda s: s.inject("explode", {}), "unknown failure kind 'explode' (known: rate_limit, fail, "),
    ],
)
def test_bad_injections_are_refused(slack: SlackStandIn, inject: Callable[[SlackStandIn], None], message: str) -> None:
    """Injections that could not mean anything raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=re.escape(message)):
        inject(slack)


# -- another process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin_process() -> Iterator[str]:
    """``python -m bcm.testing.slack_standin`` as a subprocess; yields the base URL it printed."""
    command = [
        sys.executable,
        "-m",
        "bcm.testing.slack_standin",
        "--port",
        "0",
        "--token",
        "xoxb-process",
        "--channel",
        "C0EXERCISE=bcm-exercises",
        "--user",
        "U0IC=ic@example.net",
    ]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            ready, _, _ = select.select([process.stdout], [], [], 15)
            assert ready, "the stand-in printed no base URL within 15 s"
            yield process.stdout.readline().strip()
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=10)
        assert (process.returncode, stderr) == (0, "")


def test_module_runs_as_a_process(standin_process: str) -> None:
    """The module prints its base URL and answers auth.test with the token it was given."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/", standin_process)
    assert WebClient(token="xoxb-process", base_url=standin_process).auth_test()["user_id"] == BOT_USER_ID
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=TOKEN, base_url=standin_process).auth_test()
    assert api_error(excinfo) == (200, "invalid_auth")


def test_control_api_drives_a_standin_in_another_process(standin_process: str) -> None:
    """StandInControl injects failures, reads calls, messages and pins, and resets over HTTP."""
    client = WebClient(token="xoxb-process", base_url=standin_process, retry_handlers=[])
    with StandInControl(standin_process) as control:
        control.reset()
        control.rate_limit(times=1, retry_after=3, method="chat.postMessage")
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel="#bcm-exercises", text="declared")
        assert api_error(excinfo) == (429, "ratelimited")
        assert excinfo.value.response.headers["Retry-After"] == "3"

        ts = client.chat_postMessage(channel="#bcm-exercises", text="declared")["ts"]
        client.pins_add(channel="C0EXERCISE", timestamp=ts)
        control.fail(503)
        with pytest.raises(SlackApiError) as excinfo:
            client.auth_test()
        assert api_error(excinfo) == (503, "service_unavailable")
        control.recover()
        control.drop_connections(times=1)
        with pytest.raises(RemoteDisconnected):
            client.auth_test()
        control.fail_permanently("invalid_auth", method="users.info")
        with pytest.raises(SlackApiError) as excinfo:
            client.users_info(user="U0IC")
        assert api_error(excinfo) == (200, "invalid_auth")

        calls = control.calls
        assert all(isinstance(c, RecordedCall) for c in calls)
        assert [(c.method, c.status, c.fault, c.delivered) for c in calls] == [
            ("chat.postMessage", 429, "rate_limit", False),
            ("chat.postMessage", 200, None, True),
            ("pins.add", 200, None, True),
            ("auth.test", 503, "fail", False),
            ("auth.test", 0, "drop_connections", False),
            ("users.info", 200, "fail_permanently", False),
        ]
        assert [c.params for c in control.calls_to("pins.add")] == [{"channel": "C0EXERCISE", "timestamp": ts}]
        assert [m["text"] for m in control.messages("bcm-exercises")] == ["declared"]
        assert control.pins("C0EXERCISE") == [ts]
        assert control.channel("C0EXERCISE")["members"] == [BOT_USER_ID]

        control.clear()
        assert control.calls == []
        control.reset()
        assert control.messages("C0EXERCISE") == []


def test_control_api_reports_bad_requests(standin_process: str) -> None:
    """Unknown failure kinds and unknown channels come back as errors naming the problem."""
    with StandInControl(standin_process) as control:
        with pytest.raises(RuntimeError, match=r"answered 400: unknown failure kind 'explode'"):
            control._post("inject", {"kind": "explode"})
        with pytest.raises(RuntimeError, match=r"answered 404: no channel 'nowhere'"):
            control.messages("nowhere")


# -- hygiene --------------------------------------------------------------------------------------


def test_start_and_stop_leave_no_resource_warning() -> None:
    """Serving, dropping a connection and stopping leaks no socket (no ResourceWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with SlackStandIn(channels=CHANNELS) as standin:
            client = WebClient(token=TOKEN, base_url=standin.base_url, retry_handlers=[])
            client.chat_postMessage(channel="C0EXEC", text="x")
            standin.drop_connections(times=1)
            with pytest.raises(RemoteDisconnected):
                client.auth_test()
        standin.stop()  # a second stop is harmless
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
