"""Errors raised by the store. Each builds its own message from the facts it carries.

Hierarchy::

    StoreError                  anything the store refuses or cannot do
    ├── StoreUnavailable        the database cannot be reached or the URL cannot be used
    ├── IncompatibleSchema      the database was migrated by a newer bcm
    ├── RunNotFound             no run has that id or id prefix
    ├── AmbiguousRun            an id prefix matches more than one run
    └── AlreadyDecided          an approval for that step was already recorded
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bcm.spec.problems import BcmError, InputError


class StoreError(BcmError):
    """Base class of every error the store raises."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, or its URL is not one the store can use.

    Attributes:
        url: the database URL with any password replaced by ``***``.
        reason: what went wrong, from the driver where there is one.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        if url.startswith("sqlite"):
            hint = (
                "bcm must be able to create and write the database file and the files beside it: make its "
                "folder writable, or set BCM_HOME (or BCM_DATABASE_URL) to a writable place."
            )
        else:
            hint = (
                "Check BCM_DATABASE_URL (sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB) "
                "and that the database server is running and accepts connections."
            )
        super().__init__(f"cannot use the bcm store at {url}: {reason}. {hint}")


class IncompatibleSchema(StoreError):
    """The database schema is newer than any migration this version of bcm knows."""

    def __init__(self, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"the store's schema is at version {found} but this bcm knows versions up to {known}: "
            "upgrade bcm before using this database"
        )


class RunNotFound(StoreError, InputError):
    """No run has the given id, and no run id starts with it."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(
            f"no run has an id starting with {ref!r}: give the run id, or its first 8 characters "
            "as printed when the run started"
        )


class AmbiguousRun(StoreError, InputError):
    """An id prefix matches more than one run.

    Attributes:
        ref: the prefix as given.
        candidates: ``(short id, runbook id, started at)`` of some of the matching runs.
        more: whether more runs match than ``candidates`` lists.
    """

    def __init__(self, ref: str, candidates: Sequence[tuple[str, str, datetime]], *, more: bool) -> None:
        self.ref = ref
        self.candidates = tuple(candidates)
        self.more = more
        listed = ", ".join(
            f"{short_id} ({runbook_id}, started {started_at.isoformat()})"
            for short_id, runbook_id, started_at in self.candidates
        )
        count = f"more than {len(self.candidates)}" if more else str(len(self.candidates))
        super().__init__(f"{ref!r} matches {count} runs: {listed}; type more characters of the run id")


class AlreadyDecided(StoreError):
    """An approval was already recorded for the step; a decision is never overwritten."""

    def __init__(self, run_id: str, step_id: str, *, by: str, decision: str, at: datetime) -> None:
        self.run_id = run_id
        self.step_id = step_id
        self.by = by
        self.decision = decision
        self.at = at
        super().__init__(
            f"step {step_id!r} of run {run_id[:8]} was already decided ({decision}) by {by} "
            f"at {at.isoformat()}; a recorded decision cannot be changed"
        )
