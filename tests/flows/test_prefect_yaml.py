"""prefect.yaml: every deployment runs a real flow with parameters it takes; runbooks and scheduled
exercises each have theirs; and on a real `prefect server` the schedules create flow runs."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import prefect
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from prefect import Flow
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.client.schemas import schedules as client_schedules
from prefect.server.schemas.schedules import CronSchedule

from bcm.exercises.library import LoadedExercise, load_exercises
from bcm.exercises.models import Schedule
from bcm.exercises.programme import exercise_deployment, next_fire
from bcm.spec import load_library
from tests.conftest import ROOT

LIBRARY = ROOT / "runbooks"
PROJECT = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS: dict[str, dict[str, Any]] = {d["name"]: d for d in PROJECT["deployments"]}
SCHEDULED = [d for d in DEPLOYMENTS.values() if d.get("schedules")]


def scheduled_exercises() -> list[LoadedExercise]:
    exercises = load_exercises(LIBRARY).exercises
    return [exercises[key] for key in sorted(exercises) if exercises[key].exercise.schedule is not None]


def test_deployment_names_are_unique() -> None:
    """No two deployments in prefect.yaml share a name (`prefect deploy --all` would register one)."""
    names = [d["name"] for d in PROJECT["deployments"]]
    assert sorted(names) == sorted(set(names))


def test_prefect_version_is_the_one_the_project_runs() -> None:
    """`prefect-version` is the Prefect pinned in constraints.txt, installed, and allowed by pyproject."""
    pinned = re.search(r"^prefect==(\S+)$", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert pinned is not None
    requirement = next(
        r
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if r.startswith("prefect")
    )
    version = PROJECT["prefect-version"]
    assert (version, prefect.__version__) == (pinned.group(1), pinned.group(1))
    assert version in SpecifierSet(requirement.removeprefix("prefect"))


def test_prefect_reads_the_file_and_every_schedule() -> None:
    """Prefect's own prefect.yaml model takes the file, and each schedule is a valid Prefect schedule."""
    model = PrefectYamlModel.model_validate(PROJECT)
    assert [d.name for d in model.deployments] == list(DEPLOYMENTS)
    for deployment in SCHEDULED:
        for config in deployment["schedules"]:
            if "cron" in config:  # Prefect checks the expression and the zone
                client_schedules.CronSchedule(cron=config["cron"], timezone=config["timezone"])
            else:
                client_schedules.IntervalSchedule(interval=timedelta(seconds=config["interval"]))


def entrypoint_flow(entrypoint: str) -> object:
    """What ``path/to/module.py:function`` names, imported as the module ``path.to.module``."""
    path, _, name = entrypoint.partition(":")
    assert path.endswith(".py") and (ROOT / path).is_file(), f"{entrypoint}: no such file"
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


@pytest.mark.parametrize("deployment", list(DEPLOYMENTS.values()), ids=list(DEPLOYMENTS))
def test_entrypoint_is_a_flow_that_takes_the_parameters(deployment: dict[str, Any]) -> None:
    """The entrypoint is a Prefect flow, and its signature takes the parameters given, the required ones at least."""
    flow = entrypoint_flow(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    given = deployment.get("parameters") or {}
    signature = inspect.signature(flow.fn)
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    assert (sorted(set(given) - set(signature.parameters)), sorted(required - set(given))) == ([], [])
    flow.validate_parameters(given)  # the values fit the annotations, as Prefect checks them at run time


def test_every_runbook_has_its_deployment() -> None:
    """Each runbook of the library has a deployment named after it, triggered by hand, in the bcm pool."""
    runbooks = sorted(load_library(LIBRARY).runbooks)
    expected = {
        rid: {
            "name": rid,
            "entrypoint": "flows/runbook.py:run_runbook",
            "description": f"Run the {rid} runbook (real or exercise mode).",
            "tags": [f"runbook:{rid}"],
            "parameters": {"runbook": rid, "mode": "real", "triggered_by": "prefect"},
            "work_pool": {"name": "bcm"},
        }
        for rid in runbooks
    }
    assert {rid: DEPLOYMENTS.get(rid) for rid in runbooks} == expected


def test_every_scheduled_exercise_has_its_deployment() -> None:
    """Each exercise with a schedule has `exercise-<id>` with the file's cron and zone; no other exercise deployment."""
    exercises = scheduled_exercises()
    assert exercises, "the library has scheduled exercises"
    expected = {f"exercise-{e.exercise.id}": exercise_deployment(e.exercise) for e in exercises}
    declared = {name: d for name, d in DEPLOYMENTS.items() if d["entrypoint"] == "flows/exercise.py:run_exercise"}
    # On a difference, copy the expected entry into prefect.yaml: the exercise file is the source.
    assert declared == expected


def test_next_dates_are_those_prefect_computes() -> None:
    """The next dates `bcm exercise plan` shows are those Prefect's cron schedule gives for the same cron and zone."""
    start = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    for loaded in scheduled_exercises():
        schedule = loaded.exercise.schedule
        assert schedule is not None
        prefect_schedule = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        prefect_dates = asyncio.run(prefect_schedule.get_dates(n=6, start=start))
        ours, at = [], start
        for _ in range(6):
            at = next_fire(schedule, at)
            ours.append(at)
        assert (loaded.exercise.id, ours) == (loaded.exercise.id, [d.astimezone(UTC) for d in prefect_dates])


# --------------------------------------------------------------------------- a real Prefect server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    """A Prefect of its own: settings from here only (none inherited), the scheduler quick and far-sighted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # The recent-deployments loop schedules a deployment within a second or two of its creation;
            # 400 days ahead reaches a yearly exercise.
            "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
            "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_SCHEDULED_TIME": "P400D",
            # Services this test does not need: less work on a shared machine.
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
        }
    )
    return env


