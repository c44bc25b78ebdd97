"""The commands that run flows: ``run``, ``resume`` and ``check``.

Which Prefect server they use: ``PREFECT_API_URL`` when set; else the server of a ``bcm serve``
running for the same ``BCM_HOME`` (found by :func:`prefect_environment` for every command, before
Prefect is imported); else Prefect's embedded server, which they start (saying so, as it takes
seconds). They show each step as it starts, waits and ends, then where the run stands. A store or
server that cannot be used is one line and exit 2 before any run is announced. Prefect and
``flows/`` are imported inside the functions that run flows, so the other commands do not pay for
them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any

import typer
from rich.table import Table

from bcm import clock
from bcm.cli.output import FAILED, OK, JsonOption, echo, err, escape, fail, out, print_json
from bcm.cli.runbooks import print_dry_run
from bcm.cli.serve import find_served_server
from bcm.cli.status import RunArgument, open_store, print_run
from bcm.config import Settings, load_settings
from bcm.durations import format_duration
from bcm.engine.liveness import assess
from bcm.errors import BcmError, InputError
from bcm.incidents import parse_time
from bcm.spec import Catalog, LoadedRunbook, load_one
from bcm.spec.params import resolve_parameters
from bcm.spec.problems import display_path
from bcm.store import RunRecord, StepRecord, Store

ParamOption = Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")]
AutoApproveOption = Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")]
#: How often the progress display reads the store, in seconds.
PROGRESS_POLL_S = 0.3
STARTING_SERVER = "starting Prefect's embedded server (8-15 s; `bcm serve` or PREFECT_API_URL use a running one)"


#: The API URL of the ``bcm serve`` this process uses (None: PREFECT_API_URL, or the embedded server).
served_url: str | None = None
#: Why a ``bcm serve`` recorded in BCM_HOME is not used (it does not answer), said before an embedded server starts.
served_note: str | None = None


def prefect_environment() -> None:
    """Quiet, offline Prefect for command-line runs, on the server of ``bcm serve`` when one runs.

    Called first by every command (and again before a flow runs), before Prefect is imported:
    Prefect reads these settings once. With no ``PREFECT_API_URL``, a live ``bcm serve`` recorded in
    ``$BCM_HOME/serve.json`` sets it (see :mod:`bcm.cli.serve`); without one, nothing is set and the
    commands that run flows start Prefect's embedded server.
    """
    global served_url, served_note
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    if served_url is not None or os.environ.get("PREFECT_API_URL"):
        return
    served_url, served_note = find_served_server(load_settings().home)
    if served_url is not None:
        os.environ["PREFECT_API_URL"] = served_url


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``-p key=value`` options as a dict (exit 2 on one without ``=``)."""
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"-p {pair}: write parameters as key=value, e.g. -p site=lon-dc1")
        given[key.strip()] = value
    return given


def check_prefect_server() -> None:
    """With PREFECT_API_URL set: one line and exit 2 now, before a run is announced, when nothing answers."""
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url or url == served_url:
        return  # bcm serve's server answered its health check a moment ago
    import httpx  # only the commands that run flows pay for it

    try:
        httpx.get(f"{url}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the Prefect server at {url} ({type(exc).__name__}): start it (`prefect server start`) or "
            "unset PREFECT_API_URL to use Prefect's embedded server"
        )


def run_flow(call: Callable[[], Any], *, quiet: bool) -> Any:
    """Run a flow call on the server :func:`prefect_environment` chose, Prefect's heartbeat off.

    Says which: ``bcm serve``'s, or the embedded one, started first (it takes seconds).
    """
    prefect_environment()
    # Prefect takes seconds to import: only the commands that run flows pay for it.
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.server import EmbeddedServerError, embedded, start_embedded_server

    if served_url is not None and not quiet:
        echo(f"on the Prefect server of `bcm serve`: {served_url.removesuffix('/api')}", stderr=True)
    if embedded():
        if served_note is not None and not quiet:
            echo(f"{served_note}: using Prefect's embedded server", stderr=True)
        try:
            with _spinner(STARTING_SERVER, quiet):
                start_embedded_server()
        except EmbeddedServerError as exc:
            fail(
                f"Prefect's embedded server did not start: {exc}. The machine may be overloaded: try again, or "
                "start a server (`prefect server start`) and set PREFECT_API_URL"
            )
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


