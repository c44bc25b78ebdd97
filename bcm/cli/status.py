"""Where runs stand: ``status`` (one run) and ``runs`` (recent runs), and the store as commands open it.

An incident commander reads this under pressure: every wait says who may answer and the exact
command, an interrupted run says how to go on, data is printed literally, and a store that cannot
be used is one line and exit 2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bcm import corrective
from bcm.cli.output import JsonOption, echo, escape, fail, out, print_json
from bcm.config import Settings, load_settings
from bcm.durations import format_duration
from bcm.engine.liveness import ACTIVE, assess, shown_status
from bcm.engine.status import run_document
from bcm.errors import StoreUnavailable
from bcm.store import RunRecord, Store

RunArgument = Annotated[str, typer.Argument(help="The run id (the 8-character short id is enough).")]
#: The colour of a run's status in ``bcm status`` (others: cyan).
STATUS_COLOURS = {"succeeded": "green", "failed": "red", "waiting": "yellow", "interrupted": "bold red"}


def open_store(settings: Settings, *, write: bool = False) -> Store:
    """The store, or one line and exit 2 when it cannot be used (``write``: nor written)."""
    try:
        store = Store.open(settings.database_url)
        if write:
            store.check_writable()
    except StoreUnavailable as exc:
        fail(str(exc))
    return store


def print_run(store: Store, run_ref: str, *, json_out: bool, library_root: Path) -> str:
    """Print where a run stands (or its JSON document); return the status people see."""
    doc = run_document(store, store.get_run(run_ref), library_root=library_root)
    actions, today = store.list_actions(run_id=doc["run"]["id"]), corrective.today()
    doc["corrective_actions"] = [corrective.action_json(a, today) for a in actions]
    if json_out:
        print_json(doc, default=str)
        return str(doc["run"]["status"])
    run = doc["run"]
    colour = STATUS_COLOURS.get(run["status"], "cyan")
    took = format_duration(timedelta(seconds=run["duration_s"])) if run["duration_s"] is not None else "-"
    out.print(
        f"[bold]{escape(run['title'])}[/] ({escape(run['runbook'])}) run [bold]{run['short_id']}[/] — "
        f"{run['mode']} — [{colour}]{run['status']}[/] — {took}"
    )
    if run["interrupted"]:
        out.print(
            f"[bold red]interrupted[/]: {escape(run['interrupted'])} — run `bcm resume {run['short_id']}` to go on"
        )
    if run["error"]:
        out.print(f"[red]{escape(run['error'])}[/]")
    out.print(_steps_table(doc["steps"]))
    out.print(_timeline_table(doc["milestones"]))
    if doc["exercise"] is not None:
        out.print(_injects_table(doc["exercise"], doc["injects"]))
    _print_waiting(doc["waiting_on"])
    _print_messages(doc["messages"])
    for action in actions:  # the run's corrective actions (bcm actions), overdue ones flagged
        marker = corrective.overdue_marker(action.status, action.due_on, today)
        out.print(
            f"{action.ref} {action.status}, {escape(action.owner)}, due {action.due_on.isoformat()}"
            + (f" [bold red]{marker}[/]" if marker else "")
            + f": {escape(action.action)}"
        )
    return str(run["status"])


def _steps_table(steps: list[dict[str, Any]]) -> Table:
    table = Table(title="Steps")
    for column in ("phase", "step", "kind", "status", "attempts", "started (UTC)", "took", "by / why"):
        table.add_column(column)
    for step in steps:
        took_s = step["duration_s"]
        why = step["error"] or step["reason"] or ""
        if step["actor"]:
            why = f"by {step['actor']}" + (f": {step['note']}" if step["note"] else "")
        table.add_row(
            step["phase"],
            escape(step["id"]),
            step["kind"],
            step["status"],
            str(step["attempts"]),
            (step["started_at"] or "-")[11:19],
            format_duration(timedelta(seconds=took_s)) if took_s is not None else "-",
            escape(why),
        )
    return table


def _timeline_table(milestones: list[dict[str, Any]]) -> Table:
    timeline = Table(title="Timeline")
    timeline.add_column("milestone")
    timeline.add_column("at (UTC)")
    timeline.add_column("source")
    for mark in milestones:
        timeline.add_row(mark["milestone"], mark["at"][:19].replace("T", " "), escape(mark["source"]))
    return timeline


def _injects_table(exercise: dict[str, Any], injects: list[dict[str, Any]]) -> Table:
    """An exercise run's injects: when each was due and delivered (or why it was skipped)."""
    endex = f"ENDEX {exercise['endex'][11:19]} ({exercise['ended_by']})" if exercise["endex"] else "no ENDEX yet"
    table = Table(
        title=f"Injects of exercise {escape(exercise['id'])} at speed {exercise['speed']:g}: "
        f"STARTEX {exercise['startex'][11:19]}, {endex}"
    )
    for column in ("#", "due (UTC)", "at (UTC)", "to", "delivery", "status", "message / why"):
        table.add_column(column)
    for inject in injects:
        table.add_row(
            str(inject["number"]),
            inject["due_at"][11:19],
            inject["at"][11:19],
            escape(inject["recipient"]),
            inject["delivery"],
            inject["status"],
            escape(inject["reason"] or inject["message"]),
        )
    return table


