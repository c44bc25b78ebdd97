"""The clocks of a run: which of its runbook's obligations apply, when each started, is due and was met.

A pure function of the run's records (:func:`run_clocks`). The records are read through small
protocols (the store's ``RunRecord``, ``MarkRecord``, ``StepRecord`` and ``FulfilmentRecord`` fit
them), because the store sits above this package.

For each entry of the runbook's ``obligations:`` list:

- **applies** when its ``when`` is absent or true on ``{params, steps: {id: {status, output}}}``;
  false leaves it out; an expression that cannot be evaluated yet (it reads the output of a step
  that has not run) is kept as *not applicable yet*, with the reason.
- **starts** at the time the run reached the catalog's starting milestone (its recorded time, so a
  milestone recorded by hand while nothing ran starts the clock then, not at resume), or when the
  obligation it is chained to was fulfilled.
- **is due** by the catalog's rules (:mod:`bcm.obligations.due`), over the runbook's ``period``
  when the catalog marks the obligation adjustable.
- **is fulfilled** by a ``fulfilments`` row (a step's record or ``bcm obligations fulfil``), else by
  the earliest succeeded step that declares ``fulfils: [ID]`` (its end, by its actor), else, for an
  obligation the catalog says a milestone fulfils, at that milestone's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bcm.clock import as_utc
from bcm.errors import TemplateRenderError
from bcm.obligations.catalog import ObligationCatalog
from bcm.obligations.due import clock_status
from bcm.spec.models import Runbook, RunbookObligation
from bcm.spec.obligations import Obligation
from bcm.templates import evaluate, truthy, when_expression
from bcm.vocabulary import ObligationStatus

__all__ = ["Clock", "FulfilmentLike", "MarkLike", "RunLike", "StepLike", "run_clocks"]


class RunLike(Protocol):
    """What a clock reads of a run (``bcm.store.RunRecord``)."""

    @property
    def id(self) -> str: ...
    @property
    def parameters(self) -> Mapping[str, object]: ...


class MarkLike(Protocol):
    """A milestone the run reached (``bcm.store.MarkRecord``)."""

    @property
    def milestone(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def source(self) -> str: ...


class StepLike(Protocol):
    """A step's state (``bcm.store.StepRecord``)."""

    @property
    def step_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def output(self) -> object: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def actor(self) -> str | None: ...


