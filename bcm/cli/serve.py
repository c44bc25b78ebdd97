"""``bcm serve``: the programme on one machine, and how every other ``bcm`` command finds it.

``bcm serve`` supervises four processes and records where the server listens:

1. ``prefect server start`` (API, UI, scheduler; ``flows/server.py``) on ``--host``/``--port``,
   with its own Prefect home in ``$BCM_HOME/prefect``: its database is SQLite there, or PostgreSQL
   when Prefect's ``PREFECT_API_DATABASE_CONNECTION_URL`` is set;
2. the runner (``python -m flows.serve``) serving the deployments of ``prefect.yaml`` with their
   schedules, so readiness checks, the outbox flush and exercises fire without a worker;
3. the launcher (``python -m flows.launcher``, on ``$BCM_HOME/launcher.sock``): Prefect and the
   flows imported once, so that ``bcm run``, ``bcm resume`` and ``bcm exercise run`` hand it their
   flow call instead of importing Prefect themselves (``flows/launcher.py``). It is an optimisation:
   one that does not start or stops is said once, and the commands then call their flows
   themselves;
4. a watchdog that stops them if ``bcm serve`` is killed (``kill -9``).

Once the deployments are registered (and the launcher listens) it writes ``$BCM_HOME/serve.json``
(url, pid, host, started_at, launcher, ...). Every ``bcm`` command reads it before Prefect is imported
(:func:`find_served_server`, called from ``prefect_environment``): with no ``PREFECT_API_URL`` and a
``serve.json`` whose process is alive on this host and whose server answers ``/api/health``, the
command sets ``PREFECT_API_URL`` to it instead of starting an embedded server. A file left by a
dead process is removed. A ``PREFECT_API_URL`` set in the environment or the active Prefect
profile always wins.

One ``bcm serve`` per ``BCM_HOME``: it holds an advisory lock on ``$BCM_HOME/serve.lock`` while it
runs (the kernel releases it whatever way the process ends), so a second one says so and exits 2.
Ctrl-C (exit 130) and SIGTERM (exit 0: a service manager's normal stop) stop the launcher first
(the runs it started are interrupted, resumable), then the runner (Prefect pauses the schedules),
then the server, and remove ``serve.json`` and the launcher's socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
import yaml

from bcm.cli.output import FAILED, INTERRUPTED, OK, echo, fail
from bcm.config import load_settings

__all__ = ["find_served_server", "serve_cmd", "serve_file", "served_launcher"]

SERVE_FILE = "serve.json"
LOCK_FILE = "serve.lock"
#: The launcher's socket in BCM_HOME (flows.launcher.SOCKET_NAME: not imported, it is not needed to find it).
LAUNCHER_SOCKET = "launcher.sock"
#: A Unix socket's path is at most this long.
MAX_SOCKET_PATH = 107
#: How long another command waits for the served server's ``/api/health`` before ignoring it.
HEALTH_TIMEOUT_S = 1.0
#: How long the server may take to answer, and the runner to register the deployments (a loaded 2-core machine).
STARTUP_TIMEOUT_S = 180
#: How long the runner (cancelling runs, pausing schedules), then the server, may take to stop.
STOP_TIMEOUT_S = 20
_POLL_S = 0.2
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
_T = TypeVar("_T")


def serve_file(home: Path) -> Path:
    """Where ``bcm serve`` records its server: ``$BCM_HOME/serve.json``."""
    return home / SERVE_FILE


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def answers(api_url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """Whether a Prefect server answers ``GET {api_url}/health`` within ``timeout`` (stdlib: no httpx import)."""
    import http.client  # only when a serve.json exists

    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path.rstrip("/") + "/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _profile_api_url(environ: dict[str, str]) -> str | None:
    """``PREFECT_API_URL`` of the active Prefect profile, if it sets one (then it wins over ``bcm serve``)."""
    import tomllib

    home = Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    name = environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    profile = (profiles.get("profiles") or {}).get(name) or {}
    value = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(value) if value else None


def find_served_server(home: Path, environ: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """The API URL of a live ``bcm serve`` for ``home``, or None, with a note when one was found but is not used.

    Called for every command before Prefect is imported: with no ``serve.json`` it costs one failed
    ``open``. A file whose process is gone is removed; one from another host is left alone.

    Returns:
        ``(url, None)`` to use; ``(None, why)`` when a ``bcm serve`` is recorded but not usable;
        ``(None, None)`` when there is none, or ``PREFECT_API_URL`` is set.
    """
    env = dict(os.environ if environ is None else environ)
    if env.get("PREFECT_API_URL"):
        return None, None
    path = serve_file(home)
    record = _read_record(path)
    if record is None:
        if path.exists() and not _locked(home):
            _remove(path)  # unreadable and no bcm serve holds the lock: left by a crash
        return None, None
    url = str(record.get("url") or "")
    if record.get("host") != socket.gethostname():
        return None, None  # a shared BCM_HOME: another machine's bcm serve, not reachable as recorded
    if not _pid_alive(record.get("pid")):
        _remove(path)  # stale: its bcm serve died without cleaning up
        return None, None
    if _profile_api_url(env):
        return None, None
    if not answers(url):
        return None, f"bcm serve (pid {record.get('pid')}) does not answer at {url}"
    return url, None


def served_launcher(home: Path) -> Path | None:
    """The socket of the launcher of the ``bcm serve`` recorded for ``home`` (one :func:`find_served_server`
    found alive), or None when it has none."""
    record = _read_record(serve_file(home)) or {}
    path = record.get("launcher")
    return Path(path) if isinstance(path, str) and path else None


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # a read-only BCM_HOME: ignoring the file is enough
        path.unlink(missing_ok=True)


def _locked(home: Path) -> bool:
    """Whether a ``bcm serve`` holds the lock of ``home``."""
    import fcntl

    try:
        with (home / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _take_lock(home: Path) -> IO[str] | None:
    """The lock of ``home``'s ``bcm serve``, held until the file is closed (or the process ends); None if taken."""
    import fcntl

    handle = (home / LOCK_FILE).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _database(env: dict[str, str], prefect_home: Path) -> str:
    """The Prefect server's database in words, with any password hidden."""
    url = env.get("PREFECT_API_DATABASE_CONNECTION_URL") or env.get("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    if not url:
        where = prefect_home / "prefect.db"
        return f"SQLite {where} (Prefect's default; PREFECT_API_DATABASE_CONNECTION_URL for PostgreSQL)"
    shown = re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)
    kind = "PostgreSQL" if url.startswith("postgres") else "database"
    return f"{kind} {shown} (PREFECT_API_DATABASE_CONNECTION_URL)"


