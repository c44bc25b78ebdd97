"""The ``bcm`` command: the composition root, the one place that wires bcm to its flows.

Exit codes: 0 ok, 1 the run or check failed (or files are invalid for ``validate``), 2 bad input.
Prefect is imported lazily by the commands that run flows, so ``validate``/``list`` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from bcm import clock
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.spec import InputError, SpecError, load_library, load_one, validate
from bcm.spec.graph import dependencies
from bcm.spec.models import PHASES
from bcm.spec.problems import BcmError, display_path
from bcm.spec.schema import runbook_schema_text
from bcm.spec.summary import describe_step, effective_targets, mermaid, review_status

app = typer.Typer(
    name="bcm",
    help="Business-continuity and incident runbook engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Piped output (CI logs, files) gets a wide console so tables and trees are not cropped at 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (2: bad input)."""
    err.print(message, markup=False)
    raise typer.Exit(code)


def _library_root() -> Path:
    return load_settings().runbooks


@app.command("validate")
def validate_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(help="Runbook files or folders (default: the library).")] = None,
) -> None:
    """Check runbooks and their catalog; print every problem as path:line:col: message."""
    root = _library_root()
    targets = paths or [root]
    loaded, problems = validate(targets, library_root=root)
    for problem in sorted(problems):
        out.print(str(problem), markup=False)
    if problems:
        err.print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {len(targets)} path(s)")
        raise typer.Exit(1)
    err.print(f"{len(loaded)} runbook{'s' if len(loaded) != 1 else ''} valid")


@app.command("schema")
def schema_cmd() -> None:
    """Print the runbook JSON Schema (for editors: yaml-language-server)."""
    sys.stdout.write(runbook_schema_text())


@app.command("list")
def list_cmd(json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False) -> None:
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
        sys.stdout.write(json.dumps({"runbooks": rows}, indent=2) + "\n")
        return
    table = Table(title=f"Runbooks in {display_path(library.root)}")
    for column in ("id", "title", "owner", "sev", "services", "RTO", "last reviewed", "review due"):
        table.add_column(column)
    for row in rows:
        due_text = f"{row['review_due'] or '-'}"
        if row["review_status"] == "OVERDUE":
            due_text = f"[bold red]{due_text} OVERDUE[/]"
        elif row["review_status"] == "due":
            due_text = f"[yellow]{due_text} due[/]"
        elif row["review_status"] == "never reviewed":
            due_text = "[bold red]never reviewed[/]"
        table.add_row(
            str(row["id"]),
            str(row["title"]),
            str(row["owner"]),
            str(row["severity"]),
            ", ".join(row["services"]),  # type: ignore[arg-type]
            str(row["rto"]),
            str(row["last_reviewed"] or "-"),
            due_text,
        )
    out.print(table)


@app.command("show")
def show_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print the step graph as a Mermaid flowchart.")] = False,
) -> None:
    """Show a runbook's phases and step graph."""
    loaded, catalog = load_one(runbook, library_root=_library_root())
    rb = loaded.runbook
    if as_mermaid:
        sys.stdout.write(mermaid(rb))
        return
    targets = effective_targets(rb, catalog)
    status, due = review_status(rb, clock.now().date())
    out.print(f"[bold]{rb.title}[/] ({rb.id}) — {rb.severity}, owner {rb.owner}")
    out.print(
        f"services: {', '.join(rb.services) or '-'}   RTO {format_duration(targets.rto)}   "
        f"RPO {format_duration(targets.rpo)}   MTPD {format_duration(targets.mtpd)}   review: {status}"
        + (f" ({due})" if due else "")
    )
    deps = {**dependencies(rb, phases=("prevention",)), **dependencies(rb)}
    tree = Tree(f"[bold]{display_path(loaded.path)}[/]")
    for phase in PHASES:
        steps = getattr(rb.phases, phase)
        if not steps:
            continue
        node = tree.add(f"[bold cyan]{phase}[/]")
        for step in steps:
            bits = [describe_step(step)]
            if deps.get(step.id):
                bits.append("after " + ", ".join(deps[step.id]))
            if step.when:
                bits.append(f"when {step.when}")
            if step.marks:
                bits.append(f"marks {step.marks}")
            node.add(f"[bold]{step.id}[/] — " + "; ".join(bits).replace("[", r"\["))
    out.print(tree)


def main() -> None:
    """Entry point of the ``bcm`` console script."""
    try:
        app()
    except SpecError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        sys.exit(2)
    except InputError as exc:
        err.print(str(exc), markup=False)
        sys.exit(2)
    except BcmError as exc:
        err.print(str(exc), markup=False)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
