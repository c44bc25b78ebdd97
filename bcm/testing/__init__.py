"""Fakes shipped with bcm so tests (bcm's and yours) need neither Prefect, Slack nor PostgreSQL set up.

- :mod:`bcm.testing.executor`: run a runbook in this process (:func:`run_in_process`,
  :func:`start_in_process`, :func:`resume_in_process`) on :class:`InProcessExecutor`, with a
  :class:`ManualClock` for exact times.
- :mod:`bcm.testing.slack_standin`: a Slack Web API stand-in over real HTTP.
- :mod:`bcm.testing.db`: throwaway PostgreSQL schemas.

The names below are imported on first use, so ``python -m bcm.testing.slack_standin`` and
``bcm.testing.db`` do not load the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bcm.testing.executor import (
        InProcessExecutor,
        InProcessFuture,
        InProcessRun,
        ManualClock,
        resume_in_process,
        run_in_process,
        start_in_process,
    )

__all__ = [
    "InProcessExecutor",
    "InProcessFuture",
    "InProcessRun",
    "ManualClock",
    "resume_in_process",
    "run_in_process",
    "start_in_process",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("bcm.testing.executor"), name)
    raise AttributeError(f"module 'bcm.testing' has no attribute {name!r}")
