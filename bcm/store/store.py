"""The ``Store`` facade: the one object the rest of bcm holds, over one module per table group.

A public method checks its arguments, opens a read or a serialised write transaction
(``bcm.store.transactions``, which explains why writers queue and why each change is audited in
its own transaction) and hands the connection to the module that owns the tables (the package
docstring lists them). The modules never open, commit or lock a transaction: what one method
writes, across however many tables, commits or rolls back together with its audit entry. They are
handed the store's clock rather than a time and read it for the audit entry inside the
transaction, once the write lock is held, as the store always has.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from bcm.clock import Clock, as_utc, now
from bcm.errors import StoreUnavailable
from bcm.store import (
    approvals,
    audit_log,
    bulk,
    corrective,
    exercises,
    fulfilments,
    milestones,
    outbox,
    readiness,
    runs,
    steps,
    timeline,
    transactions,
)
from bcm.store.engine import create_store_engine, safe_url
from bcm.store.migrations import migrate
from bcm.store.records import (
    ApprovalRecord,
    AuditRecord,
    AuditVerification,
    CheckRecord,
    CorrectiveActionRecord,
    ExerciseRunRecord,
    FulfilmentRecord,
    InjectRecord,
    MarkRecord,
    ObservationRecord,
    OutboxRecord,
    RunImport,
    RunRecord,
    RunTargets,
    StepRecord,
    TimelineRows,
)
from bcm.store.timeline import paused_gc

__all__ = ["Store", "paused_gc"]


class Store:
    """The run history and audit log behind ``bcm``, on SQLite or PostgreSQL.

    Open with ``Store.open(url)``; it migrates the schema before returning. Close it (or use it as a
    context manager) to release the database connections.
    """

    def __init__(self, engine: Engine, *, url: str, clock: Clock = now) -> None:
        """Wrap an engine that ``migrate`` has already brought up to date; prefer ``Store.open``."""
        self._engine = engine
        self._url = url
        self._clock = clock

    @classmethod
    def open(cls, url: str, *, clock: Clock = now) -> Store:
        """Connect to ``url``, apply pending migrations and return the store.

        Args:
            url: ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB``
                (``postgresql://`` is accepted and uses psycopg).
            clock: the time recorded on audit entries and migrations.

        Raises:
            StoreUnavailable: the URL is unusable or the database cannot be reached.
            IncompatibleSchema: the database was migrated by a newer bcm.
        """
        engine = create_store_engine(url)
        try:
            migrate(engine, clock=clock)
        except OperationalError as exc:
            engine.dispose()
            raise StoreUnavailable(safe_url(engine.url), transactions.unavailable_reason(exc, engine)) from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, url=safe_url(engine.url), clock=clock)

    def check_writable(self) -> None:
        """Make sure this store can be written, before a run starts rather than in its first step.

        Raises:
            StoreUnavailable: the database (or, for SQLite, its file or folder) is read-only, or
                the server refuses writes.
        """
        transactions.check_writable(self._engine, self._url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for tests and for later modules that add their own tables."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._url

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self) -> AbstractContextManager[Connection]:
        return transactions.read(self._engine, self._url)

    def _write(self, *, audited: bool = True) -> AbstractContextManager[Connection]:
        return transactions.write(self._engine, self._url, audited=audited)

    # -- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        runbook_id: str,
        runbook_title: str,
        runbook_hash: str,
        runbook_path: str,
        mode: str,
        parameters: dict[str, object],
        triggered_by: str,
        services: list[str],
        severity: str,
        started_at: datetime,
        status: str = "running",
        targets: RunTargets | None = None,
    ) -> RunRecord:
        """Record a new run and audit ``run.created``.

        Args:
            run_id: a uuid4 hex string chosen by the engine.
            runbook_hash: sha256 of the runbook's YAML text, to prove which version ran.
            mode: ``real``, ``exercise`` or ``dry-run``.
            targets: the RTO, RPO, MTPD and update cadence the run is measured against (the
                runbook's effective targets when it starts); stored with the run so later changes
                to the runbook or the BIA do not change how past runs are judged.

        Raises:
            ValueError: an unknown mode, or a naive ``started_at``.
        """
        record = runs.new_record(
            run_id=run_id,
            runbook_id=runbook_id,
            runbook_title=runbook_title,
            runbook_hash=runbook_hash,
            runbook_path=runbook_path,
            mode=mode,
            parameters=parameters,
            triggered_by=triggered_by,
            services=services,
            severity=severity,
            started_at=started_at,
            status=status,
            targets=targets,
        )
        with self._write() as conn:
            runs.create(conn, record, clock=self._clock)
        return record

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        ended_at: datetime | None = None,
        flow_run_id: str | None = None,
        error: str | None = None,
        clear_error: bool = False,
    ) -> None:
        """Change a run's fields; ``None`` leaves a field as it is. A status change is audited.

        Args:
            clear_error: the run goes on again (a resume): forget the error that stopped it and
                its end time (the audit chain keeps both).

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        values = runs.changes(
            status=status, ended_at=ended_at, flow_run_id=flow_run_id, error=error, clear_error=clear_error
        )
        with self._write() as conn:
            runs.update_run(conn, run_id, values, clock=self._clock)

    def get_run(self, ref: str) -> RunRecord:
        """Find a run by its full id or by a prefix that only one run id starts with.

        Raises:
            RunNotFound: no run id starts with ``ref``.
            AmbiguousRun: several do; the error lists some of them.
        """
        prefix = runs.id_prefix(ref)
        with self._read() as conn:
            return runs.find(conn, prefix, ref=ref)

    def list_runs(
        self,
        *,
        runbook_id: str | None = None,
        mode: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, started in ``[since, until)`` when those are given, with one of
        ``statuses`` when given."""
        with self._read() as conn:
            return runs.search(
                conn, runbook_id=runbook_id, mode=mode, since=since, until=until, limit=limit, statuses=statuses
            )

    def claim_runner(self, run_id: str, *, runner: str, at: datetime) -> None:
        """Record that process ``runner`` (``host/pid/start``) now runs the run; audited.

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        at = as_utc(at)
        with self._write() as conn:
            runs.claim_runner(conn, run_id, runner=runner, at=at, clock=self._clock)

    def heartbeat(self, run_id: str, *, at: datetime) -> None:
        """The runner is alive at ``at`` (not audited: a heartbeat is not a change)."""
        with self._write(audited=False) as conn:
            runs.heartbeat(conn, run_id, at=at)

    def import_runs(self, items: Sequence[RunImport], *, audit_kind: str) -> int:
        """Write whole runs (run, marks, steps) in one transaction: all of them or none.

        For disruptions recorded after the fact and for bulk loads. Each run gets one audit entry
        of ``audit_kind`` carrying the run's facts, its targets, its milestones, the sha256 of its
        steps and ``item.audit``; the chain is extended in memory and written in batches.

        Returns:
            How many runs were written.

        Raises:
            ValueError: an unknown mode or source, or a naive time.
        """
        batch = bulk.prepare(items)
        with self._write() as conn:
            bulk.write(conn, batch, audit_kind=audit_kind, clock=self._clock)
        return len(items)

    # -- steps ----------------------------------------------------------------------------------

    def upsert_step(
        self,
        run_id: str,
        step_id: str,
        *,
        phase: str,
        kind: str,
        status: str,
        attempts: int | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
        output: object = None,
        error: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        process: str | None = None,
        fresh: bool = False,
    ) -> None:
        """Insert or update a step's state; ``None`` arguments leave stored values unchanged.

        Reaching a finished status (succeeded, rejected, failed, skipped, timed_out, cancelled) is
        audited once. Long strings in ``output`` are cut to 4000 characters.

        Args:
            process: the process of the current attempt (``host/pid/start``), for ``run`` steps.
            fresh: the step starts again (a resumed run re-runs it): what the last attempt left
                (end time, output, error, actor, reason, process) is cleared first.

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        values = steps.changes(
            phase=phase,
            kind=kind,
            status=status,
            attempts=attempts,
            started_at=started_at,
            ended_at=ended_at,
            output=output,
            error=error,
            actor=actor,
            reason=reason,
            process=process,
            fresh=fresh,
        )
        with self._write() as conn:
            steps.upsert(conn, run_id, step_id, values, clock=self._clock)

    def get_steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in the order they started; steps not started yet come last."""
        with self._read() as conn:
            return steps.for_run(conn, run_id)

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        """One step's state, or ``None`` when it has no record yet."""
        with self._read() as conn:
            return steps.get(conn, run_id, step_id)

    # -- timeline marks -------------------------------------------------------------------------

    def add_mark(self, run_id: str, milestone: str, at: datetime, source: str, *, note: str | None = None) -> bool:
        """Record that a run reached ``milestone`` at ``at``; the first record of it wins.

        ``note`` (why, from whom: ``bcm mark --note``) is kept in the audit entry.

        Returns:
            ``True`` when recorded, ``False`` when the run already had that milestone (a resumed
            run replays its steps' marks, and the original time is the true one).

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        at = as_utc(at)
        with self._write() as conn:
            return milestones.add(conn, run_id, milestone, at, source, note=note, clock=self._clock)

    def get_marks(self, run_id: str) -> list[MarkRecord]:
        """A run's milestones in time order."""
        with self._read() as conn:
            return milestones.for_run(conn, run_id)

    # -- obligation fulfilments -----------------------------------------------------------------

    def record_fulfilment(
        self,
        run_id: str,
        obligation_id: str,
        *,
        at: datetime,
        by: str,
        source: str,
        evidence: str | None = None,
    ) -> bool:
        """Record that a run fulfilled an obligation at ``at``; the first record of it wins; audited.

        Args:
            source: ``step:<id>`` for a step that fulfils it, ``hand`` for one recorded by hand.
            evidence: the step's output or a note.

        Returns:
            ``True`` when recorded, ``False`` when the run had that obligation fulfilled already.

        Raises:
            RunNotFound: no run has exactly ``run_id``.
            ValueError: a naive ``at``.
        """
        record = FulfilmentRecord(
            run_id=run_id, obligation_id=obligation_id, at=as_utc(at), by=by, evidence=evidence, source=source
        )
        with self._write() as conn:
            return fulfilments.add(conn, record, clock=self._clock)

    def get_fulfilments(self, run_id: str) -> list[FulfilmentRecord]:
        """A run's obligation fulfilments, earliest first."""
        with self._read() as conn:
            return fulfilments.for_run(conn, run_id)

    # -- approvals ------------------------------------------------------------------------------

    def record_approval(
        self,
        run_id: str,
        step_id: str,
        *,
        by: str,
        decision: str,
        note: str | None,
        waited_s: float,
        at: datetime,
    ) -> ApprovalRecord:
        """Record the decision on an ``approve`` step; the first decision is final.

        Raises:
            RunNotFound: no run has exactly ``run_id``.
            AlreadyDecided: a decision was already recorded for the step (e.g. two people clicked
                in Slack at once); it names who decided what.
        """
        record = ApprovalRecord(
            run_id=run_id, step_id=step_id, by=by, decision=decision, note=note, waited_s=waited_s, at=as_utc(at)
        )
        with self._write() as conn:
            approvals.record(conn, record, clock=self._clock)
        return record

    def reopen_approval(self, run_id: str, step_id: str) -> bool:
        """Forget a timed-out approval so a resumed run can ask again (audited as approval.reopened).

        Returns:
            True when a timed-out approval was reopened; decisions by people are never removed.
        """
        with self._write() as conn:
            return approvals.reopen(conn, run_id, step_id, clock=self._clock)

    def get_approvals(self, run_id: str) -> dict[str, ApprovalRecord]:
        """Every decision recorded for a run, by step id (one query, however many steps wait)."""
        with self._read() as conn:
            return approvals.for_run(conn, run_id)

    def get_approval(self, run_id: str, step_id: str) -> ApprovalRecord | None:
        """The decision recorded for a step, or ``None``."""
        with self._read() as conn:
            return approvals.get(conn, run_id, step_id)

    # -- readiness checks -----------------------------------------------------------------------

    def record_check(
        self, *, runbook_id: str, step_id: str, ok: bool, output: str, at: datetime, run_id: str | None = None
    ) -> None:
        """Record one readiness step's result; output is cut to 4000 characters.

        Raises:
            RunNotFound: ``run_id`` is given and no run has exactly that id.
        """
        at = as_utc(at)
        with self._write() as conn:
            readiness.record(
                conn,
                runbook_id=runbook_id,
                step_id=step_id,
                ok=ok,
                output=output,
                at=at,
                run_id=run_id,
                clock=self._clock,
            )

    def list_checks(self, *, runbook_id: str | None = None) -> list[CheckRecord]:
        """Readiness results, newest first."""
        with self._read() as conn:
            return readiness.search(conn, runbook_id=runbook_id)

    # -- outbox ---------------------------------------------------------------------------------

    def enqueue_message(
        self, key: str, *, kind: str, payload: dict[str, Any], run_id: str | None = None, at: datetime | None = None
    ) -> tuple[OutboxRecord, bool]:
        """Store a message to send, once per ``key``.

        Returns:
            The outbox row and True when it was new (False: the key was there, nothing changed).
        """
        created = as_utc(at) if at is not None else self._clock()
        try:
            with self._write() as conn:
                outbox.insert_message(conn, key, kind=kind, payload=payload, run_id=run_id, created_at=created)
            new = True
        except IntegrityError:
            new = False
        found = self.get_message(key)
        assert found is not None
        return found, new

    def get_message(self, key: str) -> OutboxRecord | None:
        """The outbox row with ``key``, if any."""
        with self._read() as conn:
            return outbox.get(conn, key)

    def list_messages(
        self, *, status: str | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[OutboxRecord]:
        """Outbox rows in the order they were queued (the order they must be delivered in).

        ``status="undelivered"`` selects pending and claimed (being sent) rows together.
        """
        with self._read() as conn:
            return outbox.search(conn, status=status, run_id=run_id, limit=limit)

    def claim_message(self, key: str, *, stale_after_s: float = 300.0) -> bool:
        """Take the message ``key`` for delivery; False when it is delivered, failed or another
        process holds it (a claim older than ``stale_after_s`` is taken over: that process died)."""
        claimed_at = self._clock()
        with self._write() as conn:
            return outbox.claim(conn, key, at=claimed_at, stale_after_s=stale_after_s)

    def mark_message_delivered(self, key: str, *, result: dict[str, Any], at: datetime | None = None) -> None:
        """Record that the message ``key`` was delivered (audited as message.sent)."""
        when = as_utc(at) if at is not None else self._clock()
        with self._write() as conn:
            outbox.mark_delivered(conn, key, result=result, at=when, clock=self._clock)

    def mark_message_attempt(self, key: str, *, error: str, permanent: bool) -> None:
        """Record a failed delivery attempt; a permanent one is not retried (audited as message.failed)."""
        with self._write() as conn:
            outbox.mark_attempt(conn, key, error=error, permanent=permanent, clock=self._clock)

    # -- exercises ------------------------------------------------------------------------------

    def start_exercise(self, record: ExerciseRunRecord) -> bool:
        """Record which exercise a run plays and mark STARTEX at ``record.startex_at``, together.

        Returns:
            ``False`` when the run was recorded as an exercise run already (a resumed exercise).
        """
        with self._write() as conn:
            return exercises.start(conn, record, clock=self._clock)

    def end_exercise(self, run_id: str, at: datetime, ended_by: str) -> bool:
        """Mark ENDEX at ``at`` and record what ended the exercise; ``False`` when it had ended."""
        with self._write() as conn:
            return exercises.end(conn, run_id, as_utc(at), ended_by, clock=self._clock)

    def get_exercise_run(self, run_id: str) -> ExerciseRunRecord | None:
        """The exercise a run played, or ``None`` when it is not an exercise run."""
        with self._read() as conn:
            return exercises.get(conn, run_id)

    def list_exercise_runs(self, exercise_id: str | None = None) -> list[ExerciseRunRecord]:
        """Every exercise run (of one exercise when given), oldest STARTEX first."""
        with self._read() as conn:
            return exercises.listed(conn, exercise_id)

    def record_inject(self, inject: InjectRecord) -> bool:
        """Record an inject delivered or skipped; ``False`` when the run had it already."""
        with self._write() as conn:
            return exercises.record_inject(conn, inject, clock=self._clock)

    def get_injects(self, run_id: str) -> list[InjectRecord]:
        """A run's injects, in the order they were delivered or skipped."""
        with self._read() as conn:
            return exercises.injects_for(conn, run_id)

    def add_observation(
        self,
        run_id: str,
        *,
        objective_id: str | None,
        kind: str,
        note: str,
        by: str,
        role: str,
        at: datetime,
        rating: str | None = None,
        root_cause: str | None = None,
    ) -> ObservationRecord:
        """Record an evaluator's observation (checked by ``bcm.exercises``); audited."""
        with self._write() as conn:
            return exercises.observe(
                conn,
                run_id,
                objective_id=objective_id,
                kind=kind,
                rating=rating,
                note=note,
                root_cause=root_cause,
                by=by,
                role=role,
                at=as_utc(at),
                clock=self._clock,
            )

    def get_observations(self, run_id: str) -> list[ObservationRecord]:
        """A run's observations, in the order they were recorded."""
        with self._read() as conn:
            return exercises.observations_for(conn, run_id)

    # -- corrective actions ---------------------------------------------------------------------

    def add_action(
        self,
        *,
        finding: str,
        action: str,
        owner: str,
        element: str,
        start_on: date,
        due_on: date,
        status: str = "open",
        evidence: str | None = None,
        root_cause: str | None = None,
        run_id: str | None = None,
        objective_id: str | None = None,
        by: str,
    ) -> CorrectiveActionRecord:
        """Add a corrective action to the improvement plan (audited ``action.created``, with ``by``).

        Raises:
            RunNotFound: ``run_id`` is given and no run has exactly that id.
        """
        values = {
            "finding": finding,
            "action": action,
            "owner": owner,
            "element": element,
            "status": status,
            "start_on": start_on,
            "due_on": due_on,
            "evidence": evidence,
            "root_cause": root_cause,
            "run_id": run_id,
            "objective_id": objective_id,
        }
        with self._write() as conn:
            return corrective.add(conn, values, by=by, clock=self._clock)

    def update_action(
        self, action_id: int, *, by: str, note: str | None = None, **changes: Any
    ) -> CorrectiveActionRecord:
        """Change a corrective action's fields (see ``corrective.CHANGEABLE``); audited with who, what and why.

        Raises:
            ActionNotFound: no action has ``action_id``.
        """
        with self._write() as conn:
            return corrective.change(conn, action_id, changes, by=by, note=note, clock=self._clock)

    def get_action(self, action_id: int) -> CorrectiveActionRecord:
        """The corrective action numbered ``action_id`` (``ActionNotFound`` when none)."""
        with self._read() as conn:
            return corrective.get(conn, action_id)

    def list_actions(
        self, *, statuses: Collection[str] | None = None, owner: str | None = None, run_id: str | None = None
    ) -> list[CorrectiveActionRecord]:
        """Corrective actions by due date, filtered by status, owner role and run."""
        with self._read() as conn:
            return corrective.listed(
                conn, statuses=tuple(statuses) if statuses is not None else None, owner=owner, run_id=run_id
            )

    # -- audit ----------------------------------------------------------------------------------

    def append_audit(
        self, kind: str, data: dict[str, object], *, run_id: str | None = None, at: datetime | None = None
    ) -> AuditRecord:
        """Append an entry to the audit chain on its own (state changes made here append their own).

        Args:
            kind: what happened, dotted like ``run.created``.
            data: JSON-able facts; datetimes are written as ISO 8601 text.
            run_id: the run it concerns, if any.
            at: when; defaults to the store's clock.
        """
        when = self._clock() if at is None else as_utc(at)
        with self._write() as conn:
            return audit_log.append(conn, kind, data, run_id=run_id, at=when)

    def verify_audit(self) -> AuditVerification:
        """Recompute the whole chain and name the first entry that was changed or removed."""
        with self._read() as conn:
            return audit_log.verify(conn)

    def export_audit(self, *, run_id: str | None = None) -> list[dict[str, object]]:
        """Audit entries as JSON-able dicts with their hashes, in chain order.

        With ``run_id``, only that run's entries: each still carries ``prev_hash``, so its own hash
        can be checked, but the chain as a whole is only checkable from a full export.
        """
        with self._read() as conn:
            return audit_log.export(conn, run_id=run_id)

    # -- timeline read model --------------------------------------------------------------------

    def list_timeline_rows(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        mode: str | None = None,
        runbook_id: str | None = None,
        service: str | None = None,
        run_ids: Sequence[str] | None = None,
        steps: bool = False,
    ) -> TimelineRows:
        """Runs (real and exercise; never dry runs) with their timelines, in a few queries.

        The window keeps every run that may have started (impact, else declared, else run start)
        in ``[since, until)``: runs that started before ``until`` and had not ended before
        ``since``. ``bcm.metrics.summarise`` then applies the exact window to the milestones.

        Runs and their milestones come from one scan of ``runs``: each run row carries a copy of
        its marks (``runs.milestones``, JSON text written in the same transaction as each mark; see
        migration 4), so a year of runs needs no GROUP BY over every mark. A run's milestones are
        listed known ones first, in ``bcm.vocabulary.MILESTONES`` order, then any others (a typo
        in an old record, which the figures report as a problem) in time order.

        Args:
            since: see above.
            until: see above.
            mode: ``real`` or ``exercise``; both when ``None``.
            runbook_id: only runs of this runbook (``external`` for disruptions recorded without one).
            service: only runs concerning this service.
            run_ids: only these runs.
            steps: also read step timings and approval waits (not needed for per-service figures).
        """
        where = timeline.conditions(since=since, until=until, mode=mode, runbook_id=runbook_id, run_ids=run_ids)
        with self._read() as conn:
            return timeline.read(conn, where, service=service, steps=steps)
