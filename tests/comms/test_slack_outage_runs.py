"""Runs while Slack is unreachable or failing (a closed port, or the stand-in answering 503): the run
is not held up by retries, says so once, and every message arrives once and in order afterwards."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bcm.comms import message_counts
from bcm.store import OutboxRecord
from bcm.testing.slack_standin import SlackStandIn
from tests.comms.conftest import TOKEN, closed_port_url, http_attempts_that_failed, shown
from tests.conftest import FIXTURES, ROOT
from tests.engine.conftest import BcmEnv, join_checked

pytestmark = pytest.mark.prefect

STEPS_ONLY = """\
version: 1
id: steps-only
title: Steps only
owner: voice_ops
severity: sev3
phases:
  response:
    - {id: declare, notify: {to: [exec], message: "declared"}, marks: declared}
    - {id: work, run: [python3, -c, "import time; time.sleep(1)"]}
    - {id: done, notify: {to: [exec], message: "done"}, marks: recovered}
"""

# Five stakeholder updates with a second of work between them: Slack fails after the first.
OUTAGE = """\
version: 1
id: outage-mid-run
title: Incident with a Slack outage in the middle
owner: voice_ops
severity: sev2
phases:
  response:
    - {id: update-1, notify: {to: [exec], message: "update 1"}, marks: declared}
    - {id: work-1, wait: 1s}
    - {id: update-2, notify: {to: [exec], message: "update 2"}}
    - {id: work-2, wait: 1s}
    - {id: update-3, notify: {to: [exec], message: "update 3"}}
    - {id: work-3, wait: 1s, marks: mitigated}
    - {id: update-4, notify: {to: [exec], message: "update 4"}}
    - {id: work-4, wait: 1s}
    - {id: update-5, notify: {to: [exec], message: "update 5"}, marks: recovered}
"""


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A runbook folder with this module's runbooks and the fixture catalog."""
    folder = tmp_path / "library"
    shutil.copytree(FIXTURES / "catalog", folder / "catalog")
    (folder / "steps-only.yaml").write_text(STEPS_ONLY, encoding="utf-8")
    (folder / "outage-mid-run.yaml").write_text(OUTAGE, encoding="utf-8")
    return folder


