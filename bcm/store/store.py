"""The durable store: runs, steps, timeline marks, approvals, readiness checks and the audit chain.

Every state change appends its audit entry in the same transaction, so the chain can never say
something happened that the tables do not show, nor miss something they do. Write transactions
are serialised (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an exclusive lock on ``audit`` taken
first thing), so two writers never read the same chain head, and always lock in the same order,
so they never deadlock. A runbook engine writes a few rows a second at most; serialising costs
nothing it would notice.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from bcm.clock import Clock, as_utc, now
from bcm.errors import AlreadyDecided, AmbiguousRun, RunNotFound, StoreUnavailable
from bcm.store import audit as audit_chain
from bcm.store.engine import WRITE_OPTION, create_store_engine, safe_url
from bcm.store.migrations import migrate
from bcm.store.records import (
    ApprovalRecord,
    AuditRecord,
    AuditVerification,
    CheckRecord,
    MarkRecord,
    OutboxRecord,
    RunImport,
    RunRecord,
    RunTargets,
    StepRecord,
    TimelineRows,
    TimelineRun,
)
from bcm.store.schema import approvals, audit, checks, marks, outbox, runs, step_runs
from bcm.store.types import canonical_json, to_stored_json, truncate_text
from bcm.vocabulary import (
    FINISHED_STEP_STATUSES,
    RUN_MODES,
    RUN_SOURCES,
    UPDATE_KINDS,
)
from bcm.vocabulary import MILESTONES as KNOWN_MILESTONES

_BULK_CHUNK = 5_000
#: Step fields a new attempt starts without (``upsert_step(..., fresh=True)``).
_ATTEMPT_FIELDS = ("ended_at", "output", "error", "actor", "reason", "process")

_AMBIGUOUS_SHOWN = 5


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _sha256(value: object) -> str | None:
    return None if value is None else hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        runbook_id=row.runbook_id,
        runbook_title=row.runbook_title,
        runbook_hash=row.runbook_hash,
        runbook_path=row.runbook_path,
        mode=row.mode,
        parameters=dict(row.parameters),
        triggered_by=row.triggered_by,
        services=tuple(row.services),
        severity=row.severity,
        status=row.status,
        flow_run_id=row.flow_run_id,
        error=row.error,
        started_at=row.started_at,
        ended_at=row.ended_at,
        targets=_targets(row),
        source=row.source,
        runner=row.runner,
        heartbeat_at=row.heartbeat_at,
    )


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many objects that form no cycles.

    Reading a year of runs makes about a million tuples, datetimes and records. Each allocation
    counts towards the collector's thresholds, so it runs full collections over the growing heap
    again and again, and finds nothing: none of these objects refer back to each other. That cost
    more than reading the rows themselves. Reference counting still frees everything as usual;
    the collector is re-enabled on exit (only if it was enabled on entry, so nesting is harmless)
    and catches up on its next run.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _milestones_text(milestones: dict[str, str]) -> str:
    """``runs.milestones``: milestone to ``audit.format_at`` time, as canonical JSON (see migration 4)."""
    return canonical_json(milestones)


def _raw_utc(value: object) -> datetime:
    """A timestamp read without SQLAlchemy's processing: SQLite text (naive UTC) or a driver datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    assert isinstance(value, datetime)
    return as_utc(value)


def _targets(row: Row[Any]) -> RunTargets:
    return RunTargets.from_seconds(row.rto_s, row.rpo_s, row.mtpd_s, row.data_loss_s, row.cadence_s)


def _step_record(row: Row[Any]) -> StepRecord:
    return StepRecord(
        run_id=row.run_id,
        step_id=row.step_id,
        phase=row.phase,
        kind=row.kind,
        status=row.status,
        attempts=row.attempts,
        started_at=row.started_at,
        ended_at=row.ended_at,
        output=row.output,
        error=row.error,
        actor=row.actor,
        reason=row.reason,
        process=row.process,
    )


def _outbox_record(row: Row[Any]) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        key=row.key,
        run_id=row.run_id,
        kind=row.kind,
        payload=row.payload if isinstance(row.payload, dict) else json.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        result=(row.result if isinstance(row.result, dict) or row.result is None else json.loads(row.result)),
        created_at=row.created_at,
        delivered_at=_optional_utc(row.delivered_at),
    )