class FulfilmentLike(Protocol):
    """A recorded fulfilment (``bcm.store.FulfilmentRecord``)."""

    @property
    def obligation_id(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def by(self) -> str: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class Clock:
    """One obligation's clock in one run.

    Attributes:
        applies: True when its ``when`` holds (or is absent); None when that cannot be told yet.
        note: why there is no status yet (not applicable yet, not started), else None.
        status: open, met or missed once started; None before.
        time_left: to the due time from now (or from the fulfilment); negative when overdue or late.
        fulfilled_source: ``step:<id>``, ``hand`` or ``milestone:<name>``.
    """

    run_id: str
    obligation_id: str
    name: str
    owner: str
    applies: bool | None
    note: str | None
    started: datetime | None
    due: datetime | None
    fulfilled_at: datetime | None
    fulfilled_by: str | None
    fulfilled_source: str | None
    status: ObligationStatus | None
    time_left: timedelta | None

    @property
    def overdue(self) -> bool:
        """Past due and not fulfilled."""
        return self.status == "missed" and self.fulfilled_at is None


@dataclass(frozen=True)
class _Fulfilled:
    at: datetime
    by: str | None
    source: str


def _marks(marks: Sequence[MarkLike]) -> dict[str, MarkLike]:
    first: dict[str, MarkLike] = {}
    for mark in sorted(marks, key=lambda m: as_utc(m.at)):
        first.setdefault(mark.milestone, mark)
    return first


def _fulfilled(
    runbook: Runbook,
    catalog: ObligationCatalog,
    marks: Mapping[str, MarkLike],
    steps: Mapping[str, StepLike],
    fulfilments: Sequence[FulfilmentLike],
) -> dict[str, _Fulfilled]:
    found: dict[str, _Fulfilled] = {}
    for row in fulfilments:
        at = as_utc(row.at)
        if row.obligation_id not in found or at < found[row.obligation_id].at:
            found[row.obligation_id] = _Fulfilled(at, row.by, row.source)
    for entry in runbook.obligations:
        oid = entry.obligation
        if oid in found:
            continue
        done = [
            (as_utc(s.ended_at), sid, s.actor)
            for sid in runbook.fulfilled_by(oid)
            if (s := steps.get(sid)) is not None and s.status == "succeeded" and s.ended_at is not None
        ]
        if done:
            at, sid, actor = min(done, key=lambda d: d[0])
            found[oid] = _Fulfilled(at, actor, f"step:{sid}")
            continue
        obligation = catalog.obligations.get(oid)
        milestone = obligation.fulfilled_by.milestone if obligation is not None else None
        if milestone is not None and milestone in marks:
            mark = marks[milestone]
            found[oid] = _Fulfilled(as_utc(mark.at), mark.source, f"milestone:{milestone}")
    return found


def _applies(entry: RunbookObligation, context: Mapping[str, object]) -> tuple[bool | None, str | None]:
    if entry.when is None:
        return True, None
    try:
        return truthy(evaluate(when_expression(entry.when), context)), None
    except TemplateRenderError as exc:
        return None, f"not applicable yet: its condition cannot be evaluated yet ({exc})"


def _effective(entry: RunbookObligation, obligation: Obligation) -> Obligation:
    if entry.period is not None and obligation.adjustable:
        return obligation.adjusted(entry.period)
    return obligation


def run_clocks(
    runbook: Runbook,
    catalog: ObligationCatalog,
    run_record: RunLike,
    marks: Sequence[MarkLike],
    steps: Sequence[StepLike],
    fulfilments: Sequence[FulfilmentLike],
    now: datetime,
) -> list[Clock]:
    """The clocks of a run at ``now``, in the runbook's ``obligations:`` order.

    Entries whose ``when`` is false are left out; those whose ``when`` cannot be evaluated yet
    and those whose clock has not started are listed without a status, with a note saying why.
    Obligations the catalog does not have (a runbook checked against another catalog) are
    listed with a note too.

    Raises:
        ValueError: when a time is naive.
    """
    by_step = {s.step_id: s for s in steps}
    first_marks = _marks(marks)
    found = _fulfilled(runbook, catalog, first_marks, by_step, fulfilments)
    fulfilled_at = {oid: f.at for oid, f in found.items()}
    mark_times = {name: as_utc(m.at) for name, m in first_marks.items()}
    context: dict[str, object] = {
        "params": dict(run_record.parameters),
        "steps": {sid: {"status": s.status, "output": s.output} for sid, s in by_step.items()},
    }
    clocks: list[Clock] = []
    for entry in runbook.obligations:
        oid = entry.obligation
        applies, note = _applies(entry, context)
        if applies is False:
            continue
        listed = catalog.obligations.get(oid)
        if listed is None:
            clocks.append(_clock(run_record.id, oid, oid, "-", None, f"'{oid}' is not in the obligations catalog"))
            continue
        obligation = _effective(entry, listed)
        done = found.get(oid)
        started = catalog.started(obligation, marks=mark_times, fulfilled=fulfilled_at)
        if applies is None or started is None:
            if note is None:
                note = f"not started: waits for {obligation.starts}"
            clocks.append(_clock(run_record.id, oid, obligation.name, obligation.owner, applies, note, done=done))
            continue
        due = catalog.due(obligation, marks=mark_times, fulfilled=fulfilled_at)
        assert due is not None  # started, so due
        state = clock_status(started, due, done.at if done else None, now)
        clocks.append(
            Clock(
                run_id=run_record.id,
                obligation_id=oid,
                name=obligation.name,
                owner=obligation.owner,
                applies=True,
                note=None,
                started=started,
                due=state.due,
                fulfilled_at=state.fulfilled_at,
                fulfilled_by=done.by if done else None,
                fulfilled_source=done.source if done else None,
                status=state.status,
                time_left=state.time_left,
            )
        )
    return clocks


def _clock(
    run_id: str,
    oid: str,
    name: str,
    owner: str,
    applies: bool | None,
    note: str,
    *,
    done: _Fulfilled | None = None,
) -> Clock:
    return Clock(
        run_id=run_id,
        obligation_id=oid,
        name=name,
        owner=owner,
        applies=applies,
        note=note,
        started=None,
        due=None,
        fulfilled_at=done.at if done else None,
        fulfilled_by=done.by if done else None,
        fulfilled_source=done.source if done else None,
        status=None,
        time_left=None,
    )