def _project_file(given: Path | None) -> Path:
    """prefect.yaml: the one given, else the working directory's, else the one beside the installed flows."""
    candidates = [given] if given else [Path("prefect.yaml"), Path(__file__).resolve().parents[2] / "prefect.yaml"]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            try:
                document = yaml.safe_load(candidate.read_text())
            except (OSError, yaml.YAMLError) as exc:
                fail(f"{candidate}: cannot read the deployments: {exc}")
            if not isinstance(document, dict) or not isinstance(document.get("deployments"), list):
                fail(f"{candidate}: no `deployments:` list to serve")
            return candidate.absolute()
    fail(f"{given or 'prefect.yaml'}: no such file: run `bcm serve` in the project folder or pass --prefect-yaml")


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class _Signals:
    """Ctrl-C and SIGTERM noted, not raised: the supervisor stops its processes in order, then exits.

    A second one while stopping hurries it: what is still running is killed.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.count = 0
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._note)

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.received is None:
            self.received = signum


class _Supervisor:
    """The processes of one ``bcm serve`` and its record; :meth:`close` stops and removes them all."""

    def __init__(self, home: Path, signals: _Signals) -> None:
        self.home = home
        self.signals = signals
        self.server: subprocess.Popen[bytes] | None = None
        self.runner: subprocess.Popen[bytes] | None = None
        self.launcher: subprocess.Popen[bytes] | None = None
        self.launcher_socket = home / LAUNCHER_SOCKET
        self.problem: str | None = None

    def wait_until(self, what: str, done: Callable[[], _T | None]) -> _T | None:
        """Poll ``done()`` until it returns a value, a signal arrives (None) or a process dies (problem, None)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self.signals.received is None:
            result = done()
            if result is not None:
                return result
            if self.check() is not None:
                return None
            if time.monotonic() > deadline:
                self.problem = f"{what}: nothing after {STARTUP_TIMEOUT_S} s (the machine may be overloaded)"
                return None
            time.sleep(_POLL_S)
        return None

    def check(self) -> str | None:
        """Why serving stopped on its own (a process died), or None while both run."""
        for name, proc in (("the Prefect server", self.server), ("the runner", self.runner)):
            if proc is not None and proc.poll() is not None and self.problem is None:
                log = self.home / "prefect" / "server.log"
                where = f"; its log: {log}" if proc is self.server else " (its output is above)"
                self.problem = f"{name} stopped (exit code {proc.returncode}){where}"
        return self.problem

    def launcher_ready(self) -> bool | None:
        """True once the launcher listens; False when it has none (it ended: said once); None meanwhile."""
        if self.launcher is None:
            return False
        if self.launcher.poll() is not None:
            echo(
                f"bcm serve: warning: the launcher stopped (exit code {self.launcher.returncode}; its output is "
                "above): bcm run, resume and exercise run import Prefect themselves until bcm serve restarts",
                stderr=True,
            )
            self.launcher = None
            _remove(self.launcher_socket)
            return False
        return True if self.launcher_socket.exists() else None

    def close(self) -> None:
        """Stop the launcher (the runs it started are left resumable), the runner (it pauses the schedules on
        the server), then the server; remove serve.json and the launcher's socket."""
        for proc in (self.launcher, self.runner, self.server):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while proc.poll() is None:
                if time.monotonic() > deadline or self.signals.count > 1:
                    proc.kill()
                time.sleep(0.05)
        if self.launcher is not None:
            _remove(self.launcher_socket)
        path = serve_file(self.home)
        record = _read_record(path)
        if record is not None and record.get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def _read_ready(channel: int) -> dict[str, Any] | None:
    """The runner's summary line, once it has written it; None until then (EOF: an empty summary)."""
    import select

    readable, _, _ = select.select([channel], [], [], 0)
    if not readable:
        return None
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(channel, 65536)
        if not chunk:
            break
        data += chunk
    if not data:
        return {"served": [], "skipped": [], "eof": True}
    summary: dict[str, Any] = json.loads(data)
    return summary


