"""The ``bcm`` command: the composition root, the one place that wires bcm to its flows.

Exit codes: 0 ok, 1 the run or check failed (or files are invalid for ``validate``), 2 bad input.
Prefect is imported lazily by the commands that run flows, so ``validate``/``list`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

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


def _run_flow(call: Any) -> Any:
    """Run a flow call with Prefect's heartbeat off (it costs ~1 s a call and nothing here uses it)."""
    _prefect_environment()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

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


def _print_run(store: Any, run_ref: str, *, json_out: bool) -> str:
    from bcm.engine.status import run_document

    doc = run_document(store, store.get_run(run_ref))
    if json_out:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return str(doc["run"]["status"])
    run = doc["run"]
    colour = {"succeeded": "green", "failed": "red", "waiting": "yellow"}.get(run["status"], "cyan")
    took = format_duration(timedelta(seconds=run["duration_s"])) if run["duration_s"] is not None else "-"
    out.print(
        f"[bold]{run['title']}[/] ({run['runbook']}) run [bold]{run['short_id']}[/] — {run['mode']} — "
        f"[{colour}]{run['status']}[/] — {took}"
    )
    if run["error"]:
        out.print(f"[red]{run['error']}[/]", markup=True)
    table = Table(title="Steps")
    for column in ("phase", "step", "kind", "status", "attempts", "started (UTC)", "took", "by / why"):
        table.add_column(column)
    for step in doc["steps"]:
        took_s = step["duration_s"]
        table.add_row(
            step["phase"],
            step["id"],
            step["kind"],
            step["status"],
            str(step["attempts"]),
            (step["started_at"] or "-")[11:19],
            format_duration(timedelta(seconds=took_s)) if took_s is not None else "-",
            (step["actor"] or step["error"] or step["reason"] or "").replace("[", r"\["),
        )
    out.print(table)
    timeline = Table(title="Timeline")
    timeline.add_column("milestone")
    timeline.add_column("at (UTC)")
    timeline.add_column("source")
    for mark in doc["milestones"]:
        timeline.add_row(mark["milestone"], mark["at"][:19].replace("T", " "), mark["source"])
    out.print(timeline)
    for step_id in doc["waiting_on"]:
        out.print(f"[yellow]waiting on {step_id}[/]: bcm approve {run['short_id']} {step_id} --by YOU [--reject]")
    messages = doc["messages"]
    pending, failed = len(messages["pending"]), len(messages["failed"])
    out.print(f"messages: {messages['delivered']} delivered, {pending} pending, {failed} failed")
    for failed in messages["failed"]:
        out.print(f"[red]message {failed['key']} ({failed['kind']}) not delivered: {failed['error']}[/]")
    if messages["pending"]:
        first = messages["pending"][0]
        out.print(f"[yellow]pending since: {first['last_error'] or 'not tried yet'}[/]: `bcm outbox flush` retries")
    return str(run["status"])


def _dry_run(loaded: Any, catalog: Any, values: dict[str, object], mode: str, who: str) -> None:
    from bcm.engine.context import RunContext, RunInfo, StepState
    from bcm.engine.plan import Plan
    from bcm.spec.summary import describe_step
    from bcm.templates import TemplateRenderError, render

    plan = Plan.build(loaded.runbook)
    ctx = RunContext(
        loaded=loaded,
        catalog=catalog,
        run=RunInfo(id="dryrun00" + "0" * 24, mode=mode, started_at=clock.now(), triggered_by=who),
        params=values,
        steps={p.id: StepState() for p in plan.steps},
    )
    out.print(f"[bold]Dry run of {loaded.runbook.id}[/] ({mode}): nothing is executed")
    for number, wave in enumerate(plan.waves(), start=1):
        out.print(f"[bold cyan]wave {number}[/] (these start together)")
        for step_id in wave:
            planned = plan.get(step_id)
            step = planned.step
            try:
                text = render(describe_step(step), ctx.template_context())
                if step.person_prompt:
                    text += ": " + render(step.person_prompt, ctx.template_context())
                if step.notify:
                    text += ": " + render(step.notify.message, ctx.template_context()).strip()
            except TemplateRenderError:
                text = describe_step(step) + " (rendered at run time: uses step outputs)"
            extra = []
            if mode == "exercise":
                extra.append(f"exercise: {step.exercise_behaviour}")
            if step.when:
                extra.append(f"when {step.when}")
            if step.marks:
                extra.append(f"marks {step.marks}")
            suffix = f"  [{'; '.join(extra)}]" if extra else ""
            out.print(f"  {planned.phase}/{step_id}: {text}{suffix}", markup=False)


@app.command("run")
def run_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")] = None,
    mode: Annotated[str, typer.Option(help="real or exercise.")] = "real",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan with rendered templates.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who triggers the run (default: $USER).")] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", hidden=True, help="Use this run id (Slack trigger).")
    ] = None,
) -> None:
    """Run a runbook: a Prefect flow run whose steps are tasks; prints the timeline."""
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
    who = by or os.environ.get("USER") or "unknown"
    if dry_run:
        _dry_run(loaded, catalog, values, mode, who)
        return
    run_id = run_id or new_run_id()
    if not json_out:
        err.print(f"run {run_id[:8]} of {loaded.runbook.id} ({mode}) starting; `bcm status {run_id[:8]}` shows it")
    from flows.runbook import run_runbook

    _run_flow(
        lambda: run_runbook(
            runbook=str(loaded.path),
            parameters=given,
            mode=mode,
            triggered_by=who,
            auto_approve=auto_approve,
            run_id=run_id,
            return_state=True,
        )
    )
    from bcm.store import Store

    with Store.open(settings.database_url) as store:
        status = _print_run(store, run_id, json_out=json_out)
    raise typer.Exit(0 if status == "succeeded" else 1)