@pytest.fixture
def prefect_server_process(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`prefect server start` on a free port with its own PREFECT_HOME: the scheduler runs there, not in the
    session harness (an ephemeral server, which runs no scheduler)."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(tmp_path / "prefect", api_url)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prefect server did not answer within 120 s"
            time.sleep(0.5)
        yield api_url, env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def scheduled_runs(api: httpx.Client, deployment_id: str) -> list[dict[str, Any]]:
    response = api.post(
        "/flow_runs/filter",
        json={
            "flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        },
    )
    response.raise_for_status()
    return list(response.json())


@pytest.mark.prefect
def test_deploy_all_then_schedules_create_runs(prefect_server_process: tuple[str, dict[str, str]]) -> None:
    """`prefect deploy --all` registers every deployment on a real server, and its scheduler creates each
    scheduled deployment's runs: an exercise's first at the next date `bcm exercise plan` shows."""
    api_url, env = prefect_server_process
    with httpx.Client(base_url=api_url, timeout=30) as api:
        api.post("/work_pools/", json={"name": "bcm", "type": "process"}).raise_for_status()
        started = datetime.now(UTC)
        deployed = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        before = datetime.now(UTC)
        listed = api.post("/deployments/filter", json={}).json()
        assert sorted(d["name"] for d in listed) == sorted(DEPLOYMENTS)
        ids = {d["name"]: d["id"] for d in listed}
        deadline = time.monotonic() + 60
        runs: dict[str, list[dict[str, Any]]] = {}
        while time.monotonic() < deadline:
            runs = {d["name"]: scheduled_runs(api, ids[d["name"]]) for d in SCHEDULED}
            if all(runs.values()):
                break
            time.sleep(1)
        assert sorted(name for name, found in runs.items() if not found) == []
    # Each deployment's runs are at the times its schedule gives: a cron's successive dates as
    # `bcm exercise plan` computes them from when the scheduler ran (while deploying), an interval's steps.
    for deployment in SCHEDULED:
        name = deployment["name"]
        times = [datetime.fromisoformat(run["expected_start_time"]) for run in runs[name]]
        (config,) = deployment["schedules"]
        if "interval" in config:
            assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(seconds=config["interval"])}
            continue
        schedule = Schedule(cron=config["cron"], timezone=config["timezone"])
        at = next_fire(schedule, started)
        if at < before and times[0] != at:  # a date that fell while deploying: the scheduler ran after it
            at = next_fire(schedule, at)
        expected = [at]
        while len(expected) < len(times):
            expected.append(next_fire(schedule, expected[-1]))
        assert (name, times) == (name, expected)
        assert [run["parameters"] for run in runs[name]] == [deployment.get("parameters", {})] * len(times)
    assert {f"exercise-{e.exercise.id}" for e in scheduled_exercises()} <= set(runs)