def _print_start(
    api_url: str, database: str, summary: dict[str, Any], home: Path, project: Path, supervisor: _Supervisor
) -> None:
    ui = api_url.removesuffix("/api")
    echo(f"bcm serve: Prefect server at {ui} (the UI; API {api_url})")
    echo(f"  database: {database}")
    served = summary.get("served", [])
    by_hand = [s["name"].removeprefix("run-runbook/") for s in served if not s["schedules"]]
    echo(f"  serving {len(served)} deployments of {project}:")
    for item in served:
        if item["schedules"]:
            echo(f"    {item['name']}: {', '.join(item['schedules'])}")
    if by_hand:
        echo(f"    by hand (UI, `prefect deployment run`, Slack's /bcm run): {', '.join(by_hand)}")
    for item in summary.get("skipped", []):
        echo(f"  warning: not serving {item['name']}: {item['entrypoint']} does not load ({item['why']})")
    if supervisor.launcher is not None:
        echo(f"  launcher: bcm run, resume and exercise run start their flows from here ({supervisor.launcher_socket})")
    echo(
        f"  bcm commands with BCM_HOME={home} now use this server instead of an embedded one "
        "(unless PREFECT_API_URL is set); Ctrl-C stops it"
    )


def serve_cmd(
    port: Annotated[int, typer.Option("--port", help="Port of the Prefect server (API and UI).")] = 4200,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every interface.")
    ] = "127.0.0.1",
    prefect_yaml: Annotated[
        Path | None,
        typer.Option("--prefect-yaml", help="The deployments to serve (default: ./prefect.yaml)."),
    ] = None,
) -> None:
    """A local Prefect server with the deployments and schedules of prefect.yaml; every bcm command uses it."""
    settings = load_settings()
    project = _project_file(prefect_yaml)
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        lock = _take_lock(settings.home)
    except OSError as exc:
        fail(f"cannot use BCM_HOME {settings.home}: {exc.strerror or exc}")
    if lock is None:
        record = _read_record(serve_file(settings.home)) or {}
        fail(
            f"bcm serve is already running for BCM_HOME={settings.home} (pid {record.get('pid', '?')}, "
            f"{record.get('url', 'starting')}): other bcm commands use it; stop it first to start another"
        )
    with lock:
        serve_file(settings.home).unlink(missing_ok=True)  # we hold the lock: any file there is stale
        if not _port_free(host, port):
            fail(f"--port {port}: {host}:{port} is in use: choose another port with --port")
        raise typer.Exit(_serve(settings.home, settings.runbooks.absolute(), host, port, project))


