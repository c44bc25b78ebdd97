"""What the store hands back: frozen records, every timestamp timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bcm.targets import RunTargets as RunTargets


@dataclass(frozen=True)
class RunRecord:
    """One execution of a runbook, real, exercise or dry run (or a disruption recorded afterwards).

    ``targets`` are the targets that applied when the run was recorded; ``source`` is
    ``engine`` for runs the engine executed, ``record`` or ``import`` for disruptions handled
    outside bcm and recorded afterwards.
    """

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
    targets: RunTargets = field(default_factory=RunTargets)
    source: str = "engine"
    runner: str | None = None
    heartbeat_at: datetime | None = None

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
    process: str | None = None

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
class RunImport:
    """A whole run to write at once (``Store.import_runs``): recorded disruptions, benchmark data.

    Attributes:
        run: the run; its ``source`` says where it came from.
        marks: ``(milestone, at)`` pairs.
        steps: the steps' records, when the run had steps.
        audit: extra facts for the run's audit entry (e.g. the CSV file and line).
    """

    run: RunRecord
    marks: tuple[tuple[str, datetime], ...]
    steps: tuple[StepRecord, ...] = ()
    audit: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class TimelineRun:
    """The fields of a run that its figures need (no parameters: cheaper to read in bulk).

    ``speed`` is the exercise clock's speed (``ExerciseRunRecord.speed``): an exercise played at
    ``--speed 60`` has 60, and the figures count each of its wall-clock durations 60 times. It is
    1.0 for real runs, recorded disruptions and runs without an exercise record.
    """

    id: str
    runbook_id: str
    mode: str
    services: tuple[str, ...]
    status: str
    started_at: datetime
    ended_at: datetime | None
    targets: RunTargets
    source: str
    speed: float = 1.0


@dataclass(frozen=True)
class TimelineRows:
    """Runs with their timelines, read in a few bulk queries (``Store.list_timeline_rows``).

    Attributes:
        runs: the runs, oldest first, each with its exercise clock's speed.
        marks: per run id, ``(milestone, at)`` pairs.
        steps: per run id, ``(step_id, phase, kind, status, started_at, ended_at)``; empty unless
            steps were asked for.
        waits: per run id and step id, the seconds an approval or manual step waited for a person.
        updates: per run id, when stakeholder updates (outbox kinds in ``bcm.vocabulary.UPDATE_KINDS``)
            went out (delivered, else queued).
    """

    runs: list[TimelineRun]
    marks: dict[str, list[tuple[str, datetime]]]
    steps: dict[str, list[tuple[str, str, str, str, datetime | None, datetime | None]]]
    waits: dict[str, dict[str, float]]
    updates: dict[str, list[datetime]]


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


@dataclass(frozen=True)
class ExerciseRunRecord:
    """Which exercise a run (mode ``exercise``) played, on what clock, and when and why it ended.

    ``speed`` compresses the exercise clock: at speed 60 an inject due 15 minutes after STARTEX
    is delivered 15 seconds after it, and the evaluation reads 15 s of play as 15 minutes.
    ``ended_by`` says what ended it: ``played out`` or the person who ran ``bcm exercise end``.
    """

    run_id: str
    exercise_id: str
    exercise_title: str
    exercise_hash: str
    exercise_path: str
    speed: float
    auto_respond: bool
    startex_at: datetime
    endex_at: datetime | None
    ended_by: str | None

    def exercise_time(self, at: datetime) -> timedelta:
        """How long after STARTEX ``at`` is, on the exercise clock (wall time times the speed)."""
        return (at - self.startex_at) * self.speed


@dataclass(frozen=True)
class InjectRecord:
    """One MSEL inject of a run: delivered (or skipped: a contingency whose condition did not hold).

    ``due_at`` is when the exercise clock said to deliver it, ``at`` when it was delivered or
    skipped; ``message`` is the text as rendered for the recipient.
    """

    run_id: str
    number: int
    status: str
    due_at: datetime
    at: datetime
    delivery: str
    recipient: str
    message: str
    reason: str | None = None


@dataclass(frozen=True)
class ObservationRecord:
    """An evaluator's observation: on an objective (with an optional rating) or the hot wash."""

    id: int
    run_id: str
    objective_id: str | None
    kind: str
    rating: str | None
    note: str
    root_cause: str | None
    by: str
    role: str
    at: datetime


@dataclass(frozen=True)
class CorrectiveActionRecord:
    """One row of the improvement plan: a finding, the action that answers it, who and by when."""

    id: int
    finding: str
    action: str
    owner: str
    element: str
    status: str
    start_on: date
    due_on: date
    evidence: str | None
    root_cause: str | None
    run_id: str | None
    objective_id: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def ref(self) -> str:
        """How people name it: ``CA-7``."""
        return f"CA-{self.id}"

    def overdue(self, today: date) -> bool:
        """Still open (open or in progress) after its due date."""
        return self.status in ("open", "in_progress") and today > self.due_on

    def to_json(self, today: date) -> dict[str, object]:
        """The action as JSON, with ``overdue`` as of ``today``."""
        return {
            "id": self.id,
            "ref": self.ref,
            "finding": self.finding,
            "action": self.action,
            "owner": self.owner,
            "element": self.element,
            "status": self.status,
            "start_on": self.start_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "overdue": self.overdue(today),
            "evidence": self.evidence,
            "root_cause": self.root_cause,
            "run_id": self.run_id,
            "objective_id": self.objective_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


@dataclass(frozen=True)
class FulfilmentRecord:
    """A run's fulfilment of an obligation (a deadline clock): when, by whom, with what evidence.

    ``source`` is ``step:<id>`` for a step that fulfils it, ``hand`` for one recorded by hand
    (``bcm obligations fulfil``).
    """

    run_id: str
    obligation_id: str
    at: datetime
    by: str
    evidence: str | None
    source: str
