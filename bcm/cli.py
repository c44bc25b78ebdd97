"""The ``bcm`` command: the composition root, the one place that wires bcm to its flows.

Exit codes: 0 ok, 1 the run or check failed (or files are invalid for ``validate``), 2 bad input.
Prefect is imported lazily by the commands that run flows, so ``validate``/``list`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from bcm import clock
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.errors import BcmError, InputError, SpecError
from bcm.spec import load_library, load_one, validate
from bcm.spec.problems import display_path
from bcm.spec.schema import runbook_schema_text
from bcm.spec.summary import (
    describe_parameter_type,
    describe_step,
    drawn_dependencies,
    effective_targets,
    mermaid,
    review_status,
    target_sources,
)
from bcm.vocabulary import PHASES

app = typer.Typer(
    name="bcm",
    help="Business-continuity and incident runbook engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Piped output (CI logs, files) gets a wide console so tables and trees are not cropped at 80 columns.
# Data is printed as written: no emoji codes (a path's ":100:" is not 💯), and data put into a markup
# string goes in as a Text (or with markup=False), so a "[bold]" in a runbook title is not markup.
out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)


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
    table = Table(title=Text(f"Runbooks in {display_path(library.root)}"))
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
        cells = (
            str(row["id"]),
            str(row["title"]),
            str(row["owner"]),
            str(row["severity"]),
            ", ".join(row["services"]),  # type: ignore[arg-type]
            str(row["rto"]),
            str(row["last_reviewed"] or "-"),
        )
        table.add_row(*(Text(cell) for cell in cells), due_text)
    out.print(table)


@app.command("show")
def show_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    as_mermaid: Annotated[bool, typer.Option("--mermaid", help="Print the step graph as a Mermaid flowchart.")] = False,
) -> None:
    """Show a runbook: targets and where they come from, parameters, phases and the step graph."""
    loaded, catalog = load_one(runbook, library_root=_library_root())
    rb = loaded.runbook
    if as_mermaid:
        sys.stdout.write(mermaid(rb))
        return
    status, due = review_status(rb, clock.now().date())
    out.print(Text.assemble((rb.title, "bold"), f" ({rb.id}) — {rb.severity}, owner {rb.owner}"))
    out.print(
        f"services: {', '.join(rb.services) or '-'}   review: {status}" + (f" (due {due})" if due else ""),
        markup=False,
    )
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "value", "from"):
        targets.add_column(column)
    for target in target_sources(rb, catalog):
        targets.add_row(target.name, format_duration(target.value), Text(target.describe()))
    out.print(targets)
    if rb.parameters:
        params = Table(title="Parameters", title_justify="left")
        for column in ("name", "type", "required", "default", "description"):
            params.add_column(column)
        for name, parameter in rb.parameters.items():
            default = parameter.default
            shown = "-" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
            cells = (name, describe_parameter_type(parameter), "yes" if parameter.required else "no", shown)
            params.add_row(*(Text(cell) for cell in (*cells, parameter.description or "-")))
        out.print(params)
    else:
        out.print("Parameters: none")
    deps = drawn_dependencies(rb)
    notes = {
        "prevention": " (readiness checks: bcm check)",
        "communication": " (starts with response)",
        "recovery": " (starts when response is done)",
    }
    tree = Tree(Text(display_path(loaded.path), style="bold"))
    for phase in PHASES:
        steps = getattr(rb.phases, phase)
        if not steps:
            continue
        node = tree.add(Text.assemble((phase, "bold cyan"), notes.get(phase, "")))
        for step in steps:
            bits = [step.title] if step.title else []
            bits.append(describe_step(step))
            if deps.get(step.id):
                bits.append("after " + ", ".join(deps[step.id]))
            if step.when:
                bits.append(f"when {step.when}")
            if step.marks:
                bits.append(f"marks {step.marks}")
            node.add(Text.assemble((step.id, "bold"), " — " + "; ".join(bits)))
    out.print(tree)


# --------------------------------------------------------------------------- running


def _parse_params(pairs: list[str]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"-p {pair}: write parameters as key=value, e.g. -p site=lon-dc1")
        given[key.strip()] = value
    return given


def _prefect_environment() -> None:
    """Quiet, offline Prefect for command-line runs (read before Prefect is imported)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")


def _dry_run_document(loaded: Any, catalog: Any, values: dict[str, object], mode: str, who: str) -> dict[str, Any]:
    """The plan of a run as one JSON-able document: its waves of steps, templates rendered.

    A text that uses step outputs cannot be rendered before the run: it stays as written and its
    step says ``"rendered": false``. ``exercise`` is what the step does in an exercise (None in
    real mode).
    """
    from bcm.engine.context import RunContext, RunInfo
    from bcm.engine.plan import Plan
    from bcm.errors import TemplateRenderError
    from bcm.templates import render

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
            templates = {"description": describe_step(step)}
            if step.approve:
                templates["prompt"] = step.approve.prompt
            if step.manual:
                templates["instructions"] = step.manual.instructions
            if step.notify:
                templates["message"] = step.notify.message
            texts: dict[str, str] = {}
            rendered = True
            for key, template in templates.items():
                try:
                    texts[key] = render(template, context)
                except TemplateRenderError:
                    texts[key], rendered = template, False
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