def _serve(home: Path, runbooks: Path, host: str, port: int, project: Path) -> int:
    # Imported here: only bcm serve pays for it (flows.server imports Prefect only when it starts an embedded server).
    from flows.server import start_local_server, start_watchdog

    signals = _Signals()
    url_host = _WILDCARDS.get(host, host)
    api_url = f"http://{f'[{url_host}]' if ':' in url_host else url_host}:{port}/api"
    prefect_home = home / "prefect"
    explicit = os.environ.get("PREFECT_API_URL")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        BCM_HOME=str(home),
        BCM_RUNBOOKS=str(runbooks),
    )
    database = _database(env, prefect_home)
    supervisor = _Supervisor(home, signals)
    read_end: int | None = None
    try:
        supervisor.server = start_local_server(host, port, env, prefect_home / "server.log")
        echo(f"bcm serve: starting the Prefect server on {host}:{port} ({database.split(' (')[0]}) ...", stderr=True)
        # The runner imports the flows while the server starts (two cores), then waits for it.
        read_end = channel = _start_runner(supervisor, env, api_url, project)
        _start_launcher(supervisor, env, api_url, project)
        assert supervisor.runner is not None
        launcher = [supervisor.launcher.pid] if supervisor.launcher is not None else []
        start_watchdog(*launcher, supervisor.runner.pid, supervisor.server.pid)
        summary = None
        if supervisor.wait_until("the Prefect server", lambda: True if answers(api_url) else None) is not None:
            summary = supervisor.wait_until("registering the deployments", lambda: _read_ready(channel))
        if summary is not None and not summary.get("eof"):
            # It imports what the runner imports, without waiting for the server: listening by now, as a rule.
            supervisor.wait_until("starting the launcher", supervisor.launcher_ready)
        if summary is None or summary.get("eof") or signals.received is not None or supervisor.problem:
            if summary is not None and summary.get("eof"):  # the runner closed the pipe without a summary: it ends
                with contextlib.suppress(subprocess.TimeoutExpired):
                    supervisor.runner.wait(STOP_TIMEOUT_S)
            return _end(supervisor, signals)
        _write_record(home, api_url, database, summary, supervisor)
        _print_start(api_url, database, summary, home, project, supervisor)
        if explicit:
            echo(f"  note: PREFECT_API_URL is set in this shell ({explicit}): commands run with it use that server")
        while signals.received is None and supervisor.check() is None:
            supervisor.launcher_ready()  # one that stops is said once; serving goes on without it
            time.sleep(_POLL_S)
        return _end(supervisor, signals)
    finally:
        if read_end is not None:
            os.close(read_end)
        supervisor.close()


def _start_runner(supervisor: _Supervisor, env: dict[str, str], api_url: str, project: Path) -> int:
    """Start the runner (``python -m flows.serve``); the pipe it writes its summary to once registered."""
    read_end, write_end = os.pipe()
    pythonpath = os.pathsep.join(p for p in (str(project.parent), env.get("PYTHONPATH", "")) if p)
    runner_env = {**env, "PREFECT_API_URL": api_url, "PYTHONPATH": pythonpath, "PREFECT_LOGGING_LEVEL": "INFO"}
    try:
        supervisor.runner = subprocess.Popen(
            [sys.executable, "-m", "flows.serve", str(project), "--ready-fd", str(write_end)],
            env=runner_env,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_end,),
            start_new_session=True,  # Ctrl-C is for bcm serve, which stops it first
        )
    finally:
        os.close(write_end)
    return read_end


def _start_launcher(supervisor: _Supervisor, env: dict[str, str], api_url: str, project: Path) -> None:
    """Start the launcher (``python -m flows.launcher``) on ``$BCM_HOME/launcher.sock``, unless that path
    is too long for a Unix socket (then said, and the commands call their flows themselves)."""
    path = supervisor.launcher_socket
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        echo(
            f"bcm serve: warning: no launcher: {path} is too long for a Unix socket ({MAX_SOCKET_PATH} bytes); "
            "bcm run imports Prefect itself (a shorter BCM_HOME avoids it)",
            stderr=True,
        )
        return
    pythonpath = os.pathsep.join(p for p in (str(project.parent), env.get("PYTHONPATH", "")) if p)
    supervisor.launcher = subprocess.Popen(
        [sys.executable, "-m", "flows.launcher", str(path)],
        env={**env, "PREFECT_API_URL": api_url, "PYTHONPATH": pythonpath},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C is for bcm serve, which stops it first
    )


def _write_record(home: Path, api_url: str, database: str, summary: dict[str, Any], supervisor: _Supervisor) -> None:
    """serve.json, written whole (a temporary file renamed) so a reader never sees half of it."""
    assert supervisor.server is not None and supervisor.runner is not None
    record = {
        "url": api_url,
        "ui": api_url.removesuffix("/api"),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(),
        "database": database,
        "prefect_home": str(home / "prefect"),
        "server_pid": supervisor.server.pid,
        "runner_pid": supervisor.runner.pid,
        "deployments": [s["name"] for s in summary.get("served", [])],
    }
    if supervisor.launcher is not None:
        record.update(launcher=str(supervisor.launcher_socket), launcher_pid=supervisor.launcher.pid)
    path = serve_file(home)
    partial = path.with_name(f".{SERVE_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)


def _end(supervisor: _Supervisor, signals: _Signals) -> int:
    """Say why serving ends; the exit code (130 Ctrl-C, 0 SIGTERM, 1 a process died or did not start)."""
    if signals.received is not None:
        name = "Ctrl-C" if signals.received == signal.SIGINT else "SIGTERM"
        echo(f"bcm serve: {name}: stopping the launcher and the runner, then the Prefect server", stderr=True)
        return INTERRUPTED if signals.received == signal.SIGINT else OK
    supervisor.check()
    echo(f"bcm serve: {supervisor.problem or 'stopped'}", stderr=True)
    return FAILED
