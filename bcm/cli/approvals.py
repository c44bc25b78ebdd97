"""What people record in a run from the command line: ``approve`` (a decision) and ``mark`` (a milestone).

Both are recorded with their time and audited; a run takes a decision from the store within a
second, and a run whose runner died takes it, with that time, when resumed (``bcm approve`` says so).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import typer

from bcm.cli.output import echo, fail
from bcm.cli.status import RunArgument, open_store
from bcm.config import load_settings
from bcm.engine.approvals import decide, record_mark
from bcm.engine.liveness import assess
from bcm.incidents import parse_time
from bcm.store import Store
from bcm.vocabulary import MILESTONES

#: How long ``bcm approve`` waits to see the run take the decision before saying it is recorded.
TAKEN_WAIT_S = 5.0


def approve_cmd(
    run: RunArgument,
    step: Annotated[str, typer.Argument(help="The approve or manual step.")],
    by: Annotated[str, typer.Option("--by", help="Who decides: name, Slack user id or email.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject (or, for manual steps: could not do it).")] = False,
    note: Annotated[str | None, typer.Option("--note", help="A note kept with the decision.")] = None,
) -> None:
    """Approve or reject a step the run waits on (only a holder of the step's role may).

    The decision is recorded with its time; the run takes it within a second, and a run whose
    runner died takes it, with that time, when resumed.
    """
    settings = load_settings()
    with open_store(settings) as store:
        record, _, approval = decide(
            store, run, step, who=by, approve=not reject, note=note, library_root=settings.runbooks
        )
        echo(f"{approval.decision} by {approval.by} at {approval.at:%H:%M:%S} UTC: run {record.short_id} step {step}")
        say_if_run_cannot_take_it(store, record.id, step)


def say_if_run_cannot_take_it(store: Store, run_id: str, step_id: str) -> None:
    """After a decision or mark: say so when no live runner will pick it up (and how to go on)."""
    deadline = time.monotonic() + TAKEN_WAIT_S
    while True:
        found = store.get_step(run_id, step_id)
        if found is None or found.status != "waiting":
            return  # the run took it (and may have finished because of it)
        record = store.get_run(run_id)
        liveness = assess(record)
        if liveness.state != "alive":
            why = liveness.why or f"its status is {record.status}"
            echo(
                f"run {record.short_id} is not running ({why}); the decision is recorded with its time: "
                f"`bcm resume {record.short_id}` continues the run with it",
                stderr=True,
            )
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def mark_cmd(
    run: RunArgument,
    milestone: Annotated[str, typer.Argument(help=f"One of: {', '.join(MILESTONES)}.")],
    by: Annotated[str, typer.Option("--by", help="Who records it: name, Slack user id or email.")],
    at: Annotated[
        str | None, typer.Option("--at", help="When it happened, ISO 8601 with offset (default: now).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="How it is known, kept in the audit trail.")] = None,
) -> None:
    """Record a milestone by hand (the commander, deputy, scribe or the runbook's owner); audited."""
    when: datetime | None = None
    if at is not None:
        try:
            when = parse_time(at)
        except ValueError as exc:
            fail(f"--at {at}: {exc}")
    settings = load_settings()
    with open_store(settings) as store:
        record, mark = record_mark(store, run, milestone, who=by, at=when, note=note, library_root=settings.runbooks)
    echo(f"{mark.milestone} at {mark.at:%Y-%m-%d %H:%M:%S} UTC recorded on run {record.short_id} ({mark.source})")
