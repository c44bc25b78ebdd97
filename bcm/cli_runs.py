"""The commands of a run's life: ``run``, ``resume``, ``status``, ``runs``, ``approve``, ``mark``, ``check``.

Registered on the ``bcm`` app by ``bcm.cli`` (which imports this module last, so the shared
consoles and helpers below exist). An incident commander reads this output under pressure: every
wait says what it waits for, every person step says who may answer and the exact command, data is
printed literally (no markup, no emoji), and a store or server that cannot be used is one line
and exit 2 before any run is announced.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bcm import clock
from bcm.cli import _dry_run, _parse_params, _prefect_environment, err, fail, out
from bcm.config import Settings, load_settings
from bcm.durations import format_duration
from bcm.engine.liveness import ACTIVE, assess, shown_status
from bcm.errors import BcmError, InputError, StoreUnavailable
from bcm.incidents import parse_time
from bcm.spec import load_one
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.problems import display_path
from bcm.store import Store
from bcm.vocabulary import MILESTONES

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
RunArgument = Annotated[str, typer.Argument(help="The run id (the 8-character short id is enough).")]
#: How often the progress display reads the store, in seconds.
PROGRESS_POLL_S = 0.3
#: How long ``bcm approve`` waits to see the run take the decision before saying it is recorded.
TAKEN_WAIT_S = 5.0
STARTING_SERVER = "starting Prefect's embedded server (8-15 s; set PREFECT_API_URL to use a running one)"
#: Milestones ``bcm run`` takes at trigger time.
TRIGGER_TIMES = ("impact_started", "detected")


# --------------------------------------------------------------------------- shared


def open_store(settings: Settings, *, write: bool = False) -> Store:
    """The store, or one line and exit 2 when it cannot be used (``write``: nor written)."""
    try:
        store = Store.open(settings.database_url)
        if write:
            store.check_writable()
    except StoreUnavailable as exc:
        fail(str(exc))
    return store


def run_flow(call: Callable[[], Any], *, quiet: bool) -> Any:
    """Run a flow call: the embedded server started first (saying so), Prefect's heartbeat off."""
    _prefect_environment()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.server import EmbeddedServerError, embedded, start_embedded_server

    if embedded():
        try:
            with _spinner(STARTING_SERVER, quiet):
                start_embedded_server()
        except EmbeddedServerError as exc:
            fail(
                f"Prefect's embedded server did not start: {exc}. The machine may be overloaded: try again, or "
                "start a server (`prefect server start`) and set PREFECT_API_URL"
            )
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        try:
            return call()
        except RuntimeError as exc:
            if "Failed to reach API" not in str(exc):
                raise
            url = os.environ.get("PREFECT_API_URL", "")
            raise InputError(
                f"cannot reach the Prefect server at {url}: start it (`prefect server start`) or unset "
                "PREFECT_API_URL to use Prefect's embedded server"
            ) from None


@contextmanager
def _spinner(text: str, quiet: bool) -> Iterator[None]:
    if quiet:
        yield
    elif err.is_terminal:
        with err.status(escape(text)):
            yield
    else:
        err.print(text + " ...", markup=False)
        yield


class Progress:
    """Prints each step as it starts, waits and ends, read from the store while the run goes on.

    Reading the store (not hooking the runner) shows the same thing whoever runs the steps, and
    costs the run nothing.
    """

    def __init__(self, settings: Settings, run_id: str, loaded: LoadedRunbook, catalog: Catalog) -> None:
        self.settings = settings
        self.run_id = run_id
        self.loaded = loaded
        self.catalog = catalog
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bcm-progress")

    def __enter__(self) -> Progress:
        self.store = Store.open(self.settings.database_url)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._show()  # the last changes
        self.store.close()

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_POLL_S):
            self._show()

    def _show(self) -> None:
        try:
            steps = self.store.get_steps(self.run_id)
        except BcmError:
            return  # the store is busy: the next poll shows it
        for step in steps:
            if self.seen.get(step.step_id) == step.status:
                continue
            self.seen[step.step_id] = step.status
            err.print(self._line(step), markup=False, highlight=False)

    def _line(self, step: Any) -> str:
        where = f"{step.phase}/{step.step_id}"
        if step.status == "running":
            return f"  started   {where}"
        if step.status == "waiting":
            return f"  waiting   {where}: {who_may_answer(self.loaded, self.catalog, step.step_id)}\n" + (
                f"            answer with: bcm approve {self.run_id[:8]} {step.step_id} --by YOU [--reject]"
            )
        took = f" in {format_duration(step.duration)}" if step.duration is not None else ""
        detail = step.error or step.reason or (f"by {step.actor}" if step.actor else "")
        return f"  {step.status:<9} {where}{took}" + (f": {detail}" if detail else "")


