"""The timeline read model: runs with their milestones, step timings, waits and updates, in bulk.

This is what the figures read (``bcm.timelines``, ``bcm.metrics``): a year of runs at once, so
it is written for speed rather than through the records the other modules return. Runs and their
milestones come from one scan of ``runs``: each run row carries a copy of its marks
(``runs.milestones``, JSON text written in the same transaction as each mark; see migration 4), so
a year of runs needs no GROUP BY over every mark. The same scan reads each exercise run's speed
(a LEFT OUTER JOIN on ``exercise_runs`` by its primary key; 1.0 when a run has no row there), so
the figures can count an exercise played at ``--speed N`` in exercise time. Timestamps and
services are read raw and converted here: SQLAlchemy's per-value processing would cost more than
the rest of the figures put together. Steps, approval waits and stakeholder updates are one query
each over the same runs.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Select, Text, select, type_coerce

from bcm.clock import as_utc
from bcm.store.records import RunTargets, TimelineRows, TimelineRun
from bcm.store.schema import approvals, exercise_runs, outbox, runs, step_runs
from bcm.vocabulary import MILESTONES, UPDATE_KINDS

StepTiming = tuple[str, str, str, str, datetime | None, datetime | None]
"""``(step_id, phase, kind, status, started_at, ended_at)``."""


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


def conditions(
    *,
    since: datetime | None,
    until: datetime | None,
    mode: str | None,
    runbook_id: str | None,
    run_ids: Sequence[str] | None,
) -> list[ColumnElement[bool]]:
    """Which runs ``Store.list_timeline_rows`` reads (its docstring says why the window is so).

    Raises:
        ValueError: a naive ``since`` or ``until``.
    """
    where: list[ColumnElement[bool]] = [runs.c.mode.in_([mode] if mode is not None else ["real", "exercise"])]
    if until is not None:
        where.append(runs.c.started_at < as_utc(until))
    if since is not None:
        where.append(runs.c.ended_at.is_(None) | (runs.c.ended_at >= as_utc(since)))
    if runbook_id is not None:
        where.append(runs.c.runbook_id == runbook_id)
    if run_ids is not None:
        where.append(runs.c.id.in_(list(run_ids)))
    return where


def read(conn: Connection, where: Sequence[ColumnElement[bool]], *, service: str | None, steps: bool) -> TimelineRows:
    """The runs chosen by ``where`` (from ``conditions``) that concern ``service``, with their timelines.

    Args:
        conn: a connection in a read transaction.
        where: from ``conditions``.
        service: only runs concerning this service.
        steps: also read step timings and approval waits.
    """
    chosen = select(runs.c.id).where(*where).scalar_subquery()
    with paused_gc():
        found, by_mark = _read_runs(conn, where, service)
        wanted = {run.id for run in found}
        updates = _read_updates(conn, chosen, wanted)
        by_step = _read_steps(conn, chosen, wanted) if steps else {}
        waits = _read_waits(conn, chosen, wanted) if steps else {}
    return TimelineRows(runs=found, marks=by_mark, steps=by_step, waits=waits, updates=updates)


def _runs_query(where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return (
        select(
            runs.c.id,
            runs.c.runbook_id,
            runs.c.mode,
            type_coerce(runs.c.services, Text),
            runs.c.status,
            type_coerce(runs.c.started_at, Text),
            type_coerce(runs.c.ended_at, Text),
            runs.c.source,
            exercise_runs.c.speed,
            runs.c.rto_s,
            runs.c.rpo_s,
            runs.c.mtpd_s,
            runs.c.data_loss_s,
            runs.c.cadence_s,
            runs.c.milestones,
        )
        .select_from(runs.outerjoin(exercise_runs, exercise_runs.c.run_id == runs.c.id))
        .where(*where)
        .order_by(runs.c.started_at, runs.c.id)
    )


def _raw_utc(value: object) -> datetime:
    """A timestamp read without SQLAlchemy's processing: SQLite text (naive UTC) or a driver datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    assert isinstance(value, datetime)
    return as_utc(value)


