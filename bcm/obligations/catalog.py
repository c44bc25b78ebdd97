"""The obligations catalog with its clocks: when each obligation starts and is due in a run.

The catalog is read and checked with the runbook format (:mod:`bcm.spec.obligation_catalog`:
``obligations.yaml`` with located problems, and :attr:`bcm.spec.Catalog.obligations`). This
module adds what a clock needs on top: each jurisdiction's calendar (zone, public holidays from
the ``holidays`` library, weekend) and the due time of an obligation from a run's milestones and
fulfilments.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from bcm.obligations.due import Calendar, clock_due
from bcm.spec.catalog import Catalog
from bcm.spec.obligation_catalog import OBLIGATIONS_FILE, CatalogObligations
from bcm.spec.obligation_catalog import load_obligations as load_catalog_obligations
from bcm.spec.obligation_catalog import parse_obligations as parse_catalog_obligations
from bcm.spec.obligations import Obligation, Start
from bcm.spec.problems import Problem

__all__ = [
    "OBLIGATIONS_FILE",
    "ObligationCatalog",
    "jurisdiction_calendar",
    "load_obligations",
    "parse_obligations",
    "start_time",
]


@dataclass(frozen=True)
class ObligationCatalog(CatalogObligations):
    """The obligations of a library by id, the jurisdictions their clocks are counted in, and the
    clocks' arithmetic."""

    @classmethod
    def of(cls, found: Catalog | CatalogObligations) -> ObligationCatalog:
        """The clocks of a loaded catalog (:func:`bcm.spec.load_catalog`) or of its obligations."""
        return cls(obligations=dict(found.obligations), jurisdictions=dict(found.jurisdictions))

    def calendar(self, jurisdiction: str) -> Calendar:
        """The calendar (zone, holidays, weekend) of a jurisdiction of the table."""
        found = self.jurisdictions[jurisdiction]
        return jurisdiction_calendar(found.timezone, found.holidays, found.subdivision)

    def started(
        self, obligation: Obligation, *, marks: Mapping[str, datetime], fulfilled: Mapping[str, datetime]
    ) -> datetime | None:
        """When the obligation's clock started: its milestone's time in ``marks``, or the time the
        obligation it is chained to was fulfilled; None while that has not happened."""
        return start_time(obligation.starts, marks=marks, fulfilled=fulfilled)

    def due(
        self, obligation: Obligation, *, marks: Mapping[str, datetime], fulfilled: Mapping[str, datetime]
    ) -> datetime | None:
        """When the obligation is due given a run's milestones and fulfilments; None when its clock
        has not started. A second bound whose start is not known yet does not limit it.

        Args:
            obligation: one of the catalog's (or one :meth:`Obligation.adjusted` from it).
            marks: milestone -> when it was reached.
            fulfilled: obligation id -> when it was fulfilled (chained clocks start then).
        """
        started = self.started(obligation, marks=marks, fulfilled=fulfilled)
        if started is None:
            return None
        bound = obligation.not_later_than
        bound_started = start_time(bound.starts, marks=marks, fulfilled=fulfilled) if bound else None
        return clock_due(
            obligation, started=started, bound_started=bound_started, calendar=self.calendar(obligation.jurisdiction)
        )


def start_time(start: Start, *, marks: Mapping[str, datetime], fulfilled: Mapping[str, datetime]) -> datetime | None:
    """The time ``start`` happened in a run, or None when it has not."""
    if start.milestone is not None:
        return marks.get(start.milestone)
    return fulfilled.get(start.fulfilled or "")


@functools.cache
def jurisdiction_calendar(timezone: str, country: str, subdivision: str | None) -> Calendar:
    """A calendar from the ``holidays`` library (built once per jurisdiction; it adds each year's
    holidays the first time a date of that year is looked up)."""
    days = holidays_lib.country_holidays(country, subdiv=subdivision)
    return Calendar(tz=ZoneInfo(timezone), holidays=days, weekend=frozenset(days.weekend))


def load_obligations(directory: Path, *, roles: Collection[str]) -> tuple[ObligationCatalog | None, list[Problem]]:
    """Load and check ``obligations.yaml`` from a catalog folder, with the clocks.

    Args:
        directory: the catalog folder (``runbooks/catalog``).
        roles: the stakeholder roles (owners must be among them).

    Returns:
        The catalog (None when there are problems; empty when the folder has no obligations file)
        and every problem found, in file order.
    """
    found, problems = load_catalog_obligations(directory, roles=roles)
    return (ObligationCatalog.of(found) if found is not None else None), problems


def parse_obligations(
    text: str, file: str, *, roles: Collection[str]
) -> tuple[ObligationCatalog | None, list[Problem]]:
    """:func:`load_obligations` for YAML text (``file`` names it in problems)."""
    found, problems = parse_catalog_obligations(text, file, roles=roles)
    return (ObligationCatalog.of(found) if found is not None else None), problems
