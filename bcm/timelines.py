"""Build :class:`bcm.metrics.Timeline` values from the store, many runs at a time.

The store hands back runs, milestones, step timings, approval waits and stakeholder updates in a
few bulk queries (:meth:`bcm.store.Store.list_timeline_rows`); this module joins them into one
timeline per run. It never queries per run, so the figures of a year of runs take a few queries.

Targets: a run is measured against the targets stored with it (the runbook's effective targets
when it started, or those given when a disruption was recorded). Runs stored before targets were
kept have none; for those a ``fallback`` (usually :func:`library_targets`, the runbook's current
effective targets) fills the gap, which is the best that can be said about them.

Speed: an exercise played at ``bcm exercise run --speed N`` carries N (``Timeline.speed``, read
with the run), so its figures are in exercise time, as its after-action report's are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from bcm.metrics import Mark, Mode, StepTiming, Timeline
from bcm.spec import Library
from bcm.spec.targets import runbook_targets
from bcm.store import RunTargets, Store, TimelineRows, TimelineRun
from bcm.store.store import paused_gc

__all__ = [
    "TargetsFallback",
    "build_timelines",
    "library_targets",
    "load_timelines",
    "run_timeline",
    "runbook_targets",
]

TargetsFallback = Callable[[TimelineRun], RunTargets | None]
"""Targets for a run that has none stored; ``None`` when nothing is known either."""


def library_targets(library: Library) -> TargetsFallback:
    """Targets from the library as it is now: the runbook's effective targets, else the BIA.

    For a runbook in the library: its effective targets and cadence. For a run of a runbook no
    longer there (or a disruption recorded without one): the tightest targets among the run's
    services in the catalog.
    """
    by_runbook = {
        runbook_id: runbook_targets(loaded, library.catalog) for runbook_id, loaded in library.runbooks.items()
    }
    services = library.catalog.services

    def fallback(run: TimelineRun) -> RunTargets | None:
        if run.runbook_id in by_runbook:
            return by_runbook[run.runbook_id]
        known = [services[s] for s in run.services if s in services]
        if not known:
            return None
        return RunTargets(rto=min(s.rto for s in known), rpo=min(s.rpo for s in known), mtpd=min(s.mtpd for s in known))

    return fallback


def build_timelines(rows: TimelineRows, *, fallback: TargetsFallback | None = None) -> list[Timeline]:
    """Join the bulk rows into one timeline per run, in the order of ``rows.runs``.

    Args:
        rows: what :meth:`bcm.store.Store.list_timeline_rows` returned.
        fallback: targets for runs stored without any.

    Returns:
        The timelines; a run's ``runbook_id`` is kept as stored (``external`` for a disruption
        recorded without a runbook).
    """
    timelines = []
    marks_of = rows.marks
    steps_of = rows.steps
    waits_of = rows.waits
    updates_of = rows.updates
    no_waits: dict[str, float] = {}
    for run in rows.runs:
        targets = run.targets
        if fallback is not None and targets.empty:
            targets = fallback(run) or targets
        waits = waits_of.get(run.id, no_waits)
        steps = tuple(
            StepTiming(step_id, phase, kind, status, started, ended, waits.get(step_id))
            for step_id, phase, kind, status, started, ended in steps_of.get(run.id, ())
        )
        timelines.append(
            Timeline(
                run_id=run.id,
                runbook_id=run.runbook_id,
                services=run.services,
                mode=cast(Mode, run.mode),
                marks=tuple([Mark(milestone, at) for milestone, at in marks_of.get(run.id, ())]),
                steps=steps,
                rto=targets.rto,
                rpo=targets.rpo,
                mtpd=targets.mtpd,
                data_loss=targets.data_loss,
                cadence=targets.cadence,
                updates=tuple(updates_of.get(run.id, ())),
                started_at=run.started_at,
                ended_at=run.ended_at,
                speed=run.speed,
            )
        )
    return timelines


def load_timelines(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    mode: Mode | None = None,
    runbook_id: str | None = None,
    service: str | None = None,
    run_ids: Sequence[str] | None = None,
    steps: bool = False,
    fallback: TargetsFallback | None = None,
) -> list[Timeline]:
    """Read runs from the store and build their timelines (a few queries whatever the count).

    ``since``/``until`` select the runs that may have started in the window; pass the same values
    to :func:`bcm.metrics.summarise` for the exact window. ``steps`` also reads step timings and
    approval waits, which per-service figures do not need.

    The cyclic garbage collector is paused meanwhile (:func:`bcm.store.store.paused_gc`): a
    year of runs is about a million small objects with no cycles among them, and collecting
    over them repeatedly used to cost more than reading them.
    """
    with paused_gc():
        rows = store.list_timeline_rows(
            since=since, until=until, mode=mode, runbook_id=runbook_id, service=service, run_ids=run_ids, steps=steps
        )
        timelines = build_timelines(rows, fallback=fallback)
        # Free the intermediate rows before the collector is back, so it never has to look at them.
        del rows
    return timelines


def run_timeline(store: Store, run_id: str, *, fallback: TargetsFallback | None = None) -> Timeline | None:
    """One run's timeline with its steps; ``None`` for a dry run or a run id that is not stored."""
    found = load_timelines(store, run_ids=[run_id], steps=True, fallback=fallback)
    if not found:
        return None
    timeline = found[0]
    # Bulk reads leave rows in storage order; one run is shown to people, so put it in time order.
    return replace(
        timeline,
        marks=tuple(sorted(timeline.marks, key=lambda m: (m.at, m.milestone))),
        steps=tuple(
            sorted(timeline.steps, key=lambda s: (s.started_at is None, s.started_at or timeline.started_at, s.step_id))
        ),
    )