def _dry_run(
    loaded: Any, catalog: Any, values: dict[str, object], mode: str, who: str, *, json_out: bool = False
) -> None:
    """Print the plan with its templates rendered, executing nothing: for people, or one JSON document."""
    doc = _dry_run_document(loaded, catalog, values, mode, who)
    if json_out:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
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
            out.print(f"  {step['phase']}/{step['id']}: {text}{suffix}", markup=False)


outbox_app = typer.Typer(help="The durable outbox of stakeholder messages.", no_args_is_help=True)
slack_app = typer.Typer(help="Slack interactivity (approval buttons) and the /bcm slash command.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(slack_app, name="slack")


@outbox_app.command("flush")
def outbox_flush_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Deliver messages that Slack could not take earlier, in order, each once.

    Exit 1 when not everything is delivered: some messages are still pending (Slack did not take
    them yet), or some failed for good (a permanent Slack error; they are not retried). The output
    says which.
    """
    from bcm.comms import FLUSH_POLICY, make_notifier
    from bcm.store import Store

    settings = load_settings()
    with Store.open(settings.database_url) as store:
        report = make_notifier(settings, store, policy=FLUSH_POLICY).flush()
        failed = store.list_messages(status="failed")
    because = []
    if report.pending:
        because.append(f"{report.pending} still pending")
    if failed:
        because.append(f"{len(failed)} failed for good")
    if json_out:
        doc = {
            "delivered": report.delivered,
            "superseded": report.superseded,
            "failed_now": report.failed,
            "pending": report.pending,
            "error": report.error,
            "failed": [{"key": m.key, "kind": m.kind, "error": m.last_error} for m in failed],
            "exit_code": 1 if because else 0,
            "because": because,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.print(
            f"delivered {report.delivered}, superseded {report.superseded}, failed {report.failed}, "
            f"still pending {report.pending}",
            markup=False,
        )
        if report.error:
            out.print(Text.assemble((f"stopped: {report.error}", "yellow"), " (messages stay queued, in order)"))
        for m in failed:
            out.print(Text(f"not deliverable: {m.key} ({m.kind}): {m.last_error}", style="red"))
        if failed:
            out.print(
                Text.assemble(
                    (f"exit 1: {len(failed)} failed for good", "red"), " (a permanent Slack error: not retried)"
                )
            )
        if report.pending:
            out.print(
                Text.assemble(
                    (f"exit 1: {report.pending} still pending", "yellow"), " (`bcm outbox flush` again later)"
                )
            )
    raise typer.Exit(1 if because else 0)


def _deployment_exists(name: str) -> bool:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


def _trigger_run(runbook: str, parameters: dict[str, str], *, mode: str, triggered_by: str, run_id: str) -> None:
    """Start a run for Slack: its deployment when the Prefect server has one, else a background `bcm run`."""
    import subprocess

    rb_id = Path(runbook).stem
    if os.environ.get("PREFECT_API_URL") and _deployment_exists(f"run-runbook/{rb_id}"):
        from prefect.deployments import run_deployment

        run_deployment(
            name=f"run-runbook/{rb_id}",
            parameters={
                "runbook": rb_id,
                "parameters": parameters,
                "mode": mode,
                "triggered_by": triggered_by,
                "run_id": run_id,
            },
            timeout=0,
        )
        return
    argv = [sys.executable, "-m", "bcm", "run", runbook, "--mode", mode, "--by", triggered_by, "--run-id", run_id]
    for key, value in parameters.items():
        argv += ["-p", f"{key}={value}"]
    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@slack_app.command("serve")
def slack_serve_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve Slack's interactivity and slash-command requests (signatures verified)."""
    settings = load_settings()
    if not settings.slack_signing_secret:
        fail("SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page")
    import uvicorn

    from bcm.comms.interactivity import create_app

    web = create_app(settings=settings, signing_secret=settings.slack_signing_secret, trigger=_trigger_run)
    err.print(f"bcm slack endpoints on http://{host}:{port}/slack/interactivity and /slack/commands")
    uvicorn.run(web, host=host, port=port, log_level="warning")


from bcm.cli_metrics import register as _register_metrics  # noqa: E402
from bcm.cli_runs import register as _register_runs  # noqa: E402

_register_runs(app)
_register_metrics(app)


def main() -> None:
    """Entry point of the ``bcm`` console script."""
    _prefect_environment()
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
    except KeyboardInterrupt:
        err.print("interrupted: `bcm resume RUN` continues a run where it stopped")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("BCM_DEBUG"):
            raise
        err.print(
            f"bcm: unexpected error: {type(exc).__name__}: {exc} (set BCM_DEBUG=1 for the traceback)", markup=False
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