def _print_waiting(waiting_on: list[dict[str, Any]]) -> None:
    """Each step the run waits on: who may answer and the command, or the decision it has yet to take."""
    for waiting in waiting_on:
        holders = ", ".join(waiting["holders"]) or "nobody in the catalog"
        role = waiting["role"] or "a person"
        decided = waiting["decided"]
        if decided:
            out.print(
                f"[yellow]{escape(waiting['step'])}[/]: {escape(decided['decision'])} by {escape(decided['by'])}; "
                f"the run takes it when it goes on"
            )
            continue
        out.print(
            f"[yellow]waiting on {escape(waiting['step'])}[/] since {(waiting['since'] or '-')[11:19]} UTC: "
            f"{escape(role)} ({escape(holders)}) may answer: {escape(waiting['command'])}"
        )


def _print_messages(messages: dict[str, Any]) -> None:
    pending, failed = len(messages["pending"]), len(messages["failed"])
    out.print(f"messages: {messages['delivered']} delivered, {pending} pending, {failed} failed")
    for message in messages["failed"]:
        key, error = escape(message["key"]), escape(message["error"] or "")
        out.print(f"[red]message {key} ({message['kind']}) not delivered: {error}[/]")
    if messages["pending"]:
        first = messages["pending"][0]
        out.print(
            f"[yellow]pending since: {escape(first['last_error'] or 'not tried yet')}[/]: `bcm outbox flush` retries"
        )


def status_cmd(run: RunArgument, json_out: JsonOption = False) -> None:
    """Where a run stands: steps, milestones, who may answer what it waits on, whether it is interrupted."""
    settings = load_settings()
    with open_store(settings) as store:
        print_run(store, run, json_out=json_out, library_root=settings.runbooks)


def runs_cmd(
    active: Annotated[bool, typer.Option("--active", help="Only runs still running, waiting or interrupted.")] = False,
    runbook: Annotated[str | None, typer.Option("--runbook", help="Only runs of this runbook id.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="real or exercise.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Runs started from this date or ISO time (UTC when no offset).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs, newest first.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """Recent runs: id, runbook, mode, status (interrupted ones shown as such), started, waiting on whom."""
    if mode is not None and mode not in ("real", "exercise"):
        fail(f"--mode {mode}: use real or exercise")
    if limit < 1:
        fail(f"--limit {limit}: give a positive number")
    start = _parse_since(since) if since else None
    settings = load_settings()
    with open_store(settings) as store:
        records = store.list_runs(
            runbook_id=runbook,
            mode=mode,
            since=start,
            limit=limit,
            statuses=ACTIVE if active else None,
        )
        rows = [_run_row(store, record, settings) for record in records if record.source == "engine"]
    if json_out:
        print_json({"runs": rows})
        return
    if not rows:
        echo("no runs" + (" still active" if active else "") + " match")
        return
    table = Table(title="Runs (newest first)")
    for column in ("run", "runbook", "mode", "status", "started (UTC)", "waiting on"):
        table.add_column(column)
    for row in rows:
        status = row["status"]
        shown = f"[bold red]{status}[/] — bcm resume {row['short_id']}" if status == "interrupted" else status
        table.add_row(
            row["short_id"],
            escape(row["runbook"]),
            row["mode"],
            shown,
            row["started_at"][:19].replace("T", " "),
            escape("; ".join(f"{w['step']} ({w['role']}: {', '.join(w['holders'])})" for w in row["waiting_on"])),
        )
    out.print(table)


def _run_row(store: Store, record: RunRecord, settings: Settings) -> dict[str, Any]:
    """One run as ``bcm runs --json`` shows it."""
    liveness = assess(record)
    waiting: list[dict[str, Any]] = []
    if record.status in ACTIVE:
        waiting = run_document(store, record, library_root=settings.runbooks)["waiting_on"]
    return {
        "id": record.id,
        "short_id": record.short_id,
        "runbook": record.runbook_id,
        "mode": record.mode,
        "status": shown_status(record, liveness),
        "interrupted": liveness.why if liveness.interrupted else None,
        "started_at": record.started_at.isoformat(),
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
        "triggered_by": record.triggered_by,
        "waiting_on": [{"step": w["step"], "role": w["role"], "holders": w["holders"]} for w in waiting],
    }


def _parse_since(text: str) -> datetime:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value + ("T00:00:00" if len(value) == 10 else ""))
    except ValueError:
        fail(f"--since {text}: not a date or time: write 2026-01-31 or 2026-01-31T09:00:00+00:00")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
