"""``bcm actions``: the improvement plan's corrective actions, from exercises and real disruptions.

list    by due date, open and in-progress ones unless asked; overdue ones flagged in every output
add     a finding, its corrective action, an owner role from the catalog, start and due dates
update  status, due date, owner, evidence, action text, root cause; who changed what is audited
close   done (or verified after an effectiveness review), with evidence

The rules (status moves, dates, owners, overdue) are in :mod:`bcm.corrective`; every refusal is
one line and exit 2.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bcm import corrective
from bcm.cli.output import JsonOption, Text, echo, escape, fail, out, print_csv, print_json
from bcm.cli.status import open_store
from bcm.config import Settings, load_settings
from bcm.errors import BcmError, InputError, SpecError
from bcm.exercises.library import load_exercise
from bcm.spec.catalog import find_catalog, load_catalog
from bcm.spec.problems import did_you_mean, display_path
from bcm.store import RunRecord, Store
from bcm.store.records import CorrectiveActionRecord
from bcm.vocabulary import ACTION_STATUSES, CAPABILITY_ELEMENTS, OPEN_ACTION_STATUSES

group = typer.Typer(
    help="Corrective actions: the improvement plan, from exercises and real disruptions.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RefArgument = Annotated[str, typer.Argument(help="The action: CA-7 or 7.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who makes the change: kept in the audit trail (required).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="One CSV table on stdout.")]
RunOption = Annotated[
    str | None, typer.Option("--run", help="The run (exercise or real disruption): id or 8-character prefix.")
]

CSV_COLUMNS = (
    "ref",
    "status",
    "owner",
    "element",
    "start_on",
    "due_on",
    "overdue",
    "days_overdue",
    "finding",
    "action",
    "root_cause",
    "evidence",
    "run_id",
    "objective_id",
    "created_at",
    "updated_at",
    "closed_at",
)
#: The fields ``update`` shows as ``from → to``; the others (long texts) as changed.
_SHOWN_FROM_TO = ("status", "owner", "due_on")


def _require(*given: tuple[str, str | None]) -> None:
    """One line naming every required option missing or blank."""
    missing = [option for option, value in given if value is None or not value.strip()]
    if missing:
        fail(f"missing {', '.join(missing)}: give {'them' if len(missing) > 1 else 'it'} (see --help)")


def _roles(settings: Settings) -> tuple[frozenset[str], str]:
    """The role ids of the library's stakeholders catalog, and where that file is."""
    root = settings.runbooks
    if not root.is_dir():
        fail(
            f"{display_path(root)}: no runbook library here (its catalog names the owner roles): "
            "run bcm from the project folder or set BCM_RUNBOOKS"
        )
    directory = find_catalog(root, root)
    catalog, problems = load_catalog(directory)
    if catalog is None:
        raise SpecError(problems)
    return frozenset(catalog.roles), display_path(directory / "stakeholders.yaml")


def _check_objective(store: Store, run: RunRecord, objective: str, settings: Settings) -> None:
    """``objective`` is an objective of the exercise ``run`` played (any id for other runs)."""
    played = store.get_exercise_run(run.id)
    if played is None:
        return  # a real disruption (or an exercise run without an exercise file): its objectives are its own
    ref = played.exercise_path if Path(played.exercise_path).is_file() else played.exercise_id
    try:
        exercise = load_exercise(ref, library_root=settings.runbooks).exercise
    except BcmError as exc:
        detail = str(exc.problems[0]) if isinstance(exc, SpecError) and exc.problems else str(exc)
        fail(f"--objective {objective}: cannot read exercise {played.exercise_id} to check it: {detail}")
    ids = [o.id for o in exercise.objectives]
    if objective not in ids:
        fail(
            f"--objective {objective}: not an objective of exercise {exercise.id}, which run {run.short_id} "
            f"played{did_you_mean(objective, ids)}: its objectives are {', '.join(ids)}"
        )


def _due_cell(action: CorrectiveActionRecord, today: date) -> Text:
    marker = corrective.overdue_marker(action.status, action.due_on, today)
    cell = Text(action.due_on.isoformat())
    if marker:
        cell.append(f" {marker}", style="bold red")
    return cell


# ------------------------------------------------------------------------------------- list


