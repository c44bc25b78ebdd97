"""The obligations catalog (``runbooks/catalog/obligations.yaml``), as frozen pydantic models.

An obligation is a deadline clock: it starts at a milestone of a run (or when another obligation
is fulfilled), runs for a period counted in its jurisdiction, may be capped by a second bound
(``not_later_than``), is fulfilled by a runbook step or a milestone, and reminds its owner role at
points of its time. These models check shape and types; cross-references (owner roles, chained
obligations and their cycles, jurisdictions, time zones, holiday calendars) are checked in
:mod:`bcm.spec.obligation_catalog`. They are part of the runbook format because runbooks name
obligations (``obligations:``, a step's ``fulfils:``); the clocks themselves (due times,
reminders, status) are in :mod:`bcm.obligations`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from bcm.kinds.base import Model, RoleId
from bcm.vocabulary import Milestone

ObligationId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$", max_length=64)]
"""An obligation's stable id: ``gdpr-art33``, ``sec-8k-item-1.05``."""

JurisdictionCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]*$", max_length=16)]
"""A key of the catalog's ``jurisdictions`` table: ``EU``, ``US``, ``GB``."""

# --------------------------------------------------------------------------- periods

PeriodUnit = Literal["minutes", "hours", "days", "business_days", "months"]
#: Units counted as exact elapsed time: 72 hours are 72 real hours, whatever the clocks on the wall do.
ELAPSED_UNITS: frozenset[PeriodUnit] = frozenset({"minutes", "hours"})

_UNIT_WORDS: dict[str, PeriodUnit] = {
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "business day": "business_days",
    "month": "months",
}
_PERIOD = re.compile(r"^([0-9]+) (minute|hour|business day|day|month)s?$")
PERIOD_EXAMPLES = "72 hours, 15 days, 4 business days, 1 month or 15 minutes"


class PeriodError(ValueError):
    """A string that is not a period such as ``72 hours``, ``4 business days`` or ``1 month``."""

    def __init__(self, text: object) -> None:
        self.text = text
        super().__init__(f"{text!r} is not a period: write a whole number and a unit, such as {PERIOD_EXAMPLES}")


@dataclass(frozen=True)
class Period:
    """How long a clock runs: a whole number of minutes, hours, calendar days, business days or
    calendar months (how each is counted: ``bcm.obligations.due.due_at``)."""

    amount: int
    unit: PeriodUnit

    def __str__(self) -> str:
        word = self.unit.replace("_", " ")
        return f"{self.amount} {word[:-1] if self.amount == 1 else word}"


def parse_period(text: object) -> Period:
    """Parse a period as the catalog writes it: ``72 hours``, ``1 month``, ``4 business days``.

    Raises:
        PeriodError: when ``text`` is not a positive whole number and a unit.
    """
    if isinstance(text, Period):
        return text
    if not isinstance(text, str):
        raise PeriodError(text)
    match = _PERIOD.match(" ".join(text.split()))
    if match is None or int(match[1]) == 0:
        raise PeriodError(text)
    return Period(int(match[1]), _UNIT_WORDS[match[2]])


PeriodText = Annotated[
    Period,
    PlainValidator(parse_period),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": f"a period: {PERIOD_EXAMPLES}"}),
]

# --------------------------------------------------------------------------- reminders

#: The point of a clock's time that is its due time (written ``due``).
DUE = 100
DEFAULT_REMINDERS: tuple[int, ...] = (50, 75, 90, DUE)
_POINT = re.compile(r"^([0-9]{1,2})%$")


def parse_point(value: object) -> int:
    """A reminder point as a percentage of the clock's time: ``50%`` is 50, ``due`` is 100.

    Raises:
        ValueError: for anything but ``1%`` to ``99%`` or ``due``.
    """
    if value == "due":
        return DUE
    match = _POINT.match(value) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        raise ValueError(f"{value!r} is not a reminder point: write a share of the time from 1% to 99%, or due")
    return int(match[1])


def format_point(point: int) -> str:
    """``50%``, or ``due`` for 100."""
    return "due" if point == DUE else f"{point}%"