@contextmanager
def _spinner(text: str, quiet: bool) -> Iterator[None]:
    if quiet:
        yield
    elif err.is_terminal:
        with err.status(escape(text)):
            yield
    else:
        echo(text + " ...", stderr=True)
        yield


class Progress:
    """Prints each step as it starts, waits and ends, read from the store while the run goes on.

    Reading the store (not hooking the runner) shows the same thing whoever runs the steps, and
    costs the run nothing.
    """

    def __init__(self, settings: Settings, run_id: str, loaded: LoadedRunbook, catalog: Catalog) -> None:
        self.settings = settings
        self.run_id = run_id
        self.loaded = loaded
        self.catalog = catalog
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bcm-progress")

    def __enter__(self) -> Progress:
        self.store = Store.open(self.settings.database_url)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._show()  # the last changes
        self.store.close()

    def _loop(self) -> None:
        while not self._stop.wait(PROGRESS_POLL_S):
            self._show()

    def _show(self) -> None:
        try:
            steps = self.store.get_steps(self.run_id)
        except BcmError:
            return  # the store is busy: the next poll shows it
        for step in steps:
            if self.seen.get(step.step_id) == step.status:
                continue
            self.seen[step.step_id] = step.status
            err.print(self._line(step), markup=False, highlight=False)

    def _line(self, step: StepRecord) -> str:
        where = f"{step.phase}/{step.step_id}"
        if step.status == "running":
            return f"  started   {where}"
        if step.status == "waiting":
            return f"  waiting   {where}: {who_may_answer(self.loaded, self.catalog, step.step_id)}\n" + (
                f"            answer with: bcm approve {self.run_id[:8]} {step.step_id} --by YOU [--reject]"
            )
        took = f" in {format_duration(step.duration)}" if step.duration is not None else ""
        detail = step.error or step.reason or (f"by {step.actor}" if step.actor else "")
        return f"  {step.status:<9} {where}{took}" + (f": {detail}" if detail else "")


def who_may_answer(loaded: LoadedRunbook, catalog: Catalog, step_id: str) -> str:
    """``incident_commander (Ada Lovelace, Grace Hopper) may answer`` for a person step."""
    try:
        role_id = loaded.runbook.step(step_id).person_role
    except KeyError:
        return "a person"
    role = catalog.roles.get(role_id or "")
    if role is None:
        return f"{role_id} may answer"
    names = ", ".join(p.name for p in [*role.members, *role.alternates])
    return f"{role_id} ({names}) may answer"


def _known_times(impact_started: str | None, detected: str | None) -> dict[str, datetime]:
    """``--impact-started`` and ``--detected`` as aware times, checked like ``bcm incident record``."""
    given = {"impact_started": impact_started, "detected": detected}
    times: dict[str, datetime] = {}
    for name, text in given.items():
        if text is None:
            continue
        option = "--" + name.replace("_", "-")
        try:
            times[name] = parse_time(text)
        except ValueError as exc:
            fail(f"{option} {text}: {exc}")
        if times[name] > clock.now() + timedelta(minutes=1):
            fail(f"{option} {text}: is in the future; give the time it happened")
    if "impact_started" in times and "detected" in times and times["detected"] < times["impact_started"]:
        fail(
            f"--detected {detected} is before --impact-started {impact_started}: "
            "a disruption is detected after it starts"
        )
    return times