@pytest.fixture
def slack_env(bcm_env: BcmEnv, slack: SlackStandIn, library: Path, monkeypatch: pytest.MonkeyPatch) -> BcmEnv:
    """The bcm environment with a Slack bot token, the stand-in as Slack's API and this module's library."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("BCM_SLACK_API_URL", slack.base_url)
    monkeypatch.setenv("BCM_RUNBOOKS", str(library))
    return bcm_env


def flush_cli(api_url: str) -> subprocess.CompletedProcess[str]:
    """`bcm outbox flush --json` as a process, on the test's bcm state, against ``api_url``."""
    env = {**os.environ, "BCM_SLACK_API_URL": api_url}
    return subprocess.run(
        [sys.executable, "-m", "bcm", "outbox", "flush", "--json"], capture_output=True, text=True, env=env, cwd=ROOT
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def check_flushed_once_in_order(slack: SlackStandIn, rows: list[OutboxRecord], flushed: dict[str, Any]) -> None:
    """`bcm outbox flush` delivered every message the run queued, once, in order: board edits
    collapse into the newest, thread replies under the board, the notify posts in exec-bridge."""
    edits = [r for r in rows if r.kind == "board_update"]
    assert flushed == {
        "delivered": len(rows) - (len(edits) - 1),
        "superseded": len(edits) - 1,
        "failed_now": 0,
        "pending": 0,
        "error": None,
        "failed": [],
        "exit_code": 0,
        "because": [],
    }
    posts = [r for r in rows if r.payload["op"] == "post"]
    assert [c.params["text"] for c in slack.calls_to("chat.postMessage")] == [r.payload["text"] for r in posts]
    assert [c.params["text"] for c in slack.calls_to("chat.update")] == [edits[-1].payload["text"]]
    assert [m["text"] for m in slack.messages("exec-bridge")] == ["declared", "done"]
    board, *replies = slack.messages("bcm-incidents")
    assert board["text"] == edits[-1].payload["text"]
    assert slack.pins("bcm-incidents") == [board["ts"]]
    assert [m["text"] for m in replies] == [r.payload["text"] for r in rows if r.kind == "thread"]
    assert {m["thread_ts"] for m in replies} == {board["ts"]}


def test_run_with_slack_refusing_connections_tries_slack_four_times(
    slack_env: BcmEnv, slack: SlackStandIn, bcm_logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused for the whole run: the run makes four HTTP attempts in all (the board's
    first delivery and the end-of-run flush, one retry each), logs one warning and no slack_sdk
    error; afterwards `bcm outbox flush` delivers every message once, in order."""
    monkeypatch.setenv("BCM_SLACK_API_URL", closed_port_url())
    run_id = "0b" * 16
    state, _ = slack_env.run("steps-only", run_id=run_id)
    assert state.is_completed()
    assert http_attempts_that_failed(bcm_logs) == 4
    warnings = shown(bcm_logs)
    assert [(name, level) for name, level, _ in warnings] == [("bcm.comms.outbox", "WARNING")]
    assert warnings[0][2].startswith("Slack is unreachable (chat.postMessage: URLError: <urlopen error [Errno 111]")
    with slack_env.store() as store:
        rows = store.list_messages(run_id=run_id)
    assert message_counts(rows) == {"delivered": 0, "superseded": 0, "pending": len(rows), "failed": 0}
    assert [(r.kind, r.attempts) for r in rows if r.attempts] == [("board", 2)]
    assert slack.calls == []

    result = flush_cli(slack.base_url)
    assert result.returncode == 0, result.stderr
    check_flushed_once_in_order(slack, rows, json.loads(result.stdout))


def test_run_with_slack_answering_503_makes_four_calls(
    slack_env: BcmEnv, slack: SlackStandIn, bcm_logs: list[logging.LogRecord]
) -> None:
    """Slack answering 503 for the whole run: the stand-in sees four calls from the run (two for
    the board, two for the end-of-run flush), one warning is logged; afterwards `bcm outbox flush`
    delivers every message once, in order."""
    slack.fail(status=503)
    run_id = "0c" * 16
    state, _ = slack_env.run("steps-only", run_id=run_id)
    assert state.is_completed()
    assert [(c.method, c.status) for c in slack.calls] == [("chat.postMessage", 503)] * 4
    assert [(name, level) for name, level, _ in shown(bcm_logs)] == [("bcm.comms.outbox", "WARNING")]
    with slack_env.store() as store:
        rows = store.list_messages(run_id=run_id)
    assert message_counts(rows) == {"delivered": 0, "superseded": 0, "pending": len(rows), "failed": 0}

    slack.recover()
    slack.clear()
    result = flush_cli(slack.base_url)
    assert result.returncode == 0, result.stderr
    check_flushed_once_in_order(slack, rows, json.loads(result.stdout))


def test_slack_outage_mid_run_loses_and_doubles_nothing(slack_env: BcmEnv, slack: SlackStandIn) -> None:
    """Slack answers 503 in the middle of a run until two more updates are queued: the run goes on,
    Slack is tried once (two calls) during the outage, and every message is delivered once, in
    order, by the end of the run (without `bcm outbox flush`)."""
    run_id = "0a" * 16

    def outage() -> None:
        wait_for(lambda: slack.messages("exec-bridge"))  # update 1 delivered
        slack.fail(status=503)
        wait_for(lambda: [c for c in slack.calls if not c.delivered])

        def update_3_queued() -> bool:
            with slack_env.store() as store:
                return any("/update-3/" in m.key for m in store.list_messages(run_id=run_id, status="pending"))

        wait_for(update_3_queued)
        slack.recover()

    helper = slack_env.in_background(outage)
    state, _ = slack_env.run("outage-mid-run", run_id=run_id)
    join_checked(helper)
    assert state.is_completed()
    assert [m["text"] for m in slack.messages("exec-bridge")] == [f"update {n}" for n in range(1, 6)]
    exec_posts = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "exec-bridge"]
    assert [(c.params["text"], c.status) for c in exec_posts if c.delivered] == [
        (f"update {n}", 200) for n in range(1, 6)
    ]
    assert [c.status for c in slack.calls if not c.delivered] == [503, 503]
    with slack_env.store() as store:
        counts = message_counts(store.list_messages(run_id=run_id))
    assert (counts["pending"], counts["failed"]) == (0, 0)
