"""Runs talking to Slack (the stand-in, over HTTP): channel, board, thread, buttons, cadence.

Runs during Slack outages: test_slack_outage_runs.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from bcm.cli.slack_app import create_app
from bcm.comms.slack import sign_request
from bcm.config import load_settings
from bcm.testing.slack_standin import SlackStandIn
from tests.comms.conftest import TOKEN
from tests.conftest import FIXTURES
from tests.engine.conftest import BcmEnv, engine_runbook, join_checked

pytestmark = pytest.mark.prefect
SECRET = "signing-secret-for-tests"


@pytest.fixture
def slack_env(bcm_env: BcmEnv, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> BcmEnv:
    """The bcm environment with a Slack bot token and the stand-in as Slack's API."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("BCM_SLACK_API_URL", slack.base_url)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("BCM_RUNBOOKS", str(FIXTURES / "engine"))  # a valid library: the slash command loads it
    return bcm_env


@pytest.fixture
def interactivity(slack_env: BcmEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[Any]]]:
    """`bcm slack serve`'s app on a free port (real HTTP); yields its URL and the runs it triggered."""
    triggered: list[Any] = []

    def trigger(runbook: str, parameters: dict[str, str], **kw: Any) -> None:
        triggered.append((runbook, parameters, kw))

    app = create_app(settings=load_settings(), signing_secret=SECRET, trigger=trigger)
    with serving(app) as url:
        yield url, triggered


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port, as `bcm slack serve` does; yield its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def post_signed(url: str, body: str, *, timestamp: int | None = None, signature: str | None = None) -> httpx.Response:
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature or sign_request(SECRET, body.encode(), ts),
    }
    return httpx.post(url, content=body.encode(), headers=headers, timeout=10)


def click(base: str, message: dict[str, Any], channel: str, user: str, action_id: str) -> httpx.Response:
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    button = next(e for e in actions["elements"] if e["action_id"] == action_id)
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"channel_id": channel, "message_ts": message["ts"]},
        "actions": [{"action_id": action_id, "value": button["value"]}],
    }
    return post_signed(f"{base}/slack/interactivity", urllib.parse.urlencode({"payload": json.dumps(payload)}))


