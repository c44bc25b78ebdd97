"""The ``runs`` table: creating a run, changing it, finding it by id or prefix, listing, liveness.

A run row also holds, since migration 3, the targets the run is measured against (fixed when it is
recorded, so later changes to the runbook or the BIA do not change how past runs are judged) and,
since migration 5, the process running it and that process's last heartbeat. Its ``milestones``
copy of the marks (migration 4) is written by ``bcm.store.milestones`` and ``bcm.store.bulk``.

Functions here take a ``Connection`` inside a transaction from ``bcm.store.transactions``;
``new_record`` and ``changes`` check their input first, before any transaction is opened.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from bcm.clock import Clock, as_utc
from bcm.errors import AmbiguousRun, RunNotFound
from bcm.store import audit as chain
from bcm.store.audit_log import append
from bcm.store.records import RunRecord, RunTargets
from bcm.store.schema import runs
from bcm.vocabulary import RUN_MODES

_AMBIGUOUS_SHOWN = 5


def check_mode(mode: str) -> None:
    """Refuse a mode that is not ``real``, ``exercise`` or ``dry-run``.

    Raises:
        ValueError: ``mode`` is not one of ``bcm.vocabulary.RUN_MODES``.
    """
    if mode not in RUN_MODES:
        raise ValueError(f"run mode {mode!r} is not one of {', '.join(sorted(RUN_MODES))}")


def to_record(row: Row[Any]) -> RunRecord:
    """A run record from a whole ``runs`` row."""
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
        targets=RunTargets.from_seconds(row.rto_s, row.rpo_s, row.mtpd_s, row.data_loss_s, row.cadence_s),
        source=row.source,
        runner=row.runner,
        heartbeat_at=row.heartbeat_at,
    )


def require_run(conn: Connection, run_id: str) -> str:
    """The run's status, for changes that need the run to exist.

    Raises:
        RunNotFound: no run has exactly ``run_id``.
    """
    status = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar_one_or_none()
    if status is None:
        raise RunNotFound(run_id)
    return str(status)


def new_record(
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
    status: str,
    targets: RunTargets | None,
) -> RunRecord:
    """The record of a run about to be created (arguments as for ``Store.create_run``).

    Raises:
        ValueError: an unknown mode, or a naive ``started_at``.
    """
    check_mode(mode)
    return RunRecord(
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
        targets=targets or RunTargets(),
    )


def create(conn: Connection, record: RunRecord, *, clock: Clock) -> None:
    """Insert a run made by ``new_record`` and audit ``run.created``."""
    targets = record.targets
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
    append(
        conn,
        chain.RUN_CREATED,
        {
            "runbook_id": record.runbook_id,
            "runbook_title": record.runbook_title,
            "runbook_hash": record.runbook_hash,
            "runbook_path": record.runbook_path,
            "mode": record.mode,
            "parameters": record.parameters,
            "triggered_by": record.triggered_by,
            "services": list(record.services),
            "severity": record.severity,
            "status": record.status,
            "started_at": chain.format_at(record.started_at),
            # Only when set, so entries written before targets were stored hash the same.
            **({} if targets.empty else {"targets": targets.to_json()}),
        },
        run_id=record.id,
        at=clock(),
    )


def changes(
    *,
    status: str | None,
    ended_at: datetime | None,
    flow_run_id: str | None,
    error: str | None,
    clear_error: bool,
) -> dict[str, object]:
    """The column values ``Store.update_run``'s arguments change (``None``: left as it is).

    Raises:
        ValueError: a naive ``ended_at``.
    """
    # A resumed run goes on: it has neither its old error nor an end any more.
    values: dict[str, object] = {"error": None, "ended_at": None} if clear_error else {}
    if status is not None:
        values["status"] = status
    if ended_at is not None:
        values["ended_at"] = as_utc(ended_at)
    if flow_run_id is not None:
        values["flow_run_id"] = flow_run_id
    if error is not None:
        values["error"] = error
    return values


def update_run(conn: Connection, run_id: str, values: dict[str, object], *, clock: Clock) -> None:
    """Apply ``values`` made by ``changes``; a change of status is audited as ``run.status_changed``.

    Raises:
        RunNotFound: no run has exactly ``run_id``.
    """
    current_status = require_run(conn, run_id)
    if not values:
        return
    conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    status = values.get("status")
    if status is not None and status != current_status:
        ended_at = values.get("ended_at")
        append(
            conn,
            chain.RUN_STATUS_CHANGED,
            {
                "from": current_status,
                "to": status,
                "ended_at": chain.format_at(ended_at) if isinstance(ended_at, datetime) else None,
                # ``None`` when the error was cleared or left as it is.
                "error": values.get("error"),
            },
            run_id=run_id,
            at=clock(),
        )


def id_prefix(ref: str) -> str:
    """The run id, or start of one, that ``ref`` (as typed, e.g. a short id in capitals) stands for.

    Raises:
        RunNotFound: ``ref`` is blank.
    """
    prefix = ref.strip().lower()
    if not prefix:
        raise RunNotFound(ref)
    return prefix


def find(conn: Connection, prefix: str, *, ref: str) -> RunRecord:
    """The run whose id is ``prefix`` or, failing that, the only run whose id starts with it.

    Args:
        conn: a connection in a transaction.
        prefix: ``id_prefix(ref)``.
        ref: what was typed, for the errors.

    Raises:
        RunNotFound: no run id starts with ``prefix``.
        AmbiguousRun: several do; the error lists some of them, newest first.
    """
    exact = conn.execute(select(runs).where(runs.c.id == prefix)).first()
    if exact is not None:
        return to_record(exact)
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
    return to_record(rows[0])


def search(
    conn: Connection,
    *,
    runbook_id: str | None,
    mode: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    statuses: Collection[str] | None,
) -> list[RunRecord]:
    """Runs, newest first, filtered as ``Store.list_runs`` describes."""
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
    return [to_record(row) for row in conn.execute(query)]


def claim_runner(conn: Connection, run_id: str, *, runner: str, at: datetime, clock: Clock) -> None:
    """Record the process now running the run and its first heartbeat; audited as ``run.runner``.

    Raises:
        RunNotFound: no run has exactly ``run_id``.
    """
    require_run(conn, run_id)
    conn.execute(update(runs).where(runs.c.id == run_id).values(runner=runner, heartbeat_at=at))
    append(conn, "run.runner", {"runner": runner}, run_id=run_id, at=clock())


def heartbeat(conn: Connection, run_id: str, *, at: datetime) -> None:
    """Record that the runner was alive at ``at`` (no audit entry: a heartbeat changes nothing)."""
    conn.execute(update(runs).where(runs.c.id == run_id).values(heartbeat_at=as_utc(at)))