ReminderPoint = Annotated[
    int,
    PlainValidator(parse_point),
    PlainSerializer(format_point, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^([1-9][0-9]?%|due)$"}),
]

# --------------------------------------------------------------------------- the clock


class Start(Model):
    """What starts a clock: a milestone of the run, or the fulfilment of another obligation."""

    milestone: Milestone | None = None
    fulfilled: ObligationId | None = None

    @model_validator(mode="after")
    def _one(self) -> Start:
        if (self.milestone is None) == (self.fulfilled is None):
            raise ValueError("write either 'milestone: NAME' or 'fulfilled: OBLIGATION' (when that one is fulfilled)")
        return self

    def __str__(self) -> str:
        return str(self.milestone) if self.milestone is not None else f"{self.fulfilled} fulfilled"


class Bound(Model):
    """A second limit on a clock: due no later than ``period`` after ``starts``."""

    starts: Start
    period: PeriodText


def _step_or_milestone(value: Any) -> Any:
    """``fulfilled_by: step`` is the mapping with no milestone; any other word is a mistake."""
    if value == "step":
        return {}
    if isinstance(value, str):
        raise ValueError(f"expected 'step' or 'milestone: NAME', got {value!r}")
    return value


class Fulfilment(Model):
    """What fulfils an obligation: a step of the run that declares ``fulfils: [ID]`` (the
    milestone is None), or the run reaching a milestone."""

    milestone: Milestone | None = None

    @property
    def by_step(self) -> bool:
        """True when a step (or ``bcm obligations fulfil``) fulfils it."""
        return self.milestone is None

    def __str__(self) -> str:
        return "step" if self.milestone is None else f"milestone {self.milestone}"


class Source(Model):
    """Where the obligation is written: the document, the article, the official text."""

    document: str = Field(min_length=1)
    article: str | None = None
    url: str = Field(pattern=r"^https://\S+$")


class Obligation(Model):
    """One deadline clock of the catalog."""

    id: ObligationId
    name: str = Field(min_length=1)
    regime: str = Field(min_length=1)
    jurisdiction: JurisdictionCode
    source: Source
    deliverable: str = Field(min_length=1)
    starts: Start
    period: PeriodText
    not_later_than: Bound | None = None
    fulfilled_by: Annotated[Fulfilment, BeforeValidator(_step_or_milestone)] = Fulfilment()
    owner: RoleId
    reminders: tuple[ReminderPoint, ...] = DEFAULT_REMINDERS
    adjustable: bool = False
    notes: str | None = None

    @field_validator("reminders")
    @classmethod
    def _increasing(cls, points: tuple[int, ...]) -> tuple[int, ...]:
        if any(later <= earlier for earlier, later in itertools.pairwise(points)):
            raise ValueError("reminder points go from the earliest to due, each once: [50%, 75%, 90%, due]")
        return points

    @property
    def chained_from(self) -> tuple[str, ...]:
        """The obligations whose fulfilment starts this clock or its second bound."""
        starts = [self.starts, *([self.not_later_than.starts] if self.not_later_than else [])]
        return tuple(dict.fromkeys(s.fulfilled for s in starts if s.fulfilled is not None))

    def adjusted(self, period: Period) -> Obligation:
        """This obligation with a programme's own period (a runbook's target).

        Raises:
            ValueError: when the obligation is not ``adjustable`` (its period is set by law).
        """
        if not self.adjustable:
            raise ValueError(
                f"obligation '{self.id}' has a fixed period ({self.period}): only adjustable ones take another"
            )
        return self.model_copy(update={"period": period})


class Jurisdiction(Model):
    """Where clocks are counted: the time zone of their wall-clock arithmetic and the public
    holidays (a country of the ``holidays`` library, optionally a subdivision) business days skip."""

    name: str = Field(min_length=1)
    timezone: str = Field(min_length=1)
    holidays: str = Field(pattern=r"^[A-Z]{2,3}$")
    subdivision: str | None = None


class Obligations(Model):
    """``runbooks/catalog/obligations.yaml``."""

    version: Literal[1]
    jurisdictions: dict[JurisdictionCode, Jurisdiction] = Field(min_length=1)
    obligations: list[Obligation]