def wait_for(predicate: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_real_run_opens_channel_pins_board_and_is_approved_by_button(
    slack_env: BcmEnv, slack: SlackStandIn, interactivity: tuple[str, list[Any]]
) -> None:
    """A real run opens its channel, pins a board edited in place, threads step updates, escapes
    parameters, and a button click by the commander resumes it; anyone else is refused."""
    base, _ = interactivity
    run_id = "5a" * 16
    channel_name = f"inc-{run_id[:8]}-voice"

    def people() -> None:
        slack_env.wait_for_step(run_id, "failover", "waiting")
        request = wait_for(
            lambda: next((m for m in slack.messages(channel_name) if "Approval needed" in m["text"]), None)
        )
        channel_id = slack.channel(channel_name)["id"]
        assert click(base, request, channel_id, "U01ALAN", "bcm_approve").status_code == 200
        refusal = wait_for(lambda: slack.ephemerals(channel_name), timeout=10)
        assert refusal[0]["user"] == "U01ALAN"
        assert refusal[0]["text"].startswith(":no_entry: U01ALAN does not hold the role incident_commander")
        assert click(base, request, channel_id, "U01ADA", "bcm_approve").status_code == 200

    helper = slack_env.in_background(people)
    state, _ = slack_env.run(engine_runbook("slack-demo"), run_id=run_id, parameters={"site": "<!channel> lon"})
    join_checked(helper)
    assert state.is_completed()
    assert slack_env.steps(run_id)["failover"].actor == "Ada Lovelace"

    info = slack.channel(channel_name)
    assert info["topic"]["value"] == f"SEV1 Voice outage — run {run_id[:8]} — bcm status {run_id[:8]}"
    assert {"U01ADA", "U01GRACE", "U01ALAN", "U01BARB"} <= set(info["members"])
    messages = slack.messages(channel_name)
    board = messages[0]
    assert slack.pins(channel_name) == [board["ts"]]
    assert "SUCCEEDED" in json.dumps(board["blocks"])  # edited in place up to the end
    assert len([c for c in slack.calls_to("chat.update") if c.delivered]) >= 3
    thread = [m["text"] for m in messages if m.get("thread_ts") == board["ts"] and m["ts"] != board["ts"]]
    assert thread[-1] == f"Run {run_id[:8]} succeeded"
    assert any(t.startswith(":white_check_mark: `reroute`") for t in thread)
    request = next(m for m in messages if m["text"] == "failover: approved by Ada Lovelace")  # edited: who decided
    assert "*approved* by Ada Lovelace" in json.dumps(request["blocks"])
    exec_posts = [m["text"] for m in slack.messages("exec-bridge")]
    assert exec_posts == ["Voice down at &lt;!channel&gt; lon. Next update in 30 minutes."]
    # `/bcm status` answers with the status board.
    body = urllib.parse.urlencode({"command": "/bcm", "text": f"status {run_id[:8]}", "user_id": "U01ADA"})
    board_answer = post_signed(f"{base}/slack/commands", body).json()["text"]
    assert board_answer.startswith(":white_check_mark: *SUCCEEDED*")
    assert ":white_check_mark: `failover`  — succeeded" in board_answer
    assert "by Ada Lovelace" in board_answer
    # The bot token appears nowhere bcm writes: store, audit, outbox, Prefect artifacts.
    from prefect import get_client

    with slack_env.store() as store:
        written = json.dumps(store.export_audit(), default=str)
        written += json.dumps([(m.payload, m.result, m.last_error) for m in store.list_messages()], default=str)
    with get_client(sync_client=True) as client:
        written += json.dumps([a.data for a in client.read_artifacts()], default=str)
    assert TOKEN not in written


def test_bad_signature_stale_and_replayed_requests_are_rejected(interactivity: tuple[str, list[Any]]) -> None:
    """Wrong signature, a timestamp over five minutes old and a replay all get 401."""
    base, triggered = interactivity
    body = urllib.parse.urlencode({"command": "/bcm", "text": "status nothing", "user_id": "U01ADA"})
    assert post_signed(f"{base}/slack/commands", body, signature="v0=" + "0" * 64).status_code == 401
    stale = int(time.time()) - 600
    assert post_signed(f"{base}/slack/commands", body, timestamp=stale).status_code == 401
    ts = int(time.time())
    signature = sign_request(SECRET, body.encode(), ts)
    first = post_signed(f"{base}/slack/commands", body, timestamp=ts, signature=signature)
    assert first.status_code == 200
    assert first.json()["text"].startswith(":no_entry: no run has an id starting with 'nothing'")
    replay = post_signed(f"{base}/slack/commands", body, timestamp=ts, signature=signature)
    assert (replay.status_code, replay.text) == (401, "replayed request")
    assert triggered == []


def test_slash_command_triggers_a_run(interactivity: tuple[str, list[Any]]) -> None:
    """`/bcm run slack-demo site=lon` from the commander starts a run; others may only exercise."""
    base, triggered = interactivity
    body = urllib.parse.urlencode({"command": "/bcm", "text": "run slack-demo site=lon", "user_id": "U01ADA"})
    answer = post_signed(f"{base}/slack/commands", body).json()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":rocket: Starting real run `")
    runbook, parameters, kw = triggered[0]
    assert (runbook.endswith("slack-demo.yaml"), parameters, kw["mode"], kw["triggered_by"]) == (
        True,
        {"site": "lon"},
        "real",
        "slack:U01ADA",
    )
    short = kw["run_id"][:8]
    assert answer["text"] == f":rocket: Starting real run `{short}` of *Voice outage*. `/bcm status {short}` shows it."
    body = urllib.parse.urlencode({"command": "/bcm", "text": "run slack-demo site=lon", "user_id": "U01BARB"})
    refused = post_signed(f"{base}/slack/commands", body).json()["text"]
    assert refused == (
        ":no_entry: only holders of incident_commander, voice_ops can start a real run of slack-demo; try --exercise"
    )
    body = urllib.parse.urlencode({"command": "/bcm", "text": "run slack-demo", "user_id": "U01ADA"})
    missing = post_signed(f"{base}/slack/commands", body).json()["text"]
    assert missing == ":no_entry: missing required parameter 'site' (Affected site): give it with -p site=VALUE"
    assert len(triggered) == 1


def test_cadence_reminder_tells_the_commander_when_the_last_update_went_out(
    slack_env: BcmEnv, slack: SlackStandIn
) -> None:
    """No stakeholder update within the cadence: the commander gets a reminder naming the last update."""
    state, _ = slack_env.run(engine_runbook("cadence"))
    assert state.is_completed()
    reminders = [c for c in slack.calls_to("chat.postMessage") if c.params["text"].startswith("No stakeholder update")]
    assert reminders, "no reminder was sent"
    assert {c.params["channel"] for c in reminders} == {"U01ADA"}  # the commander, directly
    assert "the last went out at" in reminders[0].params["text"]
    assert "(declare)" in reminders[0].params["text"]


def test_slash_command_starts_a_real_background_run(slack_env: BcmEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no deployment for the runbook, `/bcm run` starts `bcm run` in the background; the run happens."""
    from bcm.cli.slack import trigger_run

    monkeypatch.setenv("PREFECT_API_URL", slack_env.api_url)  # the background process uses the test server
    app = create_app(settings=load_settings(), signing_secret=SECRET, trigger=trigger_run)
    with serving(app) as url:
        body = urllib.parse.urlencode({"command": "/bcm", "text": "run cadence --exercise", "user_id": "U01BARB"})
        answer = post_signed(f"{url}/slack/commands", body).json()["text"]
        assert answer.startswith(":rocket: Starting exercise run `")
        short = answer.split("`")[1]

        def finished() -> Any:
            if not (slack_env.home / "bcm.db").exists():
                return None
            with slack_env.store() as store:
                runs = [r for r in store.list_runs() if r.short_id == short and r.status == "succeeded"]
            return runs[0] if runs else None

        run = wait_for(finished, timeout=90)
    assert (run.runbook_id, run.mode, run.triggered_by) == ("cadence", "exercise", "slack:U01BARB")