@group.command("list")
def list_cmd(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help=f"Only this status (repeatable): {', '.join(ACTION_STATUSES)}."),
    ] = None,
    all_statuses: Annotated[bool, typer.Option("--all", help="Every status (default: open and in_progress).")] = False,
    owner: Annotated[str | None, typer.Option("--owner", help="Only actions this role owns.")] = None,
    run: RunOption = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue actions.")] = False,
    json_out: JsonOption = False,
    csv_out: CsvOption = False,
) -> None:
    """Corrective actions by due date (open and in-progress ones unless asked), overdue ones flagged."""
    if json_out and csv_out:
        fail("--json and --csv: give one of them")
    if all_statuses and status:
        fail("--all lists every status: give --all or --status, not both")
    statuses: tuple[str, ...] | None = None if all_statuses else corrective.DEFAULT_LISTED
    if status:
        statuses = tuple(dict.fromkeys(corrective.parse_status(s) for s in status))
    settings = load_settings()
    with open_store(settings) as store:
        run_id = store.get_run(run).id if run is not None else None
        actions = store.list_actions(statuses=statuses, owner=owner, run_id=run_id)
    if owner is not None and not actions:
        roles, where = _roles(settings)
        corrective.check_owner(owner, roles, where=where)
    today = corrective.today()
    if overdue:
        actions = [a for a in actions if a.overdue(today)]
    late = sum(1 for a in actions if a.overdue(today))
    line = corrective.summary((a.status for a in actions), late)
    if csv_out:
        print_csv(CSV_COLUMNS, [_csv_row(corrective.action_json(a, today)) for a in actions])
        echo(line, stderr=True)
    elif json_out:
        print_json(
            {
                "today": today.isoformat(),
                "actions": [corrective.action_json(a, today) for a in actions],
                "summary": {
                    "listed": len(actions),
                    "open": sum(1 for a in actions if a.status in OPEN_ACTION_STATUSES),
                    "overdue": late,
                },
            }
        )
    elif not actions:
        hint = " (only open and in-progress ones are listed: --all lists every status)"
        echo("no corrective actions match" + (hint if statuses == corrective.DEFAULT_LISTED else ""))
    else:
        out.print(_table(actions, today))
        echo(line)


def _csv_row(doc: dict[str, object]) -> list[object]:
    return [
        ("true" if doc[c] else "false") if isinstance(doc[c], bool) else ("" if doc[c] is None else doc[c])
        for c in CSV_COLUMNS
    ]


def _table(actions: list[CorrectiveActionRecord], today: date) -> Table:
    table = Table(title=f"Corrective actions by due date (today {today.isoformat()}, UTC)")
    for column in ("ref", "due", "status", "owner", "element", "action", "finding", "run"):
        table.add_column(column)
    for action in actions:
        run = "-"
        if action.run_id is not None:
            run = action.run_id[:8] + (f" {action.objective_id}" if action.objective_id else "")
        table.add_row(
            action.ref,
            _due_cell(action, today),
            action.status,
            escape(action.owner),
            action.element,
            escape(action.action),
            escape(action.finding),
            escape(run),
        )
    return table


# -------------------------------------------------------------------------------------- add