def _services(raw: Any, seen: dict[object, tuple[str, ...]]) -> tuple[str, ...]:
    """A run's services from the raw column (SQLite: JSON text; PostgreSQL: a list), parsed once per value.

    Runs share a few service lists: ``seen`` keeps each distinct one.
    """
    key = raw if isinstance(raw, str) else tuple(raw)
    services = seen.get(key)
    if services is None:
        services = seen[key] = tuple(json.loads(raw) if isinstance(raw, str) else raw)
    return services


def _milestones(stored: dict[str, str]) -> list[tuple[str, datetime]]:
    """A run's copied marks: known milestones in ``bcm.vocabulary.MILESTONES`` order, then others by time."""
    fromiso = datetime.fromisoformat
    pairs: list[tuple[str, datetime]] = [(name, fromiso(stored[name])) for name in MILESTONES if name in stored]
    if len(pairs) < len(stored):
        # Milestones the engine does not know (a typo in an old record) still reach the figures,
        # which report them.
        odd = sorted((fromiso(at), name) for name, at in stored.items() if name not in MILESTONES)
        pairs.extend((name, at) for at, name in odd)
    return pairs


def _read_runs(
    conn: Connection, where: Sequence[ColumnElement[bool]], service: str | None
) -> tuple[list[TimelineRun], dict[str, list[tuple[str, datetime]]]]:
    found: list[TimelineRun] = []
    by_mark: dict[str, list[tuple[str, datetime]]] = {}
    services_seen: dict[object, tuple[str, ...]] = {}
    targets_seen: dict[tuple[float | None, ...], RunTargets] = {}
    fromiso = datetime.fromisoformat
    # The decoder's own scan, without ``json.loads``'s wrapper and whitespace checks: the text is
    # ours (``milestones.milestones_text``), compact JSON with nothing around it.
    decode = json.JSONDecoder().raw_decode
    for row in conn.execute(_runs_query(where)).all():
        run_id, runbook, run_mode, services_raw, status, started, ended, source, speed, *seconds_, stored_text = row
        services = _services(services_raw, services_seen)
        if service is not None and service not in services:
            continue
        # Runs share a few target sets too: build each distinct one once.
        seconds: tuple[float | None, ...] = tuple(seconds_)
        targets = targets_seen.get(seconds) or targets_seen.setdefault(seconds, RunTargets.from_seconds(*seconds))
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
                targets=targets,
                source=source,
                speed=1.0 if speed is None else speed,
            )
        )
        by_mark[run_id] = _milestones(decode(stored_text)[0])
    return found, by_mark


def _read_updates(conn: Connection, chosen: ScalarSelect[Any], wanted: set[str]) -> dict[str, list[datetime]]:
    """When stakeholder updates went out per run: delivered, else queued; in queue order."""
    updates: dict[str, list[datetime]] = {}
    query = select(outbox.c.run_id, outbox.c.delivered_at, outbox.c.created_at).where(
        outbox.c.run_id.in_(chosen), outbox.c.kind.in_(UPDATE_KINDS)
    )
    for run_id, delivered_at, created_at in conn.execute(query.order_by(outbox.c.id)):
        if run_id in wanted:
            updates.setdefault(run_id, []).append(delivered_at or created_at)
    return updates


def _read_steps(conn: Connection, chosen: ScalarSelect[Any], wanted: set[str]) -> dict[str, list[StepTiming]]:
    by_step: dict[str, list[StepTiming]] = {}
    query = select(
        step_runs.c.run_id,
        step_runs.c.step_id,
        step_runs.c.phase,
        step_runs.c.kind,
        step_runs.c.status,
        step_runs.c.started_at,
        step_runs.c.ended_at,
    ).where(step_runs.c.run_id.in_(chosen))
    for run_id, *fields in conn.execute(query):
        if run_id in wanted:
            by_step.setdefault(run_id, []).append(tuple(fields))
    return by_step


def _read_waits(conn: Connection, chosen: ScalarSelect[Any], wanted: set[str]) -> dict[str, dict[str, float]]:
    """Seconds each approval or manual step waited for a person, per run and step."""
    waits: dict[str, dict[str, float]] = {}
    query = select(approvals.c.run_id, approvals.c.step_id, approvals.c.waited_s).where(approvals.c.run_id.in_(chosen))
    for run_id, step_id, waited_s in conn.execute(query):
        if run_id in wanted:
            waits.setdefault(run_id, {})[step_id] = waited_s
    return waits
