"""What ``bcm serve`` runs on Prefect's side: the deployments of ``prefect.yaml``, served with their schedules.

``bcm serve`` (``bcm/cli/serve.py``) starts a local Prefect server, then this module in a process of
its own (``python -m flows.serve``). It reads ``prefect.yaml`` (the file ``prefect deploy --all``
reads for a team), imports each deployment's entrypoint generically (``path/to/module.py:function``
as the module ``path.to.module``, so a deployment added to the file is served without a change
here), and serves them all with Prefect's runner: what ``prefect.serve()`` does (a ``Runner``,
``add_deployment`` for each, ``start``), done step by step so that ``bcm serve`` hears when the
deployments are registered. The runner polls the server for scheduled and hand-triggered runs and
runs each in a subprocess: the schedules fire with no work pool and no worker.

An entrypoint that does not import (a flow being written) is skipped and reported, never fatal.
SIGTERM stops the runner gracefully (Prefect's handler): runs in flight are cancelled and the
schedules paused, so nothing piles up as Late while ``bcm serve`` is down; the next start resumes them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner
from prefect.schedules import Schedule
from prefect.types.entrypoint import EntrypointType

from bcm.durations import format_duration

#: How often the runner asks the server for runs to start: one cheap query to a local server.
POLL_S = 2.0
#: How long the runner waits for the server it was started beside (a loaded 2-core machine).
SERVER_TIMEOUT_S = 180


@dataclass(frozen=True)
class Served:
    """A deployment being served: its full name and its schedules in words."""

    name: str
    schedules: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Skipped:
    """A deployment of prefect.yaml that is not served, and why."""

    name: str
    entrypoint: str
    why: str


@dataclass
class Project:
    """What ``prefect.yaml`` gives ``bcm serve``."""

    deployments: list[RunnerDeployment] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What ``bcm serve`` prints and records: served and skipped deployments."""
        return {"served": [asdict(s) for s in self.served], "skipped": [asdict(s) for s in self.skipped]}


def load_entrypoint(entrypoint: str, root: Path) -> Flow[Any, Any]:
    """The flow at ``path/to/module.py:function`` (relative to ``root``), imported as ``path.to.module``.

    Raises:
        ValueError: the entrypoint is not of that form, or names something that is not a flow.
        Exception: whatever importing the module raises (a flow being written).
    """
    path, sep, name = entrypoint.rpartition(":")
    file = Path(path)
    if not sep or not name or file.suffix != ".py" or file.is_absolute() or ".." in file.parts:
        raise ValueError("write entrypoints as path/to/module.py:function, relative to prefect.yaml's folder")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(".".join(file.with_suffix("").parts))
    found = getattr(module, name, None)
    if not isinstance(found, Flow):
        raise ValueError(f"{name} is not a Prefect flow in {path}")
    return found


def schedule_of(config: Mapping[str, Any]) -> Schedule:
    """A ``schedules:`` entry of prefect.yaml (cron, interval in seconds, or rrule) as a Prefect schedule."""
    options: dict[str, Any] = {k: config[k] for k in ("timezone", "day_or", "active", "slug") if k in config}
    if config.get("parameters"):
        options["parameters"] = dict(config["parameters"])
    if "cron" in config:
        return Schedule(cron=str(config["cron"]), **options)
    if "interval" in config:
        return Schedule(interval=timedelta(seconds=float(config["interval"])), **options)
    if "rrule" in config:
        return Schedule(rrule=str(config["rrule"]), **options)
    raise ValueError(f"a schedule needs cron, interval or rrule: {dict(config)}")


def describe_schedule(config: Mapping[str, Any]) -> str:
    """``cron 0 6 * * * (UTC)``, ``every 5m``: a schedule in a few words."""
    if "interval" in config:
        text = f"every {format_duration(timedelta(seconds=float(config['interval'])))}"
    elif "cron" in config:
        text = f"cron {config['cron']}"
    else:
        text = f"rrule {config.get('rrule')}"
    if config.get("timezone"):
        text += f" ({config['timezone']})"
    if config.get("active") is False:
        text += " (inactive)"
    return text


def read_project(prefect_yaml: Path) -> Project:
    """Every deployment of ``prefect_yaml`` that can be served; the others in ``skipped``, with why."""
    document = yaml.safe_load(prefect_yaml.read_text()) or {}
    project = Project()
    for config in document.get("deployments") or []:
        name = str(config.get("name", "?"))
        entrypoint = str(config.get("entrypoint", ""))
        try:
            found = load_entrypoint(entrypoint, prefect_yaml.parent.absolute())
            schedules = list(config.get("schedules") or [])
            deployment = found.to_deployment(
                name,
                description=config.get("description"),
                tags=list(config.get("tags") or []),
                parameters=dict(config.get("parameters") or {}),
                schedules=[schedule_of(s) for s in schedules],
                concurrency_limit=config.get("concurrency_limit"),
                paused=False,  # a schedule paused when serve last stopped runs again
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
            if not isinstance(deployment, RunnerDeployment):  # called outside an event loop: never a coroutine
                raise TypeError("to_deployment returned a coroutine")
        except Exception as exc:  # an entrypoint that does not import yet is skipped, not fatal
            project.skipped.append(Skipped(name, entrypoint, f"{type(exc).__name__}: {exc}"))
            continue
        project.deployments.append(deployment)
        project.served.append(Served(f"{found.name}/{name}", [describe_schedule(s) for s in schedules]))
    return project


async def serve_project(project: Project, ready: Callable[[dict[str, Any]], None]) -> None:
    """Register the deployments on the server (PREFECT_API_URL), call ``ready``, then serve until stopped."""
    # No limit: a runbook run waits for people for hours, and must not hold back the readiness checks.
    # Polled every POLL_S (Prefect's default 10 s unless PREFECT_RUNNER_POLL_FREQUENCY says otherwise):
    # a run triggered from the UI or Slack starts within that.
    poll = None if os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY") else POLL_S
    runner = Runner(name=f"bcm-serve-{os.getpid()}", query_seconds=poll, pause_on_shutdown=True, limit=None)
    for deployment in project.deployments:
        await runner.aadd_deployment(deployment)
    ready(project.summary())
    await runner.start()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m flows.serve PREFECT_YAML [--ready-fd N]``: serve on PREFECT_API_URL until SIGTERM.

    The deployments are read (their flows imported) while the server starts; then it waits for the
    server to answer and registers them. With ``--ready-fd``, one JSON line (served and skipped
    deployments) is written to that file descriptor once they are registered, and it is closed.
    """
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=main.__doc__)
    parser.add_argument("prefect_yaml", type=Path)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)

    def ready(summary: dict[str, Any]) -> None:
        line = json.dumps(summary) + "\n"
        if args.ready_fd is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        with os.fdopen(args.ready_fd, "w") as channel:
            channel.write(line)

    try:
        project = read_project(args.prefect_yaml)  # while the server starts
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise SystemExit(f"bcm serve: {args.prefect_yaml}: cannot read the deployments: {exc}") from None
    wait_for_server(os.environ.get("PREFECT_API_URL", ""), SERVER_TIMEOUT_S)
    asyncio.run(serve_project(project, ready))


def wait_for_server(api_url: str, timeout: float) -> None:
    """Return once the server at ``api_url`` answers ``/health``; SystemExit after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{api_url.rstrip('/')}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the Prefect server at {api_url} did not answer within {timeout:.0f} s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
