"""What the engine tells people, as :class:`Message` values with Block Kit and a fallback text.

Texts are rendered with the one sandboxed Jinja environment; values that come from parameters and
step output are escaped for Slack mrkdwn before they reach a template (see
:meth:`bcm.engine.context.RunContext.template_context`), so they cannot inject ``<!channel>`` or a
link. Exercise messages are prefixed ``[EXERCISE]``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from bcm.comms.notifier import Message, exercise_text
from bcm.durations import format_duration
from bcm.templates import ENV, escape_mrkdwn

ICONS = {
    "pending": ":white_circle:",
    "running": ":large_blue_circle:",
    "waiting": ":hourglass_flowing_sand:",
    "succeeded": ":white_check_mark:",
    "rejected": ":no_good:",
    "skipped": ":fast_forward:",
    "failed": ":x:",
    "timed_out": ":alarm_clock:",
    "cancelled": ":no_entry_sign:",
    "interrupted": ":warning:",
}


@lru_cache(maxsize=1)
def _board_template() -> Any:
    source = resources.files("bcm.comms").joinpath("templates/board.md.j2").read_text(encoding="utf-8")
    return ENV.from_string(source)


def header(text: str) -> dict[str, Any]:
    """A Block Kit header block (plain text, at most 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def section(text: str) -> dict[str, Any]:
    """A Block Kit section with mrkdwn text (Slack's limit is 3000 characters)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> dict[str, Any]:
    """A Block Kit context line."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def board_text(board: dict[str, Any]) -> str:
    """The status board as mrkdwn, from ``board`` (see :meth:`bcm.engine.runner.Runner.board`)."""
    return str(_board_template().render(icon=lambda s: ICONS.get(s, ":grey_question:"), **board)).strip()


def board_message(key: str, kind: str, board: dict[str, Any], *, exercise: bool) -> Message:
    """The status board (posted and pinned, then edited in place)."""
    title = exercise_text(f"{board['runbook']['severity'].upper()} · {board['runbook']['title']}", exercise=exercise)
    body = board_text(board)
    return Message(
        key=key,
        run_id=board["run"]["id"],
        kind=kind,
        text=exercise_text(f"{board['runbook']['title']}: {board['run']['status']}", exercise=exercise),
        exercise=exercise,
        blocks=(header(title), section(body), context(f"bcm status {board['run']['short_id']}")),
    )


def approval_blocks(
    *, run_id: str, step_id: str, role: str, holders: str, prompt: str, approve: bool, title: str, exercise: bool
) -> tuple[dict[str, Any], ...]:
    """An approval (or manual task) request with buttons carrying the run and the step."""
    value = {"run": run_id, "step": step_id}
    if approve:
        buttons = [
            ("Approve", "bcm_approve", "primary", True),
            ("Reject", "bcm_reject", "danger", False),
        ]
    else:
        buttons = [("Done", "bcm_done", "primary", True), ("Cannot do it", "bcm_reject", "danger", False)]
    what = "Approval needed" if approve else "Task"
    return (
        header(exercise_text(f"{what}: {title}", exercise=exercise)),
        section(f"*{prompt}*\nFor *{role}* ({holders})"),
        {
            "type": "actions",
            "block_id": f"bcm:{run_id}:{step_id}",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": label},
                    "action_id": action,
                    "style": style,
                    "value": json.dumps({**value, "approved": approved}),
                }
                for label, action, style, approved in buttons
            ],
        },
        context(
            f"or: bcm approve {run_id[:8]} {step_id} --by YOU" + ("" if approve else " (--reject if it cannot be done)")
        ),
    )


def decision_blocks(
    *, prompt: str, decision: str, by: str, note: str | None, at: datetime
) -> tuple[dict[str, Any], ...]:
    """What an approval request becomes once decided: who decided, when, and the note."""
    icon = {"approved": ":white_check_mark:", "done": ":white_check_mark:", "rejected": ":x:"}.get(
        decision, ":alarm_clock:"
    )
    text = f"{icon} *{decision}* by {escape_mrkdwn(by)} at {at:%H:%M:%S} UTC"
    if note:
        text += f"\n> {escape_mrkdwn(note)}"
    return (section(f"*{prompt}*"), section(text))


def decision_message(
    *,
    run_id: str,
    step_id: str,
    prompt: str,
    decision: str,
    by: str,
    note: str | None,
    at: datetime,
    exercise: bool,
    target: dict[str, str] | None = None,
) -> Message:
    """The edit of an approval request once decided (by button, `bcm approve`, or a timeout).

    The key is the same whoever sends it, so the request is edited once.
    """
    return Message(
        key=f"{run_id}/{step_id}/decision",
        run_id=run_id,
        kind="decision",
        step_id=step_id,
        text=exercise_text(f"{step_id}: {decision} by {by}", exercise=exercise),
        exercise=exercise,
        blocks=decision_blocks(prompt=prompt, decision=decision, by=by, note=note, at=at),
        target=target or {"key": f"{run_id}/{step_id}/request"},
    )


def step_update_text(step_id: str, label: str, status: str, took: float | None, detail: str | None) -> str:
    """One line for the board's thread when a step changes."""
    line = f"{ICONS.get(status, '')} `{step_id}` {escape_mrkdwn(label)} — {status}"
    if took is not None:
        line += f" ({format_duration_s(took)})"
    if detail:
        line += f": {escape_mrkdwn(detail)[:500]}"
    return line


def format_duration_s(seconds: float) -> str:
    """Seconds as ``2m 5s``."""
    return format_duration(timedelta(seconds=seconds))