def run_cmd(
    runbook: Annotated[str, typer.Argument(help="A runbook id from the library or a path to a YAML file.")],
    param: ParamOption = None,
    mode: Annotated[str, typer.Option(help="real or exercise.")] = "real",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan with rendered templates.")] = False,
    json_out: JsonOption = False,
    auto_approve: AutoApproveOption = False,
    by: Annotated[str | None, typer.Option("--by", help="Who triggers the run (default: $USER).")] = None,
    impact_started: Annotated[
        str | None,
        typer.Option("--impact-started", help="When the disruption began, ISO 8601 with offset (2026-05-01T09:00Z)."),
    ] = None,
    detected: Annotated[
        str | None, typer.Option("--detected", help="When it was detected, ISO 8601 with offset.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", hidden=True, help="Use this run id (Slack trigger).")
    ] = None,
) -> None:
    """Run a runbook: a Prefect flow run whose steps are tasks; shows progress, then the timeline."""
    # The engine's runner imports every step kind (httpx among them): only a real run pays for it.
    from bcm.engine.runner import new_run_id

    if mode not in ("real", "exercise"):
        fail(f"--mode {mode}: use real or exercise")
    if auto_approve and mode != "exercise":
        fail("--auto-approve is only for exercise mode: in a real disruption people approve")
    settings = load_settings()
    loaded, catalog = load_one(runbook, library_root=settings.runbooks)
    given = parse_params(param or [])
    values, problems = resolve_parameters(loaded.runbook, given)
    if problems:
        fail("\n".join(f"{display_path(loaded.path)}: {p}" for p in problems))
    times = _known_times(impact_started, detected)
    who = by or os.environ.get("USER") or "unknown"
    if dry_run:
        print_dry_run(loaded, catalog, values, mode, who, json_out=json_out)
        return
    open_store(settings, write=True).close()
    check_prefect_server()
    run_id = run_id or new_run_id()
    if not json_out:
        echo(
            f"run {run_id[:8]} of {loaded.runbook.id} ({mode}) starting; `bcm status {run_id[:8]}` shows it",
            stderr=True,
        )
    # Prefect: imported once the run is announced, as it takes seconds.
    from flows.runbook import run_runbook

    def call() -> Any:
        return run_runbook(
            runbook=str(loaded.path),
            parameters=given,
            mode=mode,
            triggered_by=who,
            auto_approve=auto_approve,
            run_id=run_id,
            known_times={name: at.isoformat() for name, at in times.items()},
            leave_on_signal=True,
            return_state=True,
        )

    _run_and_report(settings, run_id, loaded, catalog, call, json_out=json_out)


def _run_and_report(
    settings: Settings,
    run_id: str,
    loaded: LoadedRunbook,
    catalog: Catalog,
    call: Callable[[], Any],
    *,
    json_out: bool,
) -> None:
    if json_out:
        run_flow(call, quiet=True)
    else:
        with Progress(settings, run_id, loaded, catalog):
            run_flow(call, quiet=False)
    with open_store(settings) as store:
        status = print_run(store, run_id, json_out=json_out, library_root=settings.runbooks)
    raise typer.Exit(OK if status == "succeeded" else FAILED)


