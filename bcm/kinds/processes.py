"""Tying a step's command to its runner: killed by the kernel when the runner dies (Linux).

Here, below the engine, because the ``run`` kind starts the command; the rest of the process
bookkeeping (who runs a run, stopping what a dead runner left) is :mod:`bcm.engine.processes`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved once, in the parent: the child between fork and exec must not load libraries.
_prctl = _load_prctl()


def die_with_parent() -> None:
    """``preexec_fn`` for a step's command: killed (SIGKILL) when the thread that started it dies.

    The thread that starts a command waits for it, so it only dies before the command when the
    whole runner process does.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
