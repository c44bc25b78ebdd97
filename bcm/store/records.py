"""What the store hands back: frozen records, every timestamp timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """One execution of a runbook, real, exercise or dry run."""

    id: str
    runbook_id: str
    runbook_title: str
    runbook_hash: str
    runbook_path: str
    mode: str
    parameters: dict[str, object]
    triggered_by: str
    services: tuple[str, ...]
    severity: str
    status: str
    flow_run_id: str | None
    error: str | None
    started_at: datetime
    ended_at: datetime | None

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id: what people read in Slack and type at the CLI."""
        return self.id[:8]


@dataclass(frozen=True)
class StepRecord:
    """The state of one step within a run."""

    run_id: str
    step_id: str
    phase: str
    kind: str
    status: str
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    output: object
    error: str | None
    actor: str | None
    reason: str | None

    @property
    def duration(self) -> timedelta | None:
        """How long the step ran; ``None`` until it has both started and ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class MarkRecord:
    """A timeline milestone (``detected``, ``mitigated``, ...) reached by a run."""

    run_id: str
    milestone: str
    at: datetime
    source: str


@dataclass(frozen=True)
class ApprovalRecord:
    """A person's decision on an ``approve`` step."""

    run_id: str
    step_id: str
    by: str
    decision: str
    note: str | None
    waited_s: float
    at: datetime


@dataclass(frozen=True)
class CheckRecord:
    """The result of one readiness (prevention) step."""

    id: int
    runbook_id: str
    step_id: str
    ok: bool
    output: str
    at: datetime
    run_id: str | None


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the hash-chained audit log."""

    seq: int
    at: datetime
    kind: str
    run_id: str | None
    data: dict[str, object]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, object]:
        """This entry as JSON-able data, hashes included, for auditors."""
        return {
            "seq": self.seq,
            "at": self.at.isoformat(timespec="microseconds"),
            "kind": self.kind,
            "run_id": self.run_id,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class AuditVerification:
    """The outcome of recomputing the audit chain.

    Attributes:
        ok: every entry links to the one before and matches its own hash.
        checked: how many entries were read.
        first_broken_seq: the first entry that fails, or ``None``.
        reason: why it fails, or ``None``.
        head_hash: the hash of the last entry. Removing entries from the end of a chain leaves
            a valid shorter chain, so auditors keep this value to detect truncation later.
    """

    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str | None
    head_hash: str | None


@dataclass(frozen=True)
class OutboxRecord:
    """A stakeholder message in the outbox.

    ``status`` is ``pending`` (not yet delivered; ``attempts`` and ``last_error`` say why),
    ``delivered`` (``result`` holds what the service answered, e.g. channel and ts) or ``failed``
    (a permanent error: it will not be retried).
    """

    id: int
    key: str
    run_id: str | None
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    delivered_at: datetime | None
