"""``bcm obligations``: the deadline clocks of runs, and fulfilments recorded by hand.

(default)  every clock across runs (or one run): started, due, fulfilled, open / met / missed,
           time left or overdue; ``--json`` gives times as ISO 8601 with their offset
fulfil     record a fulfilment made outside a step: role-checked, audited

The clocks are computed by :func:`bcm.obligations.clocks.run_clocks` from the store's records; every
refusal is one line and exit 2.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Annotated

import typer
from rich.table import Table

from bcm import clock
from bcm.cli.output import JsonOption, Text, echo, escape, fail, out, print_json, resolve_timezone, seconds
from bcm.cli.status import open_store
from bcm.config import Settings, load_settings
from bcm.errors import BcmError
from bcm.obligations import ObligationCatalog
from bcm.obligations.clocks import Clock, run_clocks
from bcm.spec import load_one
from bcm.spec.catalog import Catalog
from bcm.spec.library import LoadedRunbook
from bcm.spec.problems import did_you_mean
from bcm.store import RunRecord, Store

group = typer.Typer(
    help="Deadline clocks (regulatory and contractual obligations) of runs; fulfilments recorded by hand.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

#: Roles that may record any obligation's fulfilment by hand, besides the obligation's owner role.
FULFILLING_ROLES = ("incident_commander",)
_CLOCK_SKEW = timedelta(minutes=1)


def _load(settings: Settings, run: RunRecord) -> tuple[LoadedRunbook, Catalog]:
    return load_one(run.runbook_path, library_root=settings.runbooks)


def _clocks(store: Store, settings: Settings, runs: list[RunRecord], now: datetime) -> list[tuple[RunRecord, Clock]]:
    found: list[tuple[RunRecord, Clock]] = []
    loaded: dict[str, tuple[LoadedRunbook, ObligationCatalog] | None] = {}
    for run in runs:
        if run.runbook_path not in loaded:
            try:
                read, library_catalog = _load(settings, run)
                loaded[run.runbook_path] = (read, ObligationCatalog.of(library_catalog))
            except BcmError as exc:
                echo(f"run {run.short_id}: cannot read runbook {run.runbook_id} to show its clocks: {exc}", stderr=True)
                loaded[run.runbook_path] = None
        entry = loaded[run.runbook_path]
        if entry is None or not entry[0].runbook.obligations:
            continue
        runbook, catalog = entry
        clocks = run_clocks(
            runbook.runbook,
            catalog,
            run,
            store.get_marks(run.id),
            store.get_steps(run.id),
            store.get_fulfilments(run.id),
            now,
        )
        found.extend((run, c) for c in clocks)
    return found


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _left(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    parts.append(f"{mins}m")
    return " ".join(parts)


def clock_json(run: RunRecord, c: Clock) -> dict[str, object]:
    """One clock as ``bcm obligations --json`` prints it."""
    return {
        "obligation": c.obligation_id,
        "name": c.name,
        "owner": c.owner,
        "run_id": run.id,
        "run": run.short_id,
        "runbook_id": run.runbook_id,
        "status": c.status,
        "started": _iso(c.started),
        "due": _iso(c.due),
        "fulfilled_at": _iso(c.fulfilled_at),
        "fulfilled_by": c.fulfilled_by,
        "fulfilled_source": c.fulfilled_source,
        "time_left_s": seconds(c.time_left),
        "overdue": c.overdue,
        "note": c.note,
    }


def _status_cell(c: Clock) -> Text:
    if c.status is None:
        return Text("pending", style="dim")
    style = {"open": "yellow", "met": "green", "missed": "bold red"}[c.status]
    return Text(c.status, style=style)


def _left_cell(c: Clock) -> Text:
    if c.time_left is None:
        return Text(c.note or "-", style="dim")
    if c.overdue:
        return Text(f"OVERDUE by {_left(c.time_left)}", style="bold red")
    if c.status == "open":
        return Text(f"{_left(c.time_left)} left")
    if c.status == "met":
        return Text(f"{_left(c.time_left)} to spare")
    return Text(f"late by {_left(c.time_left)}", style="red")


def _shown(at: datetime | None, tz: tzinfo) -> str:
    return "-" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _table(rows: list[tuple[RunRecord, Clock]], tz: tzinfo, now: datetime) -> Table:
    table = Table(title=f"Obligation clocks at {_shown(now, tz)}")
    for column in ("obligation", "run", "started", "due", "fulfilled", "status", "time left"):
        table.add_column(column)
    for run, c in rows:
        table.add_row(
            escape(c.obligation_id),
            run.short_id,
            _shown(c.started, tz),
            _shown(c.due, tz),
            _shown(c.fulfilled_at, tz),
            _status_cell(c),
            _left_cell(c),
        )
    return table


@group.callback()
def list_cmd(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Only this run: id or 8-character prefix.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only clocks still running.")] = False,
    json_out: JsonOption = False,
    tz_name: Annotated[
        str | None, typer.Option("--tz", help="Show times in this IANA zone (default: $BCM_TIMEZONE, else local).")
    ] = None,
) -> None:
    """Every obligation clock across runs (or one run): started, due, fulfilled, status, time left."""
    if ctx.invoked_subcommand is not None:
        return
    tz = resolve_timezone(tz_name)
    settings = load_settings()
    now = clock.now()
    with open_store(settings) as store:
        runs = [store.get_run(run)] if run is not None else store.list_runs()
        rows = _clocks(store, settings, runs, now)
    if open_only:
        rows = [(r, c) for r, c in rows if c.status == "open"]
    if json_out:
        print_json(
            {
                "now": now.isoformat(),
                "clocks": [clock_json(r, c) for r, c in rows],
                "summary": {
                    "listed": len(rows),
                    **{s: sum(1 for _, c in rows if c.status == s) for s in ("open", "met", "missed")},
                    "overdue": sum(1 for _, c in rows if c.overdue),
                },
            }
        )
    elif not rows:
        echo("no obligation clocks" + (" running" if open_only else "") + (f" on run {run}" if run else ""))
    else:
        out.print(_table(rows, tz, now))
        late = sum(1 for _, c in rows if c.overdue)
        echo(f"{len(rows)} clock{'s' if len(rows) != 1 else ''}" + (f", {late} overdue" if late else ""))


def _parse_at(text: str, now: datetime) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text}: not an ISO 8601 time: write it with its offset, such as 2026-03-02T09:30:00+01:00")
    if at.tzinfo is None or at.utcoffset() is None:
        fail(f"--at {text}: no UTC offset: write it with its offset, such as 2026-03-02T09:30:00+01:00")
    if at > now + _CLOCK_SKEW:
        fail(f"--at {text} is in the future: give the time the obligation was fulfilled")
    return at


@group.command("fulfil")
def fulfil_cmd(
    run: Annotated[str, typer.Argument(help="The run: id or 8-character prefix.")],
    obligation: Annotated[str, typer.Argument(help="The obligation id, as the run's runbook lists it.")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who fulfilled it: the obligation's owner role or the incident commander."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Evidence: what was sent, to whom, its reference.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When, ISO 8601 with offset (default: now); not in the future.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Record that a run's obligation was fulfilled outside a step (role-checked, audited)."""
    if by is None or not by.strip():
        fail("missing --by: give who fulfilled the obligation (see --help)")
    now = clock.now()
    when = _parse_at(at, now) if at is not None else now
    settings = load_settings()
    with open_store(settings, write=True) as store:
        record = store.get_run(run)
        try:
            loaded, catalog = _load(settings, record)
        except BcmError as exc:
            fail(f"run {record.short_id}: cannot read runbook {record.runbook_id}: {exc}")
        listed = [e.obligation for e in loaded.runbook.obligations]
        if obligation not in listed:
            known = f": it lists {', '.join(listed)}" if listed else ": it lists none"
            fail(
                f"run {record.short_id}'s runbook {record.runbook_id} does not list obligation '{obligation}'"
                f"{did_you_mean(obligation, listed)}{known}"
            )
        found = catalog.obligations.get(obligation)
        if found is None:
            fail(f"obligation '{obligation}' is not in the obligations catalog")
        roles = [r for r in (found.owner, *FULFILLING_ROLES) if r in catalog.roles]
        person = next((p for r in roles if (p := catalog.roles[r].holder(by)) is not None), None)
        if person is None:
            fail(f"{by} holds none of the roles that may fulfil {obligation}: {', '.join(roles)}")
        existing = {f.obligation_id: f for f in store.get_fulfilments(record.id)}
        if obligation in existing:
            prior = existing[obligation]
            fail(
                f"run {record.short_id} already has {obligation} fulfilled at {prior.at.isoformat()} by {prior.by} "
                f"(from {prior.source}); the first record stands"
            )
        if not store.record_fulfilment(record.id, obligation, at=when, by=person.name, source="hand", evidence=note):
            fail(f"run {record.short_id} already has {obligation} fulfilled; the first record stands")
    if json_out:
        print_json({"run_id": record.id, "obligation": obligation, "at": when.isoformat(), "by": person.name})
    else:
        echo(f"{obligation} fulfilled on run {record.short_id} at {when.isoformat()} by {person.name}")
