"""``slack serve``: the endpoint for Slack's approval buttons and the ``/bcm`` slash command, and
how a ``/bcm run`` from Slack starts: the runbook's Prefect deployment when the server has one,
else a background ``bcm run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from bcm.cli.output import echo, fail
from bcm.config import load_settings

group = typer.Typer(help="Slack interactivity (approval buttons) and the /bcm slash command.", no_args_is_help=True)


def _deployment_exists(name: str) -> bool:
    # Prefect takes seconds to import: only a Slack-triggered run pays for it.
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


def trigger_run(runbook: str, parameters: dict[str, str], *, mode: str, triggered_by: str, run_id: str) -> None:
    """Start a run for Slack: its deployment when the Prefect server has one, else a background `bcm run`."""
    rb_id = Path(runbook).stem
    if os.environ.get("PREFECT_API_URL") and _deployment_exists(f"run-runbook/{rb_id}"):
        # Prefect takes seconds to import: only a Slack-triggered run pays for it.
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


@group.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve Slack's interactivity and slash-command requests (signatures verified)."""
    settings = load_settings()
    if not settings.slack_signing_secret:
        fail("SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page")
    # uvicorn, Starlette and the engine's runner take a while to import: only the server pays for them.
    import uvicorn

    from bcm.cli.slack_app import create_app

    web = create_app(settings=settings, signing_secret=settings.slack_signing_secret, trigger=trigger_run)
    echo(f"bcm slack endpoints on http://{host}:{port}/slack/interactivity and /slack/commands", stderr=True)
    uvicorn.run(web, host=host, port=port, log_level="warning")