def who_may_answer(loaded: LoadedRunbook, catalog: Catalog, step_id: str) -> str:
    """``incident_commander (Ada Lovelace, Grace Hopper) may answer`` for a person step."""
    try:
        role_id = loaded.runbook.step(step_id).person_role
    except KeyError:
        return "a person"
    role = catalog.roles.get(role_id or "")
    if role is None:
        return f"{role_id} may answer"
    names = ", ".join(p.name for p in [*role.members, *role.alternates])
    return f"{role_id} ({names}) may answer"


def print_run(store: Store, run_ref: str, *, json_out: bool, library_root: Path) -> str:
    """Print where a run stands (or its JSON document); return the status people see."""
    from bcm.engine.status import run_document

    doc = run_document(store, store.get_run(run_ref), library_root=library_root)
    if json_out:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return str(doc["run"]["status"])
    run = doc["run"]
    colour = {"succeeded": "green", "failed": "red", "waiting": "yellow", "interrupted": "bold red"}.get(
        run["status"], "cyan"
    )
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
    table = Table(title="Steps")
    for column in ("phase", "step", "kind", "status", "attempts", "started (UTC)", "took", "by / why"):
        table.add_column(column)
    for step in doc["steps"]:
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
    out.print(table)
    timeline = Table(title="Timeline")
    timeline.add_column("milestone")
    timeline.add_column("at (UTC)")
    timeline.add_column("source")
    for mark in doc["milestones"]:
        timeline.add_row(mark["milestone"], mark["at"][:19].replace("T", " "), escape(mark["source"]))
    out.print(timeline)
    for waiting in doc["waiting_on"]:
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
    messages = doc["messages"]
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
    return str(run["status"])


def _known_times(impact_started: str | None, detected: str | None) -> dict[str, datetime]:
    """``--impact-started`` and ``--detected`` as aware times, checked like ``bcm incident record``."""
    given = {"impact_started": impact_started, "detected": detected}
    times: dict[str, datetime] = {}
    for name, text in given.items():
        if text is None:
            continue
        option = "--" + name.replace("_", "-")
        try:
            times[name] = parse_time(text)
        except ValueError as exc:
            fail(f"{option} {text}: {exc}")
        if times[name] > clock.now() + timedelta(minutes=1):
            fail(f"{option} {text}: is in the future; give the time it happened")
    if "impact_started" in times and "detected" in times and times["detected"] < times["impact_started"]:
        fail(
            f"--detected {detected} is before --impact-started {impact_started}: "
            "a disruption is detected after it starts"
        )
    return times


# --------------------------------------------------------------------------- commands


