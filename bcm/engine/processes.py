"""Which process runs a run or a step, whether it is still alive, and stopping what a dead runner left.

A process is named ``host/pid/start``: ``start`` is its start time in clock ticks since boot (field
22 of ``/proc/PID/stat``), so a pid the kernel has since given to another process is not taken for
it. On hosts without ``/proc`` the start is ``0`` and only the pid is compared.

A ``run:`` step's command runs in a process group of its own, with the kernel told to kill it
when the thread that started it dies (``PR_SET_PDEATHSIG``, Linux): a ``kill -9`` of the runner
takes the command with it (:func:`bcm.kinds.processes.die_with_parent`, below the engine because the
``run`` kind starts the command). Anything the command left running in its group is stopped by
``bcm resume`` before the step runs again (:func:`stop_leftover`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from bcm.kinds.processes import die_with_parent

__all__ = ["ProcessId", "die_with_parent", "process_id", "stop_leftover"]


@dataclass(frozen=True)
class ProcessId:
    """A process on a host, told apart from a later process with the same pid."""

    host: str
    pid: int
    start: int

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, text: str) -> ProcessId | None:
        """Read ``host/pid/start``; None when the text is not one."""
        host, _, rest = text.rpartition("/")
        host, _, pid = host.rpartition("/")
        try:
            return cls(host=host, pid=int(pid), start=int(rest))
        except ValueError:
            return None

    @property
    def local(self) -> bool:
        """Whether the process is on this host (only then can it be checked or stopped)."""
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """True or False for a process on this host; None when it runs elsewhere (unknown)."""
        if not self.local:
            return None
        start = _start_ticks(self.pid)
        if start is None:
            return False
        return self.start == 0 or start == self.start

    def group_alive(self) -> bool:
        """Whether any process is left in the process group this process led (this host only)."""
        if not self.local:
            return False
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def process_id(pid: int | None = None) -> ProcessId:
    """The identity of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return ProcessId(host=socket.gethostname(), pid=pid, start=_start_ticks(pid) or 0)


def _start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot; None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _exists(pid)
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rpartition(")")[2].split()
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else int(start)


def _exists(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


def stop_leftover(process: ProcessId, *, grace_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> str:
    """Stop whatever is left of a step's process group: wait ``grace_s``, then SIGTERM, then SIGKILL.

    Returns:
        What was found and done, for the person resuming the run.
    """
    waited = 0.0
    while process.group_alive() and waited < grace_s:
        sleep(0.2)
        waited += 0.2
    if not process.group_alive():
        return f"process group {process.pid} ended by itself within {waited:.0f}s"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    for _ in range(25):
        if not process.group_alive():
            return f"process group {process.pid} was still running after {grace_s:g}s: stopped it (SIGTERM)"
        sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return f"process group {process.pid} was still running and ignored SIGTERM: killed it (SIGKILL)"