@group.command("add")
def add_cmd(
    finding: Annotated[str | None, typer.Option("--finding", help="What was found (required).")] = None,
    action: Annotated[str | None, typer.Option("--action", help="The corrective action (required).")] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="The role that owns it, from the stakeholders catalog (required).")
    ] = None,
    due: Annotated[str | None, typer.Option("--due", help="Due date, YYYY-MM-DD (required).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Start date, YYYY-MM-DD (default: today).")] = None,
    element: Annotated[
        str, typer.Option("--element", help=f"The capability element: {', '.join(CAPABILITY_ELEMENTS)}.")
    ] = "planning",
    run: RunOption = None,
    objective: Annotated[
        str | None, typer.Option("--objective", help="The exercise objective it answers (needs --run).")
    ] = None,
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="Why it happened.")] = None,
    by: ByOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a corrective action to the improvement plan; prints its reference (CA-N)."""
    _require(("--finding", finding), ("--action", action), ("--owner", owner), ("--due", due), ("--by", by))
    assert finding is not None and action is not None and owner is not None and due is not None and by is not None
    due_on = corrective.parse_day("--due", due)
    start_on = corrective.parse_day("--start", start) if start is not None else corrective.today()
    corrective.check_dates(start_on, due_on, start_given=True)
    chosen_element = corrective.check_element(element)
    if objective is not None and run is None:
        fail(f"--objective {objective} needs --run RUN: an objective belongs to the exercise a run played")
    settings = load_settings()
    roles, where = _roles(settings)
    corrective.check_owner(owner, roles, where=where)
    with open_store(settings, write=True) as store:
        run_id = None
        if run is not None:
            record = store.get_run(run)
            run_id = record.id
            if objective is not None:
                _check_objective(store, record, objective, settings)
        created = store.add_action(
            finding=finding.strip(),
            action=action.strip(),
            owner=owner,
            element=chosen_element,
            start_on=start_on,
            due_on=due_on,
            root_cause=root_cause.strip() if root_cause else None,
            run_id=run_id,
            objective_id=objective,
            by=by,
        )
    today = corrective.today()
    if json_out:
        print_json({"action": corrective.action_json(created, today)})
        return
    marker = corrective.overdue_marker(created.status, created.due_on, today)
    echo(f"{created.ref} added by {by}: {owner} owns it, due {due_on.isoformat()}" + (f" ({marker})" if marker else ""))


# ----------------------------------------------------------------------------- update, close


def _apply(
    store: Store, action_id: int, changes: dict[str, Any], *, by: str, note: str | None
) -> tuple[CorrectiveActionRecord, CorrectiveActionRecord]:
    """Check ``changes`` against the rules and apply them (audited with who, what and the note); return both."""
    before = store.get_action(action_id)
    corrective.check_changeable(before.ref, before.status)
    if "due_on" in changes:
        corrective.check_dates(before.start_on, changes["due_on"])
    corrective.check_move(
        before.ref,
        before.status,
        changes.get("status", before.status),
        note=note,
        evidence=changes.get("evidence", before.evidence),
    )
    after = store.update_action(action_id, by=by, note=note, **changes)
    return before, after


def _changed(before: CorrectiveActionRecord, after: CorrectiveActionRecord) -> str:
    """``status open → in_progress; due_on 2026-03-31 → 2026-04-30; evidence changed``."""
    parts: list[str] = []
    for field in ("status", "owner", "due_on", "action", "evidence", "root_cause"):
        old, new = getattr(before, field), getattr(after, field)
        if old == new:
            continue
        if field in _SHOWN_FROM_TO:
            parts.append(f"{field} {old} → {new}")
        else:
            parts.append(f"{field} {'changed' if old else 'set'}")
    return "; ".join(parts)


def _report(before: CorrectiveActionRecord, after: CorrectiveActionRecord, *, by: str, json_out: bool) -> None:
    today = corrective.today()
    if json_out:
        print_json({"action": corrective.action_json(after, today)})
        return
    if after == before:
        echo(f"{after.ref} unchanged: it already has those values")
        return
    marker = corrective.overdue_marker(after.status, after.due_on, today)
    echo(f"{after.ref} updated by {by}: {_changed(before, after)}" + (f" ({marker})" if marker else ""))


@group.command("update")
def update_cmd(
    ref: RefArgument,
    status: Annotated[str | None, typer.Option("--status", help=f"New status: {', '.join(ACTION_STATUSES)}.")] = None,
    due: Annotated[str | None, typer.Option("--due", help="New due date, YYYY-MM-DD.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="New owner role, from the stakeholders catalog.")] = None,
    evidence: Annotated[str | None, typer.Option("--evidence", help="What shows it was done.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="New text of the corrective action.")] = None,
    root_cause: Annotated[str | None, typer.Option("--root-cause", help="Why it happened.")] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Why (kept in the audit trail; needed to reopen a done action).")
    ] = None,
    by: ByOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a corrective action; who changed what (old and new values) goes to the audit trail."""
    _require(("--by", by))
    assert by is not None
    action_id = corrective.parse_ref(ref)
    changes: dict[str, Any] = {}
    if status is not None:
        changes["status"] = corrective.parse_status(status)
    if due is not None:
        changes["due_on"] = corrective.parse_day("--due", due)
    for field, value in (("evidence", evidence), ("action", action), ("root_cause", root_cause)):
        if value is not None:
            if not value.strip():
                fail(f"--{field.replace('_', '-')} is empty: give the text")
            changes[field] = value.strip()
    settings = load_settings()
    if owner is not None:
        roles, where = _roles(settings)
        changes["owner"] = corrective.check_owner(owner, roles, where=where)
    if not changes:
        fail("nothing to change: give --status, --due, --owner, --evidence, --action or --root-cause")
    with open_store(settings, write=True) as store:
        before, after = _apply(store, action_id, changes, by=by, note=note)
    _report(before, after, by=by, json_out=json_out)


@group.command("close")
def close_cmd(
    ref: RefArgument,
    evidence: Annotated[
        str | None, typer.Option("--evidence", help="What shows it was done, or that it worked (required).")
    ] = None,
    verified: Annotated[
        bool, typer.Option("--verified", help="An effectiveness review confirmed it works (default: done).")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="A note kept in the audit trail.")] = None,
    by: ByOption = None,
    json_out: JsonOption = False,
) -> None:
    """Close a corrective action: done, or verified once an effectiveness review confirmed it; evidence required."""
    _require(("--evidence", evidence), ("--by", by))
    assert evidence is not None and by is not None
    action_id = corrective.parse_ref(ref)
    target = "verified" if verified else "done"
    with open_store(load_settings(), write=True) as store:
        current = store.get_action(action_id)
        if current.status == target:
            command = f"bcm actions close {current.ref} --verified --evidence TEXT --by WHO"
            hint = f": after the effectiveness review, `{command}`" if target == "done" else ""
            raise InputError(f"{current.ref} is already {target}{hint}")
        before, after = _apply(store, action_id, {"status": target, "evidence": evidence.strip()}, by=by, note=note)
    if json_out:
        print_json({"action": corrective.action_json(after, corrective.today())})
        return
    echo(f"{after.ref} {target} (was {before.status}) by {by}, with evidence")
