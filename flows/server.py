"""Prefect servers for bcm, started up front and never left behind.

Two kinds:

- **The embedded server of one ``bcm`` process.** With no ``PREFECT_API_URL`` (and no ``bcm serve``
  running), Prefect starts a temporary server (uvicorn in a child process) the first time a client
  needs one, and stops it at interpreter exit. A ``bcm`` process killed with ``kill -9`` never
  reaches that exit: the server would go on for ever, holding a port and the terminal's output. So
  ``bcm`` starts the server itself, before the run (so it can say what it is doing while that
  takes 8–13 s), and starts beside it a small watchdog process that stops the server within about
  a second of ``bcm`` dying. Prefect's clients then find the running server
  (``SubprocessASGIServer`` is one instance per process) and use it.
- **The local server of ``bcm serve``**: ``prefect server start`` (API, UI and the scheduler) in a
  process of its own, with the same watchdog, so a ``bcm serve`` killed with ``kill -9`` does not
  leave it behind either; the watchdog stops ``bcm serve``'s launcher (``flows/launcher.py``,
  whose children it stops in turn) and its runner first.

Prefect is imported inside the functions that need it: ``bcm serve`` supervises its processes
without paying for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: How long the embedded server may take to answer (a loaded 2-core machine needs more than Prefect's 20 s).
STARTUP_TIMEOUT_S = 90

# Runs in its own interpreter: waits for the parent to die (it is then re-parented) or for every
# process it watches to end; then stops those still running, in the order given: SIGTERM, and
# SIGKILL when one has not gone within 5 s. Ctrl-C in the terminal reaches it too: it ignores it
# (its parent decides what Ctrl-C means).
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
parent, watched = int(sys.argv[1]), [int(pid) for pid in sys.argv[2:]]
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while os.getppid() == parent and any(alive(pid) for pid in watched):
    time.sleep(0.5)
for pid in watched:
    if not alive(pid):
        continue
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        time.sleep(0.1)
        if not alive(pid):
            break
    else:
        os.kill(pid, signal.SIGKILL)
"""


class EmbeddedServerError(RuntimeError):
    """The embedded Prefect server did not start."""


def embedded() -> bool:
    """Whether this process uses Prefect's embedded server (no ``PREFECT_API_URL``)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def start_watchdog(*pids: int) -> subprocess.Popen[bytes]:
    """Stop ``pids`` (in that order) within about a second of this process dying, however it dies."""
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), *(str(pid) for pid in pids)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def start_embedded_server() -> str | None:
    """Start the embedded server (when one is used) with its watchdog; return its address.

    Returns:
        The server's API URL, or None when ``PREFECT_API_URL`` names a server to use instead.

    Raises:
        EmbeddedServerError: it did not answer within :data:`STARTUP_TIMEOUT_S`.
    """
    if not embedded():
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running and server.server_process is not None:
        return str(server.api_url)
    try:
        server.start(timeout=STARTUP_TIMEOUT_S)
    except RuntimeError as exc:
        raise EmbeddedServerError(str(exc)) from exc
    assert server.server_process is not None
    start_watchdog(server.server_process.pid)
    return str(server.api_url)


def start_local_server(host: str, port: int, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``prefect server start`` on ``host:port`` (API, UI, scheduler) in a session of its own; output to ``log``.

    Its database is Prefect's setting in ``env``: ``PREFECT_API_DATABASE_CONNECTION_URL`` when set,
    else SQLite at ``$PREFECT_HOME/prefect.db``. The caller waits for ``/api/health`` and stops it
    (SIGTERM) when done; :func:`start_watchdog` covers a caller that dies first.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C is for `bcm serve`, which stops it in order
        )
