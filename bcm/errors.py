"""Every error bcm raises on purpose, in one tree. Each builds its own message, meant for people.

The command line turns ``InputError`` (and ``SpecError``) into exit 2 with the message, any other
``BcmError`` into exit 1, and never shows a traceback for either::

    BcmError                    base: the message is complete and says what to do
    ├── SpecError               runbook, exercise or catalog files have problems (all of them, located)
    ├── InputError              bad input: a path, a parameter, a run id, an option value
    │   ├── ApprovalRefused     a decision that cannot be taken: wrong person, not waiting, decided
    │   ├── MarkRefused         a milestone that cannot be recorded by hand
    │   ├── ObservationRefused  an observation by someone who is not an evaluator, or on no objective
    │   ├── ActionNotFound      no corrective action has that number
    │   ├── DisruptionError     disruptions that cannot be recorded or imported (every row named)
    │   ├── RunNotFound         no run has that id or id prefix            (also a StoreError)
    │   └── AmbiguousRun        an id prefix matches more than one run     (also a StoreError)
    ├── StoreError              anything the store refuses or cannot do
    │   ├── StoreUnavailable    the database cannot be reached, written, or its URL used
    │   ├── IncompatibleSchema  the database was migrated by a newer bcm
    │   ├── RunNotFound
    │   ├── AmbiguousRun
    │   └── AlreadyDecided      a decision for that step is already recorded
    ├── InvalidTransition       a status change the transition tables do not allow (a bug)
    ├── TemplateRenderError     a template failed while rendering (a value missing at run time)
    ├── DeliveryError           a call the chat service did not take (``permanent`` or not)
    └── ActionFailed            a ``call:`` action ran and its check failed
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bcm.spec.problems import Problem

__all__ = [
    "ActionFailed",
    "ActionNotFound",
    "AlreadyDecided",
    "AmbiguousRun",
    "ApprovalRefused",
    "BcmError",
    "DeliveryError",
    "DisruptionError",
    "IncompatibleSchema",
    "InputError",
    "InvalidTransition",
    "MarkRefused",
    "ObservationRefused",
    "RunNotFound",
    "SpecError",
    "StoreError",
    "StoreUnavailable",
    "TemplateRenderError",
]


class BcmError(Exception):
    """Base class of bcm's own errors; the message is complete and meant for people."""


class SpecError(BcmError):
    """Runbook or catalog files have problems; holds every problem found, sorted."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found:\n{lines}")


class InputError(BcmError):
    """A bad input given on the command line (a path, a parameter, a run id)."""


class ApprovalRefused(InputError):
    """The decision cannot be taken: wrong person, not waiting, already decided."""


class MarkRefused(InputError):
    """A milestone cannot be recorded: wrong person, unknown milestone, a time in the future, or
    the milestone is already on the timeline."""


class ObservationRefused(InputError):
    """An observation that cannot be recorded: not an evaluator, an unknown objective, not an exercise run."""


class ActionNotFound(InputError):
    """No corrective action has that number."""

    def __init__(self, action_id: int) -> None:
        self.action_id = action_id
        super().__init__(f"no corrective action CA-{action_id}: `bcm actions list` shows them")


class DisruptionError(InputError):
    """Disruptions that cannot be recorded; holds every problem found (nothing was written).

    Attributes:
        problems: one line each, ``FILE:LINE: column: message`` for an import,
            ``--option: message`` for ``bcm incident record``.
    """

    def __init__(self, problems: Iterable[str], *, summary: str | None = None) -> None:
        self.problems = tuple(problems)
        lines = list(self.problems)
        if summary:
            lines.append(summary)
        super().__init__("\n".join(lines))


class StoreError(BcmError):
    """Base class of every error the store raises."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written, or its URL is not one the store can use.

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


class InvalidTransition(BcmError):
    """A status change the tables do not allow (a bug, or a run changed by two processes)."""

    def __init__(self, what: str, name: str, old: str, new: str) -> None:
        super().__init__(f"{what} {name}: cannot go from {old} to {new}")


class TemplateRenderError(BcmError):
    """A template failed while rendering (a value missing at run time, a sandbox violation)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"template {source!r} failed: {reason}")


class DeliveryError(BcmError):
    """A call the chat service did not take; ``permanent`` when retrying cannot help.

    ``retry_after_s`` is how long the service asked to be left alone (a rate limit's Retry-After).
    """

    def __init__(self, method: str, error: str, *, permanent: bool, retry_after_s: float | None = None) -> None:
        self.method = method
        self.error = error
        self.permanent = permanent
        self.retry_after_s = retry_after_s
        super().__init__(f"{method}: {error}")


class ActionFailed(BcmError):
    """A ``call:`` action ran and its check failed; the message says what was found."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)