def resume_cmd(
    run: RunArgument,
    auto_approve: AutoApproveOption = False,
    take_over: Annotated[
        bool,
        typer.Option(
            "--take-over", help="Go on even when a step's last attempt ran on another host (make sure it stopped)."
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Continue an interrupted or failed run: finished steps are kept, with their true times.

    An exercise run goes on as its exercise (``bcm exercise run EXERCISE --resume RUN``).
    """
    settings = load_settings()
    with open_store(settings, write=True) as store:
        record = store.get_run(run)
        if record.status == "succeeded":
            fail(f"run {record.short_id} finished already ({record.status}): nothing to resume")
        if record.source != "engine":
            fail(f"run {record.short_id} was recorded by hand ({record.source}), not run by bcm: nothing to resume")
        if auto_approve and record.mode != "exercise":
            fail("--auto-approve is only for exercise mode: in a real disruption people approve")
        played = store.get_exercise_run(record.id)
        if played is None:
            loaded, catalog = _check_resumable(store, record, settings, take_over=take_over, json_out=json_out)
    if played is not None:
        # An exercise run goes on as its exercise: the same clock, its injects, none delivered twice.
        from bcm.cli.exercise_play import run_cmd as play_exercise

        play_exercise(
            exercise=played.exercise_path, resume=record.id, json_out=json_out, speed=1.0, auto_respond=False, by=None
        )
        return
    # Prefect: imported once the run is announced, as it takes seconds.
    from flows.runbook import run_runbook

    def call() -> Any:
        return run_runbook(
            runbook=record.runbook_path,
            mode=record.mode,
            triggered_by=record.triggered_by,
            auto_approve=auto_approve,
            run_id=record.id,
            resume=True,
            take_over=take_over,
            leave_on_signal=True,
            return_state=True,
        )

    _run_and_report(settings, record.id, loaded, catalog, call, json_out=json_out)


def _check_resumable(
    store: Store, record: RunRecord, settings: Settings, *, take_over: bool, json_out: bool
) -> tuple[LoadedRunbook, Catalog]:
    """Refuse to resume a run whose runner lives or whose runbook changed; stop what its last attempts left."""
    # The engine's runner imports every step kind (httpx among them): only a resumed run pays for it.
    from bcm.engine.liveness import stop_leftover_attempts

    liveness = assess(record)
    if liveness.state == "alive":
        beat = f"{(clock.now() - (record.heartbeat_at or record.started_at)).total_seconds():.0f}s ago"
        fail(
            f"run {record.short_id} is still running: its runner ({record.runner}) gave a heartbeat {beat}. "
            f"`bcm status {record.short_id}` shows where it is"
        )
    if liveness.state == "stalled":
        pid = (record.runner or "").split("/")[-2:-1] or ["?"]
        fail(
            f"run {record.short_id}: {liveness.why}; a second runner would run its steps twice: "
            f"stop it first (kill {pid[0]}), then `bcm resume {record.short_id}`"
        )
    loaded, catalog = load_one(record.runbook_path, library_root=settings.runbooks)
    if loaded.sha256 != record.runbook_hash:
        fail(
            f"runbook {loaded.runbook.id} ({display_path(loaded.path)}) changed since run {record.short_id} "
            "started; resuming would mix two versions of the plan: restore the file (git) or start a new run"
        )
    check_prefect_server()
    if not json_out:
        was = liveness.why if liveness.interrupted else record.status
        echo(f"resuming run {record.short_id} of {record.runbook_id} ({was})", stderr=True)
    stop_leftover_attempts(store, record.id, take_over=take_over, report=partial(echo, stderr=True))
    return loaded, catalog


def check_cmd(
    runbooks: Annotated[list[str] | None, typer.Argument(help="Runbook ids or paths (default: all).")] = None,
    param: ParamOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run prevention (readiness) steps and record pass/fail."""
    settings = load_settings()
    refs = [str(load_one(ref, library_root=settings.runbooks)[0].path) for ref in runbooks or []]
    given = parse_params(param or [])
    open_store(settings, write=True).close()
    check_prefect_server()
    # Prefect takes seconds to import: only the commands that run flows pay for it.
    from flows.readiness import readiness_checks

    results = run_flow(lambda: readiness_checks(runbooks=refs or None, parameters=given), quiet=json_out)
    failed = [r for r in results if not r["ok"]]
    if json_out:
        print_json({"ready": not failed, "checks": results})
    else:
        table = Table(title="Readiness checks")
        for column in ("runbook", "check", "result", "detail"):
            table.add_column(column)
        for r in results:
            verdict = "[green]ready[/]" if r["ok"] else f"[red]{r['status']}[/]"
            table.add_row(escape(r["runbook"]), escape(r["step"]), verdict, escape(str(r["detail"])))
        out.print(table)
        out.print(f"{len(results) - len(failed)} of {len(results)} checks ready")
    raise typer.Exit(FAILED if failed else OK)