def run_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")] = None,
    mode: Annotated[str, typer.Option(help="real or exercise.")] = "real",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan with rendered templates.")] = False,
    json_out: JsonOption = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who triggers the run (default: $USER).")] = None,
    impact_started: Annotated[
        str | None,
        typer.Option("--impact-started", help="When the disruption began, ISO 8601 with offset (2026-05-01T09:00Z)."),
    ] = None,
    detected: Annotated[
        str | None, typer.Option("--detected", help="When it was detected, ISO 8601 with offset.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", hidden=True, help="Use this run id (Slack trigger).")
    ] = None,
) -> None:
    """Run a runbook: a Prefect flow run whose steps are tasks; shows progress, then the timeline."""
    from bcm.engine.runner import new_run_id
    from bcm.spec.params import resolve_parameters

    if mode not in ("real", "exercise"):
        fail(f"--mode {mode}: use real or exercise")
    if auto_approve and mode != "exercise":
        fail("--auto-approve is only for exercise mode: in a real disruption people approve")
    settings = load_settings()
    loaded, catalog = load_one(runbook, library_root=settings.runbooks)
    given = _parse_params(param or [])
    values, problems = resolve_parameters(loaded.runbook, given)
    if problems:
        fail("\n".join(f"{display_path(loaded.path)}: {p}" for p in problems))
    times = _known_times(impact_started, detected)
    who = by or os.environ.get("USER") or "unknown"
    if dry_run:
        _dry_run(loaded, catalog, values, mode, who, json_out=json_out)
        return
    open_store(settings, write=True).close()
    run_id = run_id or new_run_id()
    if not json_out:
        err.print(
            f"run {run_id[:8]} of {loaded.runbook.id} ({mode}) starting; `bcm status {run_id[:8]}` shows it",
            markup=False,
        )
    from flows.runbook import run_runbook

    def call() -> Any:
        return run_runbook(
            runbook=str(loaded.path),
            parameters=given,
            mode=mode,
            triggered_by=who,
            auto_approve=auto_approve,
            run_id=run_id,
            known_times={name: at.isoformat() for name, at in times.items()},
            return_state=True,
        )

    _run_and_report(settings, run_id, loaded, catalog, call, json_out=json_out)


def _run_and_report(
    settings: Settings,
    run_id: str,
    loaded: LoadedRunbook,
    catalog: Catalog,
    call: Callable[[], Any],
    *,
    json_out: bool,
) -> None:
    if json_out:
        run_flow(call, quiet=True)
    else:
        with Progress(settings, run_id, loaded, catalog):
            run_flow(call, quiet=False)
    with open_store(settings) as store:
        status = print_run(store, run_id, json_out=json_out, library_root=settings.runbooks)
    raise typer.Exit(0 if status == "succeeded" else 1)


