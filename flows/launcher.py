"""The launcher of ``bcm serve``: runbook and exercise flows started from a process that has Prefect imported.

A ``bcm run`` process that calls its flow itself spends half its start importing Prefect and the
flows. ``bcm serve`` starts this process once (``python -m flows.launcher SOCKET``): it imports
Prefect, :mod:`flows.runbook` and :mod:`flows.exercise`, then listens on a Unix socket in
``BCM_HOME`` (recorded in ``serve.json``). ``bcm run``, ``bcm resume`` and ``bcm exercise run``
check everything as before, then send the flow call instead of making it: one JSON line with the
flow's name, its keyword parameters (the run id among them), the caller's environment and working
directory and the log file. The launcher forks a child that makes the call; the child answers
with its pid, and the caller shows the run's progress from the store, as for a call of its own.

**The child** is the run's runner: a session of its own; the caller's environment (Prefect's
settings stay the launcher's: they were read at import and name ``bcm serve``'s server), working
directory and ``BCM_*``/``SLACK_*`` settings, so ``run:`` steps see what they would see in the
caller; stdin from ``/dev/null``, stdout and stderr to the log file (``$BCM_HOME/logs/<run id>.log``).
It calls the flow with ``return_state=True``, writes one JSON line to the caller (the final state,
the bcm error the flow refused with, or the exception that stopped the call), drains Prefect's log
and event workers and ends with ``os._exit``: 0 when the flow completed, 1 otherwise. Ctrl-C and
SIGTERM reach it from the caller and end it the way they end a runner in a terminal
(``leave_on_signal``: the run is kept, resumable). The caller's connection is its lifeline: when the
caller dies (``kill -9``), the child gets SIGTERM and leaves the same way, as the run would have
died with a caller that ran it itself.

**Fork safety**: the launcher runs no thread and no event loop (importing Prefect starts none); it
checks there is still only its main thread before each fork, and refuses the call otherwise (the
caller then makes it itself). It reaps its children as they end (SIGCHLD), so a dead runner's pid
is gone at once and ``bcm resume`` sees the run interrupted. A call whose environment changes a
setting bcm reads when it is imported (``BCM_HEARTBEAT_S``) is refused the same way. SIGTERM (or
Ctrl-C when run by hand) stops it: no more calls, its children get SIGTERM (their runs are kept,
resumable), the socket is removed.

The caller's side (:func:`launch`) imports nothing of Prefect.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from bcm.errors import BcmError

#: The flows a caller may ask for: name -> (module, function).
FLOWS: dict[str, tuple[str, str]] = {
    "run-runbook": ("flows.runbook", "run_runbook"),
    "run-exercise": ("flows.exercise", "run_exercise"),
}
#: What a flow call imports only once it runs (Prefect's engines, its parameter encoder, the store's
#: SQLite dialect, the Slack transport, ...): imported by the launcher too, so that no child spends
#: its first 0.15 s on them. One that does not import (another Prefect) is left to the child.
WARM_MODULES = (
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "fastapi.encoders",
    "anyio._backends._asyncio",
    "sqlalchemy.dialects.sqlite",
    "sqlite3",
    "encodings.idna",
    "bcm.comms.slack",
)
#: Environment variables bcm reads when its modules are imported: a call that sets them otherwise
#: than the launcher had them cannot be made from its warm imports.
IMPORT_TIME_ENV = ("BCM_HEARTBEAT_S",)
#: How the child's first line in its log starts (what was called): a caller copying the log leaves it out.
HEADER_MARK = b"--- bcm launcher: "
#: The socket's name in BCM_HOME.
SOCKET_NAME = "launcher.sock"
#: A Unix socket's path is at most this long (``sun_path`` holds 108 bytes with the final NUL).
MAX_SOCKET_PATH = 107
#: How long a caller waits for the launcher to take its call (it forks within milliseconds).
REPLY_TIMEOUT_S = 30.0
#: How long the launcher gives a connection to send its call.
REQUEST_TIMEOUT_S = 5.0
#: How long a child that was asked to leave (SIGTERM) has before it is killed.
LEAVE_TIMEOUT_S = 10.0
_MAX_LINE = 4 * 1024 * 1024
_ACCEPT_POLL_S = 0.5


class LauncherUnavailable(Exception):
    """The launcher cannot take the call (not listening, or it refused): the caller makes it itself."""


def flow_named(name: str) -> Any:
    """The Prefect flow called ``name`` (a key of :data:`FLOWS`); imports its module (and Prefect)."""
    module, function = FLOWS[name]
    return getattr(importlib.import_module(module), function)


def refusal_of(state: Any) -> BcmError | None:
    """The bcm error a flow that refused to start failed with (a resume of an ended run, say), or None.

    A run that failed returns a Failed state with a message, not an exception: that is no refusal.
    """
    if state is None or not (state.is_failed() or state.is_crashed()):
        return None
    try:
        found = state.result(raise_on_failure=False)
    except Exception:  # the state holds no exception
        return None
    return found if isinstance(found, BcmError) else None


def socket_path(home: Path) -> Path:
    """Where the launcher of ``home``'s ``bcm serve`` listens."""
    return home / SOCKET_NAME


