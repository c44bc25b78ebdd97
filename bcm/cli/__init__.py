"""The ``bcm`` command and the Slack app: bcm's entry points, and its composition root.

This package is the one place that wires bcm to its Prefect flows in ``flows/``. The rest of
``bcm/`` is the domain and never imports Prefect (ruff's banned-api rule allows it only here and in
``flows/``): the commands that run something call the flows and start Prefect's embedded server
when no server is configured, and the Slack app gets its Prefect-facing part (starting a run) as a
callable. Prefect is imported inside the functions that need it, so ``validate`` and ``list`` stay
fast.

One module per command group, one for output::

    output      the consoles, fail(), JSON and CSV output, exit codes, printing data literally
    runbooks    validate, schema, list, show; the plan ``run --dry-run`` prints
    runs        run, resume, check: flows, the embedded server, the progress display
    status      status, runs: where runs stand; the store as commands open it
    approvals   approve, mark
    metrics     metrics
    incidents   incident record|import
    audit       audit verify|export
    outbox      outbox flush
    slack       slack serve; how ``/bcm run`` starts a run (a deployment or a background ``bcm run``)
    slack_app   the Starlette app behind ``bcm slack serve``
    exercise    exercise run|end|observe|hotwash|plan (from exercise_play, exercise_review, exercise_plan)
    actions     actions list|add|update|close: corrective actions
    obligations obligations [--run] [--open]|fulfil: deadline clocks
    report      report aar (report_aar)
    serve       serve: a local Prefect server with the deployments and schedules, found by every bcm

:func:`main` is the exit-code policy: 0 ok, 1 the run or check failed (or files are invalid for
``validate``), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from bcm.cli import (
    actions,
    approvals,
    audit,
    exercise,
    incidents,
    metrics,
    obligations,
    outbox,
    report,
    runbooks,
    runs,
    serve,
    slack,
    status,
)
from bcm.cli.output import BAD_INPUT, FAILED, INTERRUPTED, echo, err
from bcm.cli.runs import prefect_environment
from bcm.errors import BcmError, InputError, SpecError

__all__ = ["app", "main"]

app = typer.Typer(
    name="bcm",
    help="Business-continuity and incident runbook engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: The commands, in the order `bcm --help` lists them.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("validate", runbooks.validate_cmd),
    ("schema", runbooks.schema_cmd),
    ("list", runbooks.list_cmd),
    ("show", runbooks.show_cmd),
    ("run", runs.run_cmd),
    ("resume", runs.resume_cmd),
    ("status", status.status_cmd),
    ("runs", status.runs_cmd),
    ("approve", approvals.approve_cmd),
    ("mark", approvals.mark_cmd),
    ("check", runs.check_cmd),
    ("metrics", metrics.metrics_cmd),
    ("serve", serve.serve_cmd),
)
#: The command groups (``bcm outbox flush``, ...), listed after the commands.
GROUPS: tuple[tuple[str, typer.Typer], ...] = (
    ("outbox", outbox.group),
    ("slack", slack.group),
    ("incident", incidents.group),
    ("audit", audit.group),
    ("exercise", exercise.group),
    ("actions", actions.group),
    ("obligations", obligations.group),
    ("report", report.group),
)


def _register(app: typer.Typer) -> None:
    for name, command in COMMANDS:
        app.command(name)(command)
    for name, group in GROUPS:
        app.add_typer(group, name=name)


_register(app)


def main() -> None:
    """Entry point of the ``bcm`` console script and ``python -m bcm``: errors become exit codes.

    ``SpecError`` (every problem, one a line) and ``InputError``: exit 2; any other ``BcmError``:
    its message, exit 1; Ctrl-C: exit 130; anything unexpected: one line and exit 1, or the
    traceback when ``BCM_DEBUG`` is set.
    """
    prefect_environment()
    try:
        app()
    except SpecError as exc:
        for problem in exc.problems:
            echo(str(problem), stderr=True)
        sys.exit(BAD_INPUT)
    except InputError as exc:
        echo(str(exc), stderr=True)
        sys.exit(BAD_INPUT)
    except BcmError as exc:
        echo(str(exc), stderr=True)
        sys.exit(FAILED)
    except KeyboardInterrupt:
        err.print("interrupted: `bcm resume RUN` continues a run where it stopped")
        sys.exit(INTERRUPTED)
    except Exception as exc:
        if os.environ.get("BCM_DEBUG"):
            raise
        echo(f"bcm: unexpected error: {type(exc).__name__}: {exc} (set BCM_DEBUG=1 for the traceback)", stderr=True)
        sys.exit(FAILED)
