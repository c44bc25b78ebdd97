"""The commands that run flows: ``run``, ``resume`` and ``check``.

Which Prefect server they use: ``PREFECT_API_URL`` when set; else the server of a ``bcm serve``
running for the same ``BCM_HOME`` (found by :func:`prefect_environment` for every command, before
Prefect is imported); else Prefect's embedded server, which they start (saying so, as it takes
seconds). They show each step as it starts, waits and ends, then where the run stands. A store or
server that cannot be used is one line and exit 2 before any run is announced. Prefect and
``flows/`` are imported inside the functions that run flows, so the other commands do not pay for
them.

With a ``bcm serve`` running, ``run``, ``resume`` (and ``bcm exercise run``) do not import Prefect
at all: :func:`call_flow` hands the flow call to its launcher (:mod:`flows.launcher`), whose child
runs the flow, and the command shows the progress from the store as for a call of its own, passes
Ctrl-C and SIGTERM on to the child and says the same things with the same exit codes. A launcher
that cannot be reached: the command makes the call itself, saying so in one line.
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from bcm import clock
from bcm import errors as bcm_errors
from bcm.cli.output import FAILED, OK, JsonOption, echo, err, escape, fail, out, print_json
from bcm.cli.output import who as who_is
from bcm.cli.runbooks import print_dry_run
from bcm.cli.serve import find_served_server, served_launcher
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

if TYPE_CHECKING:
    from flows.launcher import Launched

ParamOption = Annotated[list[str] | None, typer.Option("-p", "--param", help="A parameter as key=value.")]
AutoApproveOption = Annotated[bool, typer.Option("--auto-approve", help="Exercise mode: approve every step.")]
#: How often the progress display reads the store, in seconds.
PROGRESS_POLL_S = 0.3
STARTING_SERVER = "starting Prefect's embedded server (8-15 s; `bcm serve` or PREFECT_API_URL use a running one)"
#: How long a launched runner asked to leave (Ctrl-C passed on) has before it is killed.
LEAVE_TIMEOUT_S = 10.0
_T = TypeVar("_T")


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


@dataclass(frozen=True)
class FlowCall:
    """A call of the runbook or exercise flow: its name in :data:`flows.launcher.FLOWS`, its keyword parameters.

    The parameters are JSON (they go to ``bcm serve``'s launcher as they are); ``run_id`` is among them.
    """

    flow: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.parameters["run_id"])

    def __call__(self) -> FlowEnd:
        """The call in this process (Prefect imported here)."""
        from flows.launcher import flow_named, refusal_of

        state = flow_named(self.flow)(**self.parameters, return_state=True)
        return FlowEnd(str(state.type.value), refusal_of(state))


@dataclass(frozen=True)
class FlowEnd:
    """How a :class:`FlowCall` ended: its final state (``COMPLETED``, ``FAILED``, ...; ``CRASHED`` when
    its runner died) and the bcm error the flow refused to start with, if it did."""

    state: str
    refusal: BcmError | None = None


def call_flow(call: FlowCall, *, quiet: bool) -> FlowEnd:
    """Make a runbook or exercise flow call: by ``bcm serve``'s launcher when one runs, else in this process.

    Through the launcher, this process never imports Prefect; it waits for the launcher's child to
    end, passing Ctrl-C and SIGTERM on to it, and ends as a runner in a terminal does (the same
    line, exit 130 or 143) when it leaves on one.
    """
    prefect_environment()
    if served_url is not None:
        ended = _launched(call, quiet=quiet)
        if ended is not None:
            return ended
    return run_flow(call, quiet=quiet)


def run_flow(call: Callable[[], _T], *, quiet: bool) -> _T:
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
            raise _unreachable() from None


def _launched(call: FlowCall, *, quiet: bool) -> FlowEnd | None:
    """The call made by a child of ``bcm serve``'s launcher; None when there is none to take it."""
    from flows.launcher import HEADER_MARK, LauncherUnavailable, launch  # no Prefect: the point of the launcher

    settings = load_settings()
    path = served_launcher(settings.home)
    if path is None:
        return None
    log = settings.home / "logs" / f"{call.run_id}.log"
    relay = _LogRelay(log, skip=HEADER_MARK)
    with _PassedOn() as signals:
        try:
            child = launch(path, call.flow, call.parameters, env=dict(os.environ), cwd=os.getcwd(), log=log)
        except LauncherUnavailable as exc:
            if signals.received is not None:
                _leave(settings, call.run_id, signals.received)
            if not quiet:
                echo(f"{exc}: running the flow in this process", stderr=True)
            return None
        if not quiet:
            echo(f"on the Prefect server of `bcm serve`: {str(served_url).removesuffix('/api')}", stderr=True)

        def tick() -> None:
            signals.pass_on(child)
            if signals.received is None:  # after it, the child's last words: what _leave says here
                relay.pump()

        result = child.wait(tick)
        if signals.received is None:
            relay.pump(final=True)
    if signals.received is not None:
        _leave(settings, call.run_id, signals.received)
    if result is None:
        short = call.run_id[:8]
        echo(f"the runner of run {short} (pid {child.pid}) ended before the run did; its log: {log}", stderr=True)
        return FlowEnd("CRASHED")
    if result.get("error"):
        raise _error_of(result["error"])
    refusal = result.get("refusal")
    return FlowEnd(str(result.get("state")), _bcm_error_of(refusal) if refusal else None)


class _LogRelay:
    """What a launched runner writes to its log (Prefect's warnings and errors) copied to stderr as it
    comes, where a runner in this process writes it; not the launcher's first line (what was called)."""

    def __init__(self, path: Path, *, skip: bytes) -> None:
        self.path = path
        self.skip = skip
        try:
            self.offset = path.stat().st_size  # a resumed run's log goes on after the last runner's
        except OSError:
            self.offset = 0
        self.first = True
        self.rest = b""

    def pump(self, *, final: bool = False) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        if final and self.rest:
            lines.append(self.rest)
            self.rest = b""
        for line in lines:
            if self.first and line.startswith(self.skip):
                self.first = False
                continue
            self.first = False
            sys.stderr.write(line.decode(errors="replace") + "\n")
        sys.stderr.flush()


class _PassedOn:
    """Ctrl-C and SIGTERM noted while a launched runner runs, and passed on to it (once; then SIGKILL
    if it has not gone within :data:`LEAVE_TIMEOUT_S`)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.sent_at: float | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _PassedOn:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def pass_on(self, child: Launched) -> None:
        if self.received is None:
            return
        if self.sent_at is None:
            child.signal(self.received)
            self.sent_at = time.monotonic()
        elif time.monotonic() - self.sent_at > LEAVE_TIMEOUT_S:
            child.signal(signal.SIGKILL)


def _leave(settings: Settings, run_id: str, signum: int) -> None:
    """End this process as a runner in a terminal ends on Ctrl-C or SIGTERM: the same line, 128 + signum."""
    try:
        with Store.open(settings.database_url) as store:
            short = store.get_run(run_id).short_id
    except BcmError:  # the run was never recorded: the runner left before it started
        short = None
    if short is None:
        line = "interrupted: `bcm resume RUN` continues a run where it stopped\n"
    else:  # the words of flows.runbook's leave_on_signals, which a runner in this process prints
        line = (
            f"\ninterrupted: run {short} is kept in the store as it was; "
            f"`bcm resume {short}` continues it where it stopped\n"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, line.encode())
    os._exit(128 + signum)


def _bcm_error_of(described: dict[str, Any]) -> BcmError:
    """A bcm error told by the launcher's child (class name, message) as an error with the same exit code."""
    found = getattr(bcm_errors, str(described.get("type")), None)
    message = str(described.get("message"))
    if not (isinstance(found, type) and issubclass(found, BcmError)):
        return BcmError(message)
    if found.__init__ is BcmError.__init__:  # made from its message alone
        return found(message)
    return InputError(message) if issubclass(found, (InputError, bcm_errors.SpecError)) else BcmError(message)


def _error_of(described: dict[str, Any]) -> Exception:
    """An exception that stopped the flow call in the launcher's child, as the call here would have raised it."""
    kind, message = str(described.get("type")), str(described.get("message"))
    if "Failed to reach API" in message:
        return _unreachable()
    if hasattr(bcm_errors, kind):
        return _bcm_error_of(described)
    found = getattr(builtins, kind, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found(message)
    return RuntimeError(f"{kind}: {message}")


def _unreachable() -> InputError:
    url = os.environ.get("PREFECT_API_URL", "")
    return InputError(
        f"cannot reach the Prefect server at {url}: start it (`prefect server start`) or unset "
        "PREFECT_API_URL to use Prefect's embedded server"
    )


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
    who = who_is(by)
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
    call = FlowCall(
        "run-runbook",
        {
            "runbook": str(loaded.path),
            "parameters": given,
            "mode": mode,
            "triggered_by": who,
            "auto_approve": auto_approve,
            "run_id": run_id,
            "known_times": {name: at.isoformat() for name, at in times.items()},
            "leave_on_signal": True,
        },
    )
    _run_and_report(settings, loaded, catalog, call, json_out=json_out)


def _run_and_report(
    settings: Settings, loaded: LoadedRunbook, catalog: Catalog, call: FlowCall, *, json_out: bool
) -> None:
    # Prefect: imported once the run is announced (as it takes seconds), unless bcm serve's launcher runs it.
    if json_out:
        call_flow(call, quiet=True)
    else:
        with Progress(settings, call.run_id, loaded, catalog):
            call_flow(call, quiet=False)
    with open_store(settings) as store:
        status = print_run(store, call.run_id, json_out=json_out, library_root=settings.runbooks)
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
    call = FlowCall(
        "run-runbook",
        {
            "runbook": record.runbook_path,
            "mode": record.mode,
            "triggered_by": record.triggered_by,
            "auto_approve": auto_approve,
            "run_id": record.id,
            "resume": True,
            "take_over": take_over,
            "leave_on_signal": True,
        },
    )
    _run_and_report(settings, loaded, catalog, call, json_out=json_out)


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
