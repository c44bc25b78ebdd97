"""The runbook library commands: ``validate`` (runbooks and exercises), ``schema``, ``list``,
``show``, and the plan that ``bcm run --dry-run`` prints.

None of them runs anything or opens the store, and none imports Prefect: they stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from bcm import clock
from bcm.cli.output import FAILED, JsonOption, Text, echo, err, out, print_json
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.engine.context import RunContext, RunInfo
from bcm.engine.plan import Plan
from bcm.errors import TemplateRenderError
from bcm.kinds.base import model_value
from bcm.spec import Catalog, LoadedRunbook, Runbook, Step, load_library, load_one
from bcm.spec.problems import display_path
from bcm.spec.schema import runbook_schema_text
from bcm.spec.summary import (
    describe_parameter_type,
    describe_step,
    drawn_dependencies,
    effective_targets,
    mermaid,
    obligation_summaries,
    review_status,
    target_sources,
)
from bcm.templates import render
from bcm.vocabulary import PHASES

#: What ``bcm show`` says after a phase's name.
PHASE_NOTES = {
    "prevention": " (readiness checks: bcm check)",
    "communication": " (starts with response)",
    "recovery": " (starts when response is done)",
}


def _library_root() -> Path:
    return load_settings().runbooks


def validate_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Runbook or exercise files, or folders (default: the library and its exercises)."),
    ] = None,
) -> None:
    """Check runbooks, exercises and the catalog; print every problem as path:line:col: message."""
    from bcm.exercises.library import validate_paths

    root = _library_root()
    targets = paths or [root]
    result = validate_paths(targets, library_root=root)
    for problem in sorted(result.problems):
        echo(str(problem))
    if result.problems:
        count = len(result.problems)
        err.print(f"{count} problem{'s' if count != 1 else ''} in {len(targets)} path(s)")
        raise typer.Exit(FAILED)
    valid = [_counted(len(result.runbooks), "runbook")] if result.runbooks or not result.exercise_files else []
    if result.exercise_files:
        valid.append(_counted(len(result.exercises), "exercise"))
    err.print(f"{' and '.join(valid)} valid")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def schema_cmd(
    exercise: Annotated[
        bool, typer.Option("--exercise", help="The exercise schema (runbooks/exercise.schema.json) instead.")
    ] = False,
) -> None:
    """Print the runbook JSON Schema, or with --exercise the exercise one (for editors: yaml-language-server)."""
    if exercise:
        from bcm.exercises.models import exercise_schema_text

        sys.stdout.write(exercise_schema_text())
        return
    sys.stdout.write(runbook_schema_text())


def list_cmd(json_out: JsonOption = False) -> None:
    """List the runbooks: id, title, owner, severity, services, RTO, review status."""
    library = load_library(_library_root())
    today = clock.now().date()
    rows = []
    for item in sorted(library.runbooks.values(), key=lambda r: r.runbook.id):
        rb = item.runbook
        targets = effective_targets(rb, library.catalog)
        status, due = review_status(rb, today)
        rows.append(
            {
                "id": rb.id,
                "title": rb.title,
                "owner": rb.owner,
                "severity": rb.severity,
                "services": list(rb.services),
                "rto_s": targets.rto.total_seconds() if targets.rto else None,
                "rto": format_duration(targets.rto),
                "last_reviewed": rb.review.last_reviewed.isoformat() if rb.review else None,
                "review_due": due.isoformat() if due else None,
                "review_status": status,
                "path": display_path(item.path),
            }
        )
    if json_out:
        print_json({"runbooks": rows})
        return
    table = Table(title=Text(f"Runbooks in {display_path(library.root)}"))
    for column in ("id", "title", "owner", "sev", "services", "RTO", "last reviewed", "review due"):
        table.add_column(column)
    for row in rows:
        cells = (
            str(row["id"]),
            str(row["title"]),
            str(row["owner"]),
            str(row["severity"]),
            ", ".join(row["services"]),  # type: ignore[arg-type]
            str(row["rto"]),
            str(row["last_reviewed"] or "-"),
        )
        table.add_row(*(Text(cell) for cell in cells), _review_due_markup(row))
    out.print(table)


def _review_due_markup(row: Mapping[str, object]) -> str:
    """The "review due" cell (markup: the date is ISO, never data that could hold "[")."""
    due_text = f"{row['review_due'] or '-'}"
    if row["review_status"] == "OVERDUE":
        return f"[bold red]{due_text} OVERDUE[/]"
    if row["review_status"] == "due":
        return f"[yellow]{due_text} due[/]"
    if row["review_status"] == "never reviewed":
        return "[bold red]never reviewed[/]"
    return due_text


def show_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print the step graph as a Mermaid flowchart.")] = False,
) -> None:
    """Show a runbook: targets and where they come from, parameters, obligations, phases and the step graph."""
    loaded, catalog = load_one(runbook, library_root=_library_root())
    rb = loaded.runbook
    if as_mermaid:
        sys.stdout.write(mermaid(rb))
        return
    status, due = review_status(rb, clock.now().date())
    out.print(Text.assemble((rb.title, "bold"), f" ({rb.id}) — {rb.severity}, owner {rb.owner}"))
    echo(f"services: {', '.join(rb.services) or '-'}   review: {status}" + (f" (due {due})" if due else ""))
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "value", "from"):
        targets.add_column(column)
    for target in target_sources(rb, catalog):
        targets.add_row(target.name, format_duration(target.value), Text(target.describe()))
    out.print(targets)
    _print_parameters(rb)
    _print_obligations(rb, catalog)
    out.print(_step_tree(loaded))


def _print_parameters(rb: Runbook) -> None:
    if not rb.parameters:
        out.print("Parameters: none")
        return
    params = Table(title="Parameters", title_justify="left")
    for column in ("name", "type", "required", "default", "description"):
        params.add_column(column)
    for name, parameter in rb.parameters.items():
        default = parameter.default
        shown = "-" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        cells = (name, describe_parameter_type(parameter), "yes" if parameter.required else "no", shown)
        params.add_row(*(Text(cell) for cell in (*cells, parameter.description or "-")))
    out.print(params)


def _print_obligations(rb: Runbook, catalog: Catalog) -> None:
    """The deadline clocks the runbook may start: what each is, how long it runs, from what, and
    which steps fulfil it. Nothing when the runbook lists none."""
    summaries = obligation_summaries(rb, catalog)
    if not summaries:
        return
    table = Table(title="Obligations", title_justify="left")
    for column in ("obligation", "name", "clock", "starts at", "fulfilled by", "when"):
        table.add_column(column)
    for ob in summaries:
        cells = (ob.id, ob.name, ob.clock, ob.starts, ", ".join(ob.fulfilled_by) or "-", ob.when or "always")
        table.add_row(*(Text(cell) for cell in cells))
    out.print(table)


def _step_tree(loaded: LoadedRunbook) -> Tree:
    """The phases and their steps, each step with what it does, what it waits for and marks."""
    rb = loaded.runbook
    deps = drawn_dependencies(rb)
    tree = Tree(Text(display_path(loaded.path), style="bold"))
    for phase in PHASES:
        steps: list[Step] = getattr(rb.phases, phase)
        if not steps:
            continue
        node = tree.add(Text.assemble((phase, "bold cyan"), PHASE_NOTES.get(phase, "")))
        for step in steps:
            bits = [step.title] if step.title else []
            bits.append(describe_step(step))
            if deps.get(step.id):
                bits.append("after " + ", ".join(deps[step.id]))
            if step.when:
                bits.append(f"when {step.when}")
            if step.marks:
                bits.append(f"marks {step.marks}")
            if step.fulfils:
                bits.append("fulfils " + ", ".join(step.fulfils))
            node.add(Text.assemble((step.id, "bold"), " — " + "; ".join(bits)))
    return tree


# --------------------------------------------------------------------------- bcm run --dry-run


def dry_run_document(
    loaded: LoadedRunbook, catalog: Catalog, values: dict[str, object], mode: str, who: str
) -> dict[str, Any]:
    """The plan of a run as one JSON-able document: its waves of steps, templates rendered.

    A text that uses step outputs cannot be rendered before the run: it stays as written and its
    step says ``"rendered": false``. ``exercise`` is what the step does in an exercise (None in
    real mode).
    """
    plan = Plan.build(loaded.runbook)
    ctx = RunContext(
        loaded=loaded,
        catalog=catalog,
        run=RunInfo(id="dryrun00" + "0" * 24, mode=mode, started_at=clock.now(), triggered_by=who),
        params=values,
    )
    # Step outputs exist only once steps ran: a text using `steps` fails to render and is shown as written
    # (with empty step states it would render a misleading "None").
    context = {name: value for name, value in ctx.template_context().items() if name != "steps"}
    waves = []
    for number, wave in enumerate(plan.waves(), start=1):
        steps = []
        for step_id in wave:
            planned = plan.get(step_id)
            step = planned.step
            texts, rendered = _rendered_texts(step, context)
            steps.append(
                {
                    "phase": planned.phase,
                    "id": step.id,
                    "title": step.title,
                    "kind": step.kind,
                    "needs": list(planned.needs),
                    "description": texts.pop("description"),
                    "texts": texts,
                    "rendered": rendered,
                    "exercise": step.exercise_behaviour if mode == "exercise" else None,
                    "when": step.when,
                    "marks": step.marks,
                }
            )
        waves.append({"wave": number, "steps": steps})
    return {
        "dry_run": True,
        "runbook": {"id": loaded.runbook.id, "title": loaded.runbook.title, "path": display_path(loaded.path)},
        "mode": mode,
        "triggered_by": who,
        "parameters": values,
        "waves": waves,
    }


def _rendered_texts(step: Step, context: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """A step's description and texts, rendered where they can be; False when one could not."""
    templates = {"description": describe_step(step)}
    # The texts people read, where the step's kind declares them (a notify message, an approve prompt...).
    templates.update((name, str(model_value(step, path))) for name, path in step.kind_def.texts.items())
    texts: dict[str, str] = {}
    rendered = True
    for key, template in templates.items():
        try:
            texts[key] = render(template, context)
        except TemplateRenderError:
            texts[key], rendered = template, False
    return texts, rendered


def print_dry_run(
    loaded: LoadedRunbook,
    catalog: Catalog,
    values: dict[str, object],
    mode: str,
    who: str,
    *,
    json_out: bool = False,
) -> None:
    """Print the plan with its templates rendered, executing nothing: for people, or one JSON document."""
    doc = dry_run_document(loaded, catalog, values, mode, who)
    if json_out:
        print_json(doc, default=str)
        return
    out.print(Text.assemble((f"Dry run of {doc['runbook']['id']}", "bold"), f" ({mode}): nothing is executed"))
    for wave in doc["waves"]:
        out.print(Text.assemble((f"wave {wave['wave']}", "bold cyan"), " (these start together)"))
        for step in wave["steps"]:
            text = step["description"] + "".join(": " + t.strip() for t in step["texts"].values())
            if not step["rendered"]:
                text += " (rendered at run time: uses step outputs)"
            extra = []
            if step["exercise"] is not None:
                extra.append(f"exercise: {step['exercise']}")
            if step["when"]:
                extra.append(f"when {step['when']}")
            if step["marks"]:
                extra.append(f"marks {step['marks']}")
            suffix = f"  [{'; '.join(extra)}]" if extra else ""
            echo(f"  {step['phase']}/{step['id']}: {text}{suffix}")