def resume_cmd(
    run: RunArgument,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")] = False,
    take_over: Annotated[
        bool,
        typer.Option(
            "--take-over", help="Go on even when a step's last attempt ran on another host (make sure it stopped)."
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Continue an interrupted or failed run: finished steps are kept, with their true times."""
    from bcm.engine.runner import stop_leftover_attempts

    settings = load_settings()
    with open_store(settings, write=True) as store:
        record = store.get_run(run)
        if record.status == "succeeded":
            fail(f"run {record.short_id} finished already ({record.status}): nothing to resume")
        if record.source != "engine":
            fail(f"run {record.short_id} was recorded by hand ({record.source}), not run by bcm: nothing to resume")
        if auto_approve and record.mode != "exercise":
            fail("--auto-approve is only for exercise mode: in a real disruption people approve")
        liveness = assess(record)
        if liveness.state == "alive":
            beat = f"{(clock.now() - (record.heartbeat_at or record.started_at)).total_seconds():.0f}s ago"
            fail(
                f"run {record.short_id} is still running: its runner ({record.runner}) gave a heartbeat {beat}. "
                f"`bcm status {record.short_id}` shows where it is"
            )
        loaded, catalog = load_one(record.runbook_path, library_root=settings.runbooks)
        if not json_out:
            was = liveness.why if liveness.interrupted else record.status
            err.print(f"resuming run {record.short_id} of {record.runbook_id} ({was})", markup=False)
        stop_leftover_attempts(
            store,
            record.id,
            take_over=take_over,
            report=lambda line: err.print(line, markup=False),
        )
    from flows.runbook import run_runbook

    def call() -> Any:
        return run_runbook(
            runbook=record.runbook_path,
            mode=record.mode,
            triggered_by=record.triggered_by,
            auto_approve=auto_approve,
            run_id=record.id,
            resume=True,
            take_over=take_over,
            return_state=True,
        )

    _run_and_report(settings, record.id, loaded, catalog, call, json_out=json_out)


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
    from bcm.engine.status import run_document

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
        rows: list[dict[str, Any]] = []
        for record in records:
            if record.source != "engine":
                continue
            liveness = assess(record)
            waiting: list[dict[str, Any]] = []
            if record.status in ACTIVE:
                waiting = run_document(store, record, library_root=settings.runbooks)["waiting_on"]
            rows.append(
                {
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
            )
    if json_out:
        sys.stdout.write(json.dumps({"runs": rows}, indent=2) + "\n")
        return
    if not rows:
        out.print("no runs" + (" still active" if active else "") + " match", markup=False)
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


def _parse_since(text: str) -> datetime:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value + ("T00:00:00" if len(value) == 10 else ""))
    except ValueError:
        fail(f"--since {text}: not a date or time: write 2026-01-31 or 2026-01-31T09:00:00+00:00")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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
    from bcm.engine.approvals import decide

    settings = load_settings()
    with open_store(settings) as store:
        record, _, approval = decide(
            store, run, step, who=by, approve=not reject, note=note, library_root=settings.runbooks
        )
        out.print(
            f"{approval.decision} by {approval.by} at {approval.at:%H:%M:%S} UTC: run {record.short_id} step {step}",
            markup=False,
        )
        say_if_run_cannot_take_it(store, record.id, step)


def say_if_run_cannot_take_it(store: Store, run_id: str, step_id: str) -> None:
    """After a decision or mark: say so when no live runner will pick it up (and how to go on)."""
    deadline = time.monotonic() + TAKEN_WAIT_S
    while True:
        record = store.get_run(run_id)
        liveness = assess(record)
        if liveness.state != "alive":
            why = liveness.why or f"it is {record.status}"
            err.print(
                f"run {record.short_id} is not running ({why}); the decision is recorded with its time: "
                f"`bcm resume {record.short_id}` continues the run with it",
                markup=False,
            )
            return
        found = store.get_step(run_id, step_id)
        if found is None or found.status != "waiting" or time.monotonic() > deadline:
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
    from bcm.engine.approvals import record_mark

    when: datetime | None = None
    if at is not None:
        try:
            when = parse_time(at)
        except ValueError as exc:
            fail(f"--at {at}: {exc}")
    settings = load_settings()
    with open_store(settings) as store:
        record, mark = record_mark(store, run, milestone, who=by, at=when, note=note, library_root=settings.runbooks)
    out.print(
        f"{mark.milestone} at {mark.at:%Y-%m-%d %H:%M:%S} UTC recorded on run {record.short_id} ({mark.source})",
        markup=False,
    )


def check_cmd(
    runbooks: Annotated[list[str] | None, typer.Argument(help="Runbook ids or paths (default: all).")] = None,
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Run prevention (readiness) steps and record pass/fail."""
    settings = load_settings()
    refs = [str(load_one(ref, library_root=settings.runbooks)[0].path) for ref in runbooks or []]
    given = _parse_params(param or [])
    open_store(settings, write=True).close()
    from flows.readiness import readiness_checks

    results = run_flow(lambda: readiness_checks(runbooks=refs or None, parameters=given), quiet=json_out)
    failed = [r for r in results if not r["ok"]]
    if json_out:
        sys.stdout.write(json.dumps({"ready": not failed, "checks": results}, indent=2) + "\n")
    else:
        table = Table(title="Readiness checks")
        for column in ("runbook", "check", "result", "detail"):
            table.add_column(column)
        for r in results:
            verdict = "[green]ready[/]" if r["ok"] else f"[red]{r['status']}[/]"
            table.add_row(escape(r["runbook"]), escape(r["step"]), verdict, escape(str(r["detail"])))
        out.print(table)
        out.print(f"{len(results) - len(failed)} of {len(results)} checks ready")
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    """Add the run commands to ``app``."""
    app.command("run")(run_cmd)
    app.command("resume")(resume_cmd)
    app.command("status")(status_cmd)
    app.command("runs")(runs_cmd)
    app.command("approve")(approve_cmd)
    app.command("mark")(mark_cmd)
    app.command("check")(check_cmd)
