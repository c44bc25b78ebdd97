"""Prefect's embedded server for one ``bcm`` process, started up front and never left behind.

With no ``PREFECT_API_URL``, Prefect starts a temporary server (uvicorn in a child process) the
first time a client needs one, and stops it at interpreter exit. A ``bcm`` process killed with
``kill -9`` never reaches that exit: the server would go on for ever, holding a port and the
terminal's output. So ``bcm`` starts the server itself, before the run (so it can say what it is
doing while that takes 8–13 s), and starts beside it a small watchdog process that stops the
server within about a second of ``bcm`` dying. Prefect's clients then find the running server
(``SubprocessASGIServer`` is one instance per process) and use it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL

#: How long the embedded server may take to answer (a loaded 2-core machine needs more than Prefect's 20 s).
STARTUP_TIMEOUT_S = 90

# Runs in its own interpreter: waits for the parent to die (it is then re-parented), then stops
# the server: SIGTERM, and SIGKILL when it has not gone within 5 s. Ends with the server too.
_WATCHDOG = """
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while os.getppid() == parent and alive(server):
    time.sleep(0.5)
if alive(server):
    os.kill(server, signal.SIGTERM)
    for _ in range(50):
        time.sleep(0.1)
        if not alive(server):
            break
    else:
        os.kill(server, signal.SIGKILL)
"""


class EmbeddedServerError(RuntimeError):
    """The embedded Prefect server did not start."""


def embedded() -> bool:
    """Whether this process uses Prefect's embedded server (no ``PREFECT_API_URL``)."""
    return not PREFECT_API_URL.value()


def start_embedded_server() -> str | None:
    """Start the embedded server (when one is used) with its watchdog; return its address.

    Returns:
        The server's API URL, or None when ``PREFECT_API_URL`` names a server to use instead.

    Raises:
        EmbeddedServerError: it did not answer within :data:`STARTUP_TIMEOUT_S`.
    """
    if not embedded():
        return None
    server = SubprocessASGIServer()
    if server.running and server.server_process is not None:
        return str(server.api_url)
    try:
        server.start(timeout=STARTUP_TIMEOUT_S)
    except RuntimeError as exc:
        raise EmbeddedServerError(str(exc)) from exc
    assert server.server_process is not None
    subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(server.server_process.pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
    return str(server.api_url)