@app.command("resume")
def resume_cmd(
    run: Annotated[str, typer.Argument(help="The run id (the 8-character short id is enough).")],
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Continue an interrupted run; finished steps are not repeated."""
    from bcm.store import Store

    settings = load_settings()
    with Store.open(settings.database_url) as store:
        record = store.get_run(run)
    if record.status == "succeeded":
        fail(f"run {record.short_id} finished already ({record.status}): nothing to resume")
    if auto_approve and record.mode != "exercise":
        fail("--auto-approve is only for exercise mode: in a real disruption people approve")
    from flows.runbook import run_runbook

    if not json_out:
        err.print(f"resuming run {record.short_id} of {record.runbook_id} (was {record.status})")
    _run_flow(
        lambda: run_runbook(
            runbook=record.runbook_path,
            mode=record.mode,
            triggered_by=record.triggered_by,
            auto_approve=auto_approve,
            run_id=record.id,
            resume=True,
            return_state=True,
        )
    )
    with Store.open(settings.database_url) as store:
        status = _print_run(store, record.id, json_out=json_out)
    raise typer.Exit(0 if status == "succeeded" else 1)


@app.command("status")
def status_cmd(
    run: Annotated[str, typer.Argument(help="The run id (the 8-character short id is enough).")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Where a run stands: steps with status and durations, milestones, what it waits on."""
    from bcm.store import Store

    with Store.open(load_settings().database_url) as store:
        _print_run(store, run, json_out=json_out)


@app.command("approve")
def approve_cmd(
    run: Annotated[str, typer.Argument(help="The run id (the 8-character short id is enough).")],
    step: Annotated[str, typer.Argument(help="The approve or manual step.")],
    by: Annotated[str, typer.Option("--by", help="Who decides: name, Slack user id or email.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject (or, for manual steps: could not do it).")] = False,
    note: Annotated[str | None, typer.Option("--note", help="A note kept with the decision.")] = None,
) -> None:
    """Approve or reject a step the run waits on (only a holder of the step's role may)."""
    from bcm.engine.approvals import decide, step_moved_on
    from bcm.engine.runner import Decision
    from bcm.store import Store

    settings = load_settings()
    with Store.open(settings.database_url) as store:
        record, _, approval = decide(
            store, run, step, who=by, approve=not reject, note=note, library_root=settings.runbooks
        )
    out.print(f"{approval.decision} by {approval.by}: run {record.short_id} step {step}", markup=False)
    if record.flow_run_id is None:
        return
    _prefect_environment()
    from flows.runbook import deliver_decision

    decision = Decision(approved=not reject, by=approval.by, note=note)
    if not deliver_decision(
        record.flow_run_id, decision, consumed=step_moved_on(settings.database_url, record.id, step)
    ):
        err.print(
            f"run {record.short_id} is not running any more; the decision is recorded: "
            f"`bcm resume {record.short_id}` continues the run with it"
        )


@app.command("check")
def check_cmd(
    runbooks: Annotated[list[str] | None, typer.Argument(help="Runbook ids or paths (default: all).")] = None,
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Run prevention (readiness) steps and record pass/fail."""
    settings = load_settings()
    refs = [str(load_one(ref, library_root=settings.runbooks)[0].path) for ref in runbooks or []]
    given = _parse_params(param or [])
    from flows.readiness import readiness_checks

    results = _run_flow(lambda: readiness_checks(runbooks=refs or None, parameters=given))
    failed = [r for r in results if not r["ok"]]
    if json_out:
        sys.stdout.write(json.dumps({"ready": not failed, "checks": results}, indent=2) + "\n")
    else:
        table = Table(title="Readiness checks")
        for column in ("runbook", "check", "result", "detail"):
            table.add_column(column)
        for r in results:
            verdict = "[green]ready[/]" if r["ok"] else f"[red]{r['status']}[/]"
            table.add_row(r["runbook"], r["step"], verdict, str(r["detail"]).replace("[", r"\["))
        out.print(table)
        out.print(f"{len(results) - len(failed)} of {len(results)} checks ready")
    raise typer.Exit(1 if failed else 0)


outbox_app = typer.Typer(help="The durable outbox of stakeholder messages.", no_args_is_help=True)
slack_app = typer.Typer(help="Slack interactivity (approval buttons) and the /bcm slash command.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(slack_app, name="slack")


@outbox_app.command("flush")
def outbox_flush_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Deliver messages that Slack could not take earlier, in order, each once."""
    from bcm.comms import make_notifier
    from bcm.store import Store

    settings = load_settings()
    with Store.open(settings.database_url) as store:
        report = make_notifier(settings, store).flush()
        failed = store.list_messages(status="failed")
    if json_out:
        doc = {
            "delivered": report.delivered,
            "failed_now": report.failed,
            "pending": report.pending,
            "error": report.error,
            "failed": [{"key": m.key, "kind": m.kind, "error": m.last_error} for m in failed],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.print(f"delivered {report.delivered}, failed {report.failed}, still pending {report.pending}")
        if report.error:
            out.print(f"[yellow]stopped: {report.error}[/] (messages stay queued, in order)")
        for m in failed:
            out.print(f"[red]not deliverable: {m.key} ({m.kind}): {m.last_error}[/]")
    raise typer.Exit(1 if report.pending else 0)


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
    from flows.runbook import deliver_decision

    web = create_app(
        settings=settings, signing_secret=settings.slack_signing_secret, deliver=deliver_decision, trigger=_trigger_run
    )
    err.print(f"bcm slack endpoints on http://{host}:{port}/slack/interactivity and /slack/commands")
    uvicorn.run(web, host=host, port=port, log_level="warning")


from bcm.cli_metrics import register as _register_metrics  # noqa: E402

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