# -- the caller's side ---------------------------------------------------------------------------


def _peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket (Linux ``SO_PEERCRED``; elsewhere this
    user's: the socket's mode already keeps others out)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return os.getuid()
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, option, size))
    return int(uid)


def _read_line(connection: socket.socket, buffer: bytearray) -> bytes | None:
    """One line from ``connection`` (``buffer`` keeps what follows it); None at end of stream."""
    while b"\n" not in buffer:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        buffer += chunk
        if len(buffer) > _MAX_LINE:
            raise OSError("line too long")
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Launched:
    """A flow call made by a child of the launcher: its pid, its log, and the connection its result comes on."""

    pid: int
    log: Path
    connection: socket.socket
    buffer: bytearray = field(default_factory=bytearray)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the child (Ctrl-C, SIGTERM: it leaves as a runner in a terminal does)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def wait(self, tick: Callable[[], None], poll_s: float = 0.2) -> dict[str, Any] | None:
        """The child's result once it sends it; None when it ended without one (it left on a signal, or died).

        ``tick`` is called every ``poll_s`` seconds meanwhile (to pass signals on). Without a result,
        returns once the child's pid is gone (reaped by the launcher), so the run's runner is seen dead.
        """
        try:
            while True:
                tick()
                readable, _, _ = select.select([self.connection], [], [], poll_s)
                if readable:
                    try:
                        chunk = self.connection.recv(65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    self.buffer += chunk
                    if b"\n" in self.buffer:
                        result: dict[str, Any] = json.loads(bytes(self.buffer).partition(b"\n")[0])
                        return result
                elif not _pid_alive(self.pid):
                    break
        finally:
            self.connection.close()
        deadline = time.monotonic() + 5
        while _pid_alive(self.pid) and time.monotonic() < deadline:
            tick()
            time.sleep(0.02)
        return None


def launch(
    path: Path,
    flow: str,
    parameters: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    cwd: str,
    log: Path,
    timeout: float = REPLY_TIMEOUT_S,
) -> Launched:
    """Ask the launcher at ``path`` to call ``flow(**parameters)`` in a child; the child, once forked.

    Raises:
        LauncherUnavailable: nothing listens there, it is not this user's, or it refused the call.
    """
    request = {"flow": flow, "parameters": dict(parameters), "env": dict(env), "cwd": cwd, "log": str(log)}
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if os.stat(path).st_uid != os.getuid():
            raise LauncherUnavailable(f"bcm serve's launcher socket {path} belongs to another user")
        connection.settimeout(timeout)
        connection.connect(str(path))
        if _peer_uid(connection) != os.getuid():
            raise LauncherUnavailable(f"bcm serve's launcher at {path} runs as another user")
        connection.sendall(json.dumps(request).encode() + b"\n")
        buffer = bytearray()
        line = _read_line(connection, buffer)
        reply = json.loads(line) if line else {"refused": "it closed the connection"}
    except LauncherUnavailable:
        connection.close()
        raise
    except (OSError, ValueError) as exc:
        connection.close()
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise LauncherUnavailable(f"bcm serve's launcher does not answer at {path} ({why})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
        connection.close()
        refused = reply.get("refused") if isinstance(reply, dict) else None
        raise LauncherUnavailable(f"bcm serve's launcher did not take the run ({refused or 'an unexpected answer'})")
    connection.settimeout(None)
    return Launched(reply["pid"], log, connection, buffer)


# -- the launcher --------------------------------------------------------------------------------


def _listen(path: Path) -> socket.socket:
    """A listening socket at ``path``, readable and writable by this user only, put in place once listening."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise SystemExit(f"bcm serve's launcher: {path} is longer than a Unix socket path may be")
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(partial))
    finally:
        os.umask(old_umask)
    listener.listen(64)
    partial.replace(path)
    listener.settimeout(_ACCEPT_POLL_S)
    return listener


class Launcher:
    """The accept loop: one call at a time, each made by a forked child."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.children: set[int] = set()
        self.stopping = False
        self.environ = dict(os.environ)

    def serve(self) -> int:
        """Take calls until SIGTERM or SIGINT; then stop the children and remove the socket."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGCHLD, self._reap)
        listener = _listen(self.path)
        try:
            while not self.stopping:
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    self._take(connection, listener)
        finally:
            if os.getpid() == self.pid:  # a child never returns here (os._exit), but never let it clean up
                listener.close()
                with contextlib.suppress(OSError):
                    self.path.unlink()
                self._stop_children()
        return 0

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _reap(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)

    def _stop_children(self) -> None:
        """SIGTERM each child (its run is kept, resumable); SIGKILL those still there after LEAVE_TIMEOUT_S."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + LEAVE_TIMEOUT_S
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()

    def refusal(self, request: Mapping[str, Any]) -> str | None:
        """Why this launcher cannot make ``request``'s call, or None."""
        if request.get("flow") not in FLOWS:
            return f"no flow {request.get('flow')!r} here"
        shapes = (("parameters", dict), ("env", dict), ("cwd", str), ("log", str))
        if any(not isinstance(request.get(key), kind) for key, kind in shapes):
            return "a malformed call"
        env: dict[str, str] = request["env"]
        for name in IMPORT_TIME_ENV:
            if env.get(name) != self.environ.get(name):
                return f"{name} differs from bcm serve's ({self.environ.get(name)!r})"
        threads = threading.enumerate()
        if threads != [threading.main_thread()]:
            # Forking a process with threads copies their locks, held or not: never.
            return f"the launcher has threads ({', '.join(t.name for t in threads)}); restart bcm serve"
        return None

    def _take(self, connection: socket.socket, listener: socket.socket) -> None:
        connection.settimeout(REQUEST_TIMEOUT_S)
        try:
            if _peer_uid(connection) != os.getuid():
                _reply(connection, {"refused": "not the launcher's user"})
                return
            line = _read_line(connection, bytearray())
            request = json.loads(line) if line else None
        except (OSError, ValueError) as exc:
            _log(f"a call could not be read: {exc}")
            return
        if not isinstance(request, dict):
            return
        why = self.refusal(request)
        if why is not None:
            _log(f"refused a call: {why}")
            _reply(connection, {"refused": why})
            return
        # SIGCHLD held back until the child is counted: one that ends at once is then reaped, not kept.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                _child(connection, listener, request)  # it answers the caller itself: its pid, later its end
            self.children.add(pid)
        except OSError as exc:
            _log(f"cannot fork: {exc}")
            _reply(connection, {"refused": f"cannot fork: {exc.strerror or exc}"})
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _reply(connection: socket.socket, message: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(json.dumps(message).encode() + b"\n")


def _log(text: str) -> None:
    print(f"bcm serve's launcher: {text}", file=sys.stderr, flush=True)


# -- the child -----------------------------------------------------------------------------------


def _child(connection: socket.socket, listener: socket.socket, request: Mapping[str, Any]) -> NoReturn:
    """Make the call in this forked child, tell the caller how it ended, and end: never returns."""
    code = 1
    done = threading.Event()
    try:
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own subprocesses are its to wait for
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        _reply(connection, {"pid": os.getpid()})  # first, so nothing the child says can come before it
        _enter(request)
        connection.settimeout(None)
        threading.Thread(target=_lifeline, args=(connection, done), daemon=True, name="bcm-caller").start()
        result = _call(str(request["flow"]), request["parameters"])
        code = 0 if result.get("state") == "COMPLETED" else 1
        done.set()
        _reply(connection, result)
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:  # before the call (a working directory gone, say): the caller says it
        traceback.print_exc()
        done.set()
        _reply(connection, {"state": None, "error": {"type": type(exc).__name__, "message": str(exc)}})
    finally:
        done.set()
        with contextlib.suppress(BaseException):
            _drain()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _enter(request: Mapping[str, Any]) -> None:
    """The caller's environment (Prefect's settings kept), working directory and log file."""
    log = Path(str(request["log"]))
    log.parent.mkdir(parents=True, exist_ok=True)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(nothing)
    os.close(output)
    prefect = {k: v for k, v in os.environ.items() if k.startswith("PREFECT_")}
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items() if not str(k).startswith("PREFECT_")})
    os.environ.update(prefect)
    os.chdir(str(request["cwd"]))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    called = f"{started} pid {os.getpid()}: {request['flow']} {json.dumps(request['parameters'])}"
    print(HEADER_MARK.decode() + called, flush=True)


def _lifeline(connection: socket.socket, done: threading.Event) -> None:
    """Leave (SIGTERM to this process) when the caller goes away before the call ends."""
    with contextlib.suppress(OSError):
        while connection.recv(1024):
            pass
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGTERM)


def _call(flow: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The flow's call, as the caller would have made it; what to tell the caller of its end."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            state = flow_named(flow)(**parameters, return_state=True)
    except Exception as exc:
        traceback.print_exc()
        return {"state": None, "error": {"type": type(exc).__name__, "message": str(exc)}}
    refusal = refusal_of(state)
    described = None if refusal is None else {"type": type(refusal).__name__, "message": str(refusal)}
    return {"state": state.type.value, "refusal": described}


def _drain() -> None:
    """Send what Prefect's log and event workers still hold (os._exit skips the exit hooks that would)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    EventsWorker.drain_all(timeout=5)
    APILogWorker.drain_all(timeout=5)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m flows.launcher SOCKET``: import the flows, then take calls on SOCKET until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m flows.launcher", description=main.__doc__)
    parser.add_argument("socket", type=Path)
    args = parser.parse_args(argv)
    for name in FLOWS:
        flow_named(name)  # Prefect and the flows, once: the point of this process
    for module in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    sys.exit(Launcher(args.socket.absolute()).serve())


if __name__ == "__main__":
    main()