def _approval_record(row: Row[Any]) -> ApprovalRecord:
    return ApprovalRecord(
        run_id=row.run_id,
        step_id=row.step_id,
        by=row.by,
        decision=row.decision,
        note=row.note,
        waited_s=row.waited_s,
        at=row.at,
    )


_AUDIT_COLUMNS = (
    audit.c.seq,
    audit.c.at,
    audit.c.kind,
    audit.c.run_id,
    audit.c.data,
    audit.c.prev_hash,
    audit.c.hash,
)


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
            raise StoreUnavailable(safe_url(engine.url), _reason(exc, engine)) from exc
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
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    # Touches no row, but takes the write lock, which a read-only database refuses.
                    conn.execute(update(runs).where(runs.c.id == "").values(status=runs.c.status))
        except OperationalError as exc:
            raise StoreUnavailable(self._url, _reason(exc, self._engine)) from exc

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

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _unavailable_as_store_error(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreUnavailable(self._url, _reason(exc, self._engine)) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._unavailable_as_store_error(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, *, audited: bool = True) -> Iterator[Connection]:
        """A write transaction; ``audited=False`` for writes that append no audit entry (heartbeats),
        which then need not queue behind the audit chain's lock."""
        with self._unavailable_as_store_error(), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if audited and conn.dialect.name == "postgresql":
                    # EXCLUSIVE still lets readers (and verify_audit) through; only writers queue.
                    conn.exec_driver_sql("LOCK TABLE audit IN EXCLUSIVE MODE")
                yield conn

    def _append(
        self, conn: Connection, kind: str, data: dict[str, object], *, run_id: str | None, at: datetime
    ) -> AuditRecord:
        head = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).first()
        seq = 1 if head is None else head.seq + 1
        prev_hash = audit_chain.GENESIS_HASH if head is None else head.hash
        data_text = canonical_json(data)
        # Hash what verify will read back: the data as parsed from its stored text.
        stored_data = json.loads(data_text)
        hash_ = audit_chain.entry_hash(prev_hash, seq=seq, at=at, kind=kind, run_id=run_id, data=stored_data)
        conn.execute(
            insert(audit).values(
                seq=seq, at=at, kind=kind, run_id=run_id, data=data_text, prev_hash=prev_hash, hash=hash_
            )
        )
        return AuditRecord(seq=seq, at=at, kind=kind, run_id=run_id, data=stored_data, prev_hash=prev_hash, hash=hash_)

    @staticmethod
    def _require_run(conn: Connection, run_id: str) -> Row[Any]:
        row = conn.execute(select(runs.c.id, runs.c.status).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(run_id)
        return row

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
        if mode not in RUN_MODES:
            raise ValueError(f"run mode {mode!r} is not one of {', '.join(sorted(RUN_MODES))}")
        targets = targets or RunTargets()
        record = RunRecord(
            id=run_id,
            runbook_id=runbook_id,
            runbook_title=runbook_title,
            runbook_hash=runbook_hash,
            runbook_path=runbook_path,
            mode=mode,
            parameters=dict(parameters),
            triggered_by=triggered_by,
            services=tuple(services),
            severity=severity,
            status=status,
            flow_run_id=None,
            error=None,
            started_at=as_utc(started_at),
            ended_at=None,
            targets=targets,
        )
        with self._write() as conn:
            conn.execute(
                insert(runs).values(
                    **targets.to_json(),
                    id=record.id,
                    runbook_id=record.runbook_id,
                    runbook_title=record.runbook_title,
                    runbook_hash=record.runbook_hash,
                    runbook_path=record.runbook_path,
                    mode=record.mode,
                    parameters=record.parameters,
                    triggered_by=record.triggered_by,
                    services=list(record.services),
                    severity=record.severity,
                    status=record.status,
                    started_at=record.started_at,
                )
            )
            self._append(
                conn,
                audit_chain.RUN_CREATED,
                {
                    "runbook_id": runbook_id,
                    "runbook_title": runbook_title,
                    "runbook_hash": runbook_hash,
                    "runbook_path": runbook_path,
                    "mode": mode,
                    "parameters": record.parameters,
                    "triggered_by": triggered_by,
                    "services": list(record.services),
                    "severity": severity,
                    "status": status,
                    "started_at": audit_chain.format_at(record.started_at),
                    # Only when set, so entries written before targets were stored hash the same.
                    **({} if targets.empty else {"targets": targets.to_json()}),
                },
                run_id=run_id,
                at=self._clock(),
            )
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
            clear_error: forget the run's error (a resumed run starts again without the error that
                stopped it; the audit chain keeps it).

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        values: dict[str, object] = {"error": None} if clear_error else {}
        if status is not None:
            values["status"] = status
        if ended_at is not None:
            values["ended_at"] = as_utc(ended_at)
        if flow_run_id is not None:
            values["flow_run_id"] = flow_run_id
        if error is not None:
            values["error"] = error
        with self._write() as conn:
            current = self._require_run(conn, run_id)
            if not values:
                return
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            if status is not None and status != current.status:
                self._append(
                    conn,
                    audit_chain.RUN_STATUS_CHANGED,
                    {
                        "from": current.status,
                        "to": status,
                        "ended_at": None if ended_at is None else audit_chain.format_at(ended_at),
                        "error": error,
                    },
                    run_id=run_id,
                    at=self._clock(),
                )

    def get_run(self, ref: str) -> RunRecord:
        """Find a run by its full id or by a prefix that only one run id starts with.

        Raises:
            RunNotFound: no run id starts with ``ref``.
            AmbiguousRun: several do; the error lists some of them.
        """
        prefix = ref.strip().lower()
        if not prefix:
            raise RunNotFound(ref)
        with self._read() as conn:
            exact = conn.execute(select(runs).where(runs.c.id == prefix)).first()
            if exact is not None:
                return _run_record(exact)
            rows = conn.execute(
                select(runs)
                .where(runs.c.id.startswith(prefix, autoescape=True))
                .order_by(runs.c.started_at.desc(), runs.c.id)
                .limit(_AMBIGUOUS_SHOWN + 1)
            ).all()
        if not rows:
            raise RunNotFound(ref)
        if len(rows) > 1:
            raise AmbiguousRun(
                ref,
                [(row.id[:8], row.runbook_id, row.started_at) for row in rows[:_AMBIGUOUS_SHOWN]],
                more=len(rows) > _AMBIGUOUS_SHOWN,
            )
        return _run_record(rows[0])

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
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc())
        if statuses is not None:
            query = query.where(runs.c.status.in_(sorted(statuses)))
        if runbook_id is not None:
            query = query.where(runs.c.runbook_id == runbook_id)
        if mode is not None:
            query = query.where(runs.c.mode == mode)
        if since is not None:
            query = query.where(runs.c.started_at >= as_utc(since))
        if until is not None:
            query = query.where(runs.c.started_at < as_utc(until))
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def claim_runner(self, run_id: str, *, runner: str, at: datetime) -> None:
        """Record that process ``runner`` (``host/pid/start``) now runs the run; audited.

        Raises:
            RunNotFound: no run has exactly ``run_id``.
        """
        at = as_utc(at)
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(update(runs).where(runs.c.id == run_id).values(runner=runner, heartbeat_at=at))
            self._append(conn, "run.runner", {"runner": runner}, run_id=run_id, at=self._clock())

    def heartbeat(self, run_id: str, *, at: datetime) -> None:
        """The runner is alive at ``at`` (not audited: a heartbeat is not a change)."""
        with self._write(audited=False) as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(heartbeat_at=as_utc(at)))

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
        for item in items:
            if item.run.mode not in RUN_MODES:
                raise ValueError(f"run mode {item.run.mode!r} is not one of {', '.join(sorted(RUN_MODES))}")
            if item.run.source not in RUN_SOURCES:
                raise ValueError(f"run source {item.run.source!r} is not one of {', '.join(sorted(RUN_SOURCES))}")
        run_rows: list[dict[str, object]] = []
        mark_rows: list[dict[str, object]] = []
        step_rows: list[dict[str, object]] = []
        entries: list[tuple[str | None, dict[str, object]]] = []
        for item in items:
            run = item.run
            milestones = {milestone: audit_chain.format_at(at) for milestone, at in item.marks}
            run_rows.append(
                {
                    "id": run.id,
                    "runbook_id": run.runbook_id,
                    "runbook_title": run.runbook_title,
                    "runbook_hash": run.runbook_hash,
                    "runbook_path": run.runbook_path,
                    "mode": run.mode,
                    "parameters": run.parameters,
                    "triggered_by": run.triggered_by,
                    "services": list(run.services),
                    "severity": run.severity,
                    "status": run.status,
                    "flow_run_id": run.flow_run_id,
                    "error": run.error,
                    "started_at": as_utc(run.started_at),
                    "ended_at": _optional_utc(run.ended_at),
                    "source": run.source,
                    "milestones": _milestones_text(milestones),
                    **run.targets.to_json(),
                }
            )
            for milestone, at in item.marks:
                mark_rows.append({"run_id": run.id, "milestone": milestone, "at": as_utc(at), "source": run.source})
            steps_json = []
            for step in item.steps:
                row = {
                    "run_id": run.id,
                    "step_id": step.step_id,
                    "phase": step.phase,
                    "kind": step.kind,
                    "status": step.status,
                    "attempts": step.attempts,
                    "started_at": _optional_utc(step.started_at),
                    "ended_at": _optional_utc(step.ended_at),
                    "output": to_stored_json(step.output),
                    "error": step.error,
                    "actor": step.actor,
                    "reason": step.reason,
                }
                step_rows.append(row)
                steps_json.append({**row, "run_id": None})
            entries.append(
                (
                    run.id,
                    {
                        "runbook_id": run.runbook_id,
                        "runbook_title": run.runbook_title,
                        "mode": run.mode,
                        "source": run.source,
                        "triggered_by": run.triggered_by,
                        "services": list(run.services),
                        "severity": run.severity,
                        "status": run.status,
                        "started_at": audit_chain.format_at(run.started_at),
                        "ended_at": None if run.ended_at is None else audit_chain.format_at(run.ended_at),
                        "targets": run.targets.to_json(),
                        "marks": milestones,
                        "steps_sha256": _sha256(steps_json) if steps_json else None,
                        **(item.audit or {}),
                    },
                )
            )
        with self._write() as conn:
            for table, rows in ((runs, run_rows), (marks, mark_rows), (step_runs, step_rows)):
                for start in range(0, len(rows), _BULK_CHUNK):
                    conn.execute(insert(table), rows[start : start + _BULK_CHUNK])
            self._append_many(conn, audit_kind, entries, at=self._clock())
        return len(items)

    def _append_many(
        self, conn: Connection, kind: str, entries: Sequence[tuple[str | None, dict[str, object]]], *, at: datetime
    ) -> None:
        """Extend the chain by many entries with one read of its head (inside a write transaction)."""
        head = conn.execute(select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)).first()
        seq = 0 if head is None else head.seq
        prev_hash = audit_chain.GENESIS_HASH if head is None else head.hash
        rows: list[dict[str, object]] = []
        for run_id, data in entries:
            seq += 1
            data_text = canonical_json(data)
            hash_ = audit_chain.entry_hash(
                prev_hash, seq=seq, at=at, kind=kind, run_id=run_id, data=json.loads(data_text)
            )
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "kind": kind,
                    "run_id": run_id,
                    "data": data_text,
                    "prev_hash": prev_hash,
                    "hash": hash_,
                }
            )
            prev_hash = hash_
            if len(rows) >= _BULK_CHUNK:
                conn.execute(insert(audit), rows)
                rows = []
        if rows:
            conn.execute(insert(audit), rows)

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
        listed known ones first, in ``bcm.spec.models.MILESTONES`` order, then any others (a typo
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
        conditions: list[ColumnElement[bool]] = [runs.c.mode.in_([mode] if mode is not None else ["real", "exercise"])]
        if until is not None:
            conditions.append(runs.c.started_at < as_utc(until))
        if since is not None:
            conditions.append(runs.c.ended_at.is_(None) | (runs.c.ended_at >= as_utc(since)))
        if runbook_id is not None:
            conditions.append(runs.c.runbook_id == runbook_id)
        if run_ids is not None:
            conditions.append(runs.c.id.in_(list(run_ids)))
        chosen = select(runs.c.id).where(*conditions).scalar_subquery()
        # Timestamps and services are read raw and converted here: SQLAlchemy's per-value
        # processing would cost more than the rest of the figures put together for a year of runs.
        query = (
            select(
                runs.c.id,
                runs.c.runbook_id,
                runs.c.mode,
                type_coerce(runs.c.services, Text),
                runs.c.status,
                type_coerce(runs.c.started_at, Text),
                type_coerce(runs.c.ended_at, Text),
                runs.c.source,
                runs.c.rto_s,
                runs.c.rpo_s,
                runs.c.mtpd_s,
                runs.c.data_loss_s,
                runs.c.cadence_s,
                runs.c.milestones,
            )
            .where(*conditions)
            .order_by(runs.c.started_at, runs.c.id)
        )

        found: list[TimelineRun] = []
        by_mark: dict[str, list[tuple[str, datetime]]] = {}
        by_step: dict[str, list[tuple[str, str, str, str, datetime | None, datetime | None]]] = {}
        waits: dict[str, dict[str, float]] = {}
        updates: dict[str, list[datetime]] = {}
        services_seen: dict[object, tuple[str, ...]] = {}
        targets_seen: dict[tuple[float | None, ...], RunTargets] = {}
        known: tuple[str, ...] = KNOWN_MILESTONES
        fromiso = datetime.fromisoformat
        # The decoder's own scan, without ``json.loads``'s wrapper and whitespace checks: the text
        # is ours (``_milestones_text``), compact JSON with nothing around it.
        decode = json.JSONDecoder().raw_decode
        with self._read() as conn, paused_gc():
            for row in conn.execute(query).all():
                run_id, runbook, run_mode, services_raw, status, started, ended, source, *seconds_, stored_text = row
                # Runs share a few service lists and target sets: parse each distinct one once.
                key = services_raw if isinstance(services_raw, str) else tuple(services_raw)
                services = services_seen.get(key)
                if services is None:
                    services = services_seen[key] = tuple(
                        json.loads(services_raw) if isinstance(services_raw, str) else services_raw
                    )
                if service is not None and service not in services:
                    continue
                seconds: tuple[float | None, ...] = tuple(seconds_)
                # ``_raw_utc`` inlined for SQLite's text, the common case.
                started_at = fromiso(started + "+00:00") if type(started) is str else _raw_utc(started)
                if ended is not None:
                    ended = fromiso(ended + "+00:00") if type(ended) is str else _raw_utc(ended)
                found.append(
                    TimelineRun(
                        id=run_id,
                        runbook_id=runbook,
                        mode=run_mode,
                        services=services,
                        status=status,
                        started_at=started_at,
                        ended_at=ended,
                        targets=targets_seen.get(seconds)
                        or targets_seen.setdefault(seconds, RunTargets.from_seconds(*seconds)),
                        source=source,
                    )
                )
                stored: dict[str, str] = decode(stored_text)[0]
                pairs = [(name, fromiso(stored[name])) for name in known if name in stored]
                if len(pairs) < len(stored):
                    # Milestones the engine does not know still reach the figures, which report them.
                    odd = sorted((fromiso(at), name) for name, at in stored.items() if name not in known)
                    pairs.extend((name, at) for at, name in odd)
                by_mark[run_id] = pairs
            wanted = {run.id for run in found}
            update_query = select(outbox.c.run_id, outbox.c.delivered_at, outbox.c.created_at).where(
                outbox.c.run_id.in_(chosen), outbox.c.kind.in_(UPDATE_KINDS)
            )
            for run_id, delivered_at, created_at in conn.execute(update_query.order_by(outbox.c.id)):
                if run_id in wanted:
                    updates.setdefault(run_id, []).append(delivered_at or created_at)
            if steps:
                step_query = select(
                    step_runs.c.run_id,
                    step_runs.c.step_id,
                    step_runs.c.phase,
                    step_runs.c.kind,
                    step_runs.c.status,
                    step_runs.c.started_at,
                    step_runs.c.ended_at,
                ).where(step_runs.c.run_id.in_(chosen))
                for run_id, *fields in conn.execute(step_query):
                    if run_id in wanted:
                        by_step.setdefault(run_id, []).append(tuple(fields))
                wait_query = select(approvals.c.run_id, approvals.c.step_id, approvals.c.waited_s).where(
                    approvals.c.run_id.in_(chosen)
                )
                for run_id, step_id, waited_s in conn.execute(wait_query):
                    if run_id in wanted:
                        waits.setdefault(run_id, {})[step_id] = waited_s
        return TimelineRows(runs=found, marks=by_mark, steps=by_step, waits=waits, updates=updates)

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
        values: dict[str, object] = {"phase": phase, "kind": kind, "status": status}
        if fresh:
            values.update(dict.fromkeys(_ATTEMPT_FIELDS))
        optional: dict[str, object] = {
            "attempts": attempts,
            "started_at": _optional_utc(started_at),
            "ended_at": _optional_utc(ended_at),
            "output": to_stored_json(output),
            "error": error,
            "actor": actor,
            "reason": reason,
            "process": process,
        }
        values.update({key: value for key, value in optional.items() if value is not None})
        key = (step_runs.c.run_id == run_id) & (step_runs.c.step_id == step_id)
        with self._write() as conn:
            self._require_run(conn, run_id)
            before = conn.execute(select(step_runs).where(key)).first()
            if before is None:
                conn.execute(insert(step_runs).values(run_id=run_id, step_id=step_id, **{"attempts": 0, **values}))
            else:
                conn.execute(update(step_runs).where(key).values(**values))
            if status in FINISHED_STEP_STATUSES and (before is None or before.status != status):
                after = conn.execute(select(step_runs).where(key)).one()
                self._append(
                    conn,
                    audit_chain.STEP_FINISHED,
                    {
                        "step_id": step_id,
                        "phase": after.phase,
                        "kind": after.kind,
                        "status": after.status,
                        "attempts": after.attempts,
                        "started_at": None if after.started_at is None else audit_chain.format_at(after.started_at),
                        "ended_at": None if after.ended_at is None else audit_chain.format_at(after.ended_at),
                        "output_sha256": _sha256(after.output),
                        "error": after.error,
                        "actor": after.actor,
                        "reason": after.reason,
                    },
                    run_id=run_id,
                    at=self._clock(),
                )

    def get_steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in the order they started; steps not started yet come last."""
        query = (
            select(step_runs)
            .where(step_runs.c.run_id == run_id)
            .order_by(step_runs.c.started_at.is_(None), step_runs.c.started_at, step_runs.c.step_id)
        )
        with self._read() as conn:
            return [_step_record(row) for row in conn.execute(query)]

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        """One step's state, or ``None`` when it has no record yet."""
        query = select(step_runs).where(step_runs.c.run_id == run_id, step_runs.c.step_id == step_id)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _step_record(row)

    # -- timeline -------------------------------------------------------------------------------

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
            run = conn.execute(select(runs.c.milestones).where(runs.c.id == run_id)).first()
            if run is None:
                raise RunNotFound(run_id)
            exists = conn.execute(
                select(marks.c.milestone).where(marks.c.run_id == run_id, marks.c.milestone == milestone)
            ).first()
            if exists is not None:
                return False
            conn.execute(insert(marks).values(run_id=run_id, milestone=milestone, at=at, source=source))
            # The copy on the run row (see ``list_timeline_rows``), in the same transaction.
            milestones = json.loads(run.milestones)
            milestones[milestone] = audit_chain.format_at(at)
            conn.execute(update(runs).where(runs.c.id == run_id).values(milestones=_milestones_text(milestones)))
            self._append(
                conn,
                audit_chain.MARK_ADDED,
                {
                    "milestone": milestone,
                    "at": audit_chain.format_at(at),
                    "source": source,
                    # Only when given, so entries written before notes existed hash the same.
                    **({"note": note} if note else {}),
                },
                run_id=run_id,
                at=self._clock(),
            )
        return True

    def get_marks(self, run_id: str) -> list[MarkRecord]:
        """A run's milestones in time order."""
        query = select(marks).where(marks.c.run_id == run_id).order_by(marks.c.at, marks.c.milestone)
        with self._read() as conn:
            return [
                MarkRecord(run_id=row.run_id, milestone=row.milestone, at=row.at, source=row.source)
                for row in conn.execute(query)
            ]

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
            self._require_run(conn, run_id)
            existing = conn.execute(
                select(approvals).where(approvals.c.run_id == run_id, approvals.c.step_id == step_id)
            ).first()
            if existing is not None:
                raise AlreadyDecided(run_id, step_id, by=existing.by, decision=existing.decision, at=existing.at)
            conn.execute(
                insert(approvals).values(
                    run_id=run_id, step_id=step_id, by=by, decision=decision, note=note, waited_s=waited_s, at=record.at
                )
            )
            self._append(
                conn,
                audit_chain.APPROVAL_RECORDED,
                {
                    "step_id": step_id,
                    "by": by,
                    "decision": decision,
                    "note": note,
                    "waited_s": waited_s,
                    "at": audit_chain.format_at(record.at),
                },
                run_id=run_id,
                at=self._clock(),
            )
        return record

    def reopen_approval(self, run_id: str, step_id: str) -> bool:
        """Forget a timed-out approval so a resumed run can ask again (audited as approval.reopened).

        Returns:
            True when a timed-out approval was reopened; decisions by people are never removed.
        """
        with self._write() as conn:
            row = conn.execute(
                select(approvals).where(approvals.c.run_id == run_id, approvals.c.step_id == step_id)
            ).first()
            if row is None or row.decision != "timed_out":
                return False
            conn.execute(approvals.delete().where(approvals.c.run_id == run_id, approvals.c.step_id == step_id))
            self._append(
                conn,
                "approval.reopened",
                {"step_id": step_id, "was": "timed_out", "timed_out_at": audit_chain.format_at(row.at)},
                run_id=run_id,
                at=self._clock(),
            )
        return True

    def get_approvals(self, run_id: str) -> dict[str, ApprovalRecord]:
        """Every decision recorded for a run, by step id (one query, however many steps wait)."""
        query = select(approvals).where(approvals.c.run_id == run_id)
        with self._read() as conn:
            return {row.step_id: _approval_record(row) for row in conn.execute(query)}

    def get_approval(self, run_id: str, step_id: str) -> ApprovalRecord | None:
        """The decision recorded for a step, or ``None``."""
        query = select(approvals).where(approvals.c.run_id == run_id, approvals.c.step_id == step_id)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _approval_record(row)

    # -- readiness checks -----------------------------------------------------------------------

    def record_check(
        self, *, runbook_id: str, step_id: str, ok: bool, output: str, at: datetime, run_id: str | None = None
    ) -> None:
        """Record one readiness step's result; output is cut to 4000 characters.

        Raises:
            RunNotFound: ``run_id`` is given and no run has exactly that id.
        """
        at = as_utc(at)
        stored_output = truncate_text(output)
        with self._write() as conn:
            if run_id is not None:
                self._require_run(conn, run_id)
            conn.execute(
                insert(checks).values(
                    runbook_id=runbook_id, step_id=step_id, ok=ok, output=stored_output, at=at, run_id=run_id
                )
            )
            self._append(
                conn,
                audit_chain.CHECK_RECORDED,
                {
                    "runbook_id": runbook_id,
                    "step_id": step_id,
                    "ok": ok,
                    "output_sha256": _sha256(stored_output),
                    "at": audit_chain.format_at(at),
                },
                run_id=run_id,
                at=self._clock(),
            )

    def list_checks(self, *, runbook_id: str | None = None) -> list[CheckRecord]:
        """Readiness results, newest first."""
        query = select(checks).order_by(checks.c.at.desc(), checks.c.id.desc())
        if runbook_id is not None:
            query = query.where(checks.c.runbook_id == runbook_id)
        with self._read() as conn:
            return [
                CheckRecord(
                    id=row.id,
                    runbook_id=row.runbook_id,
                    step_id=row.step_id,
                    ok=bool(row.ok),
                    output=row.output,
                    at=row.at,
                    run_id=row.run_id,
                )
                for row in conn.execute(query)
            ]

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
                conn.execute(
                    insert(outbox).values(
                        key=key,
                        run_id=run_id,
                        kind=kind,
                        payload=to_stored_json(payload),
                        status="pending",
                        attempts=0,
                        created_at=created,
                    )
                )
            new = True
        except IntegrityError:
            new = False
        found = self.get_message(key)
        assert found is not None
        return found, new

    def get_message(self, key: str) -> OutboxRecord | None:
        """The outbox row with ``key``, if any."""
        with self._read() as conn:
            row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
        return None if row is None else _outbox_record(row)

    def list_messages(
        self, *, status: str | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[OutboxRecord]:
        """Outbox rows in the order they were queued (the order they must be delivered in).

        ``status="undelivered"`` selects pending and claimed (being sent) rows together.
        """
        query = select(outbox).order_by(outbox.c.id)
        if status == "undelivered":
            query = query.where(outbox.c.status.in_(("pending", "sending")))
        elif status is not None:
            query = query.where(outbox.c.status == status)
        if run_id is not None:
            query = query.where(outbox.c.run_id == run_id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_outbox_record(row) for row in conn.execute(query)]

    def claim_message(self, key: str, *, stale_after_s: float = 300.0) -> bool:
        """Take the message ``key`` for delivery; False when it is delivered, failed or another
        process holds it (a claim older than ``stale_after_s`` is taken over: that process died)."""
        now_ = self._clock()
        stale = now_ - timedelta(seconds=stale_after_s)
        with self._write() as conn:
            result = conn.execute(
                update(outbox)
                .where(outbox.c.key == key)
                .where(
                    (outbox.c.status == "pending") | ((outbox.c.status == "sending") & (outbox.c.claimed_at < stale))
                )
                .values(status="sending", claimed_at=now_)
            )
            return bool(result.rowcount == 1)

    def mark_message_delivered(self, key: str, *, result: dict[str, Any], at: datetime | None = None) -> None:
        """Record that the message ``key`` was delivered (audited as message.sent)."""
        when = as_utc(at) if at is not None else self._clock()
        with self._write() as conn:
            row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
            if row is None or row.status == "delivered":
                return
            conn.execute(
                update(outbox)
                .where(outbox.c.key == key)
                .values(status="delivered", attempts=row.attempts + 1, result=to_stored_json(result), delivered_at=when)
            )
            self._append(
                conn,
                audit_chain.MESSAGE_SENT,
                {"key": key, "kind": row.kind, "result": result, "at": audit_chain.format_at(when)},
                run_id=row.run_id,
                at=self._clock(),
            )

    def mark_message_attempt(self, key: str, *, error: str, permanent: bool) -> None:
        """Record a failed delivery attempt; a permanent one is not retried (audited as message.failed)."""
        with self._write() as conn:
            row = conn.execute(select(outbox).where(outbox.c.key == key)).first()
            if row is None or row.status not in ("pending", "sending"):
                return
            conn.execute(
                update(outbox)
                .where(outbox.c.key == key)
                .values(
                    claimed_at=None,
                    status="failed" if permanent else "pending",
                    attempts=row.attempts + 1,
                    last_error=truncate_text(error),
                )
            )
            if permanent:
                self._append(
                    conn,
                    audit_chain.MESSAGE_FAILED,
                    {"key": key, "kind": row.kind, "error": truncate_text(error)},
                    run_id=row.run_id,
                    at=self._clock(),
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
            return self._append(conn, kind, data, run_id=run_id, at=when)

    def verify_audit(self) -> AuditVerification:
        """Recompute the whole chain and name the first entry that was changed or removed."""
        with self._read() as conn:
            rows = conn.execute(select(*_AUDIT_COLUMNS).order_by(audit.c.seq))
            return audit_chain.verify_chain(tuple(row) for row in rows)

    def export_audit(self, *, run_id: str | None = None) -> list[dict[str, object]]:
        """Audit entries as JSON-able dicts with their hashes, in chain order.

        With ``run_id``, only that run's entries: each still carries ``prev_hash``, so its own hash
        can be checked, but the chain as a whole is only checkable from a full export.
        """
        query = select(*_AUDIT_COLUMNS).order_by(audit.c.seq)
        if run_id is not None:
            query = query.where(audit.c.run_id == run_id)
        with self._read() as conn:
            return [audit_chain.to_record(tuple(row)).to_json() for row in conn.execute(query)]


def _reason(exc: OperationalError, engine: Engine) -> str:
    """The driver's first line, with the password scrubbed in case the driver echoed it."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    reason = lines[0]
    password = engine.url.password
    if password:
        reason = reason.replace(str(password), "***")
    return reason
