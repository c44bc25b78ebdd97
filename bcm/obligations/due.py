"""Due times, reminder times and the state of a clock: pure arithmetic on aware datetimes.

How a period is counted from the moment its clock starts (times are returned in UTC):

- **minutes, hours**: exact elapsed time. 72 hours are 72 real hours, so a clock that runs across a
  change of summer time ends an hour later (or earlier) on the wall clock than it started.
- **days** (calendar days): the same wall-clock time N days later in the jurisdiction's zone. Across
  the end of summer time, 15 days are 15 × 24 + 1 real hours.
- **business days**: the same wall-clock time on the Nth business day after the start's date in the
  jurisdiction's zone. A business day is neither in the weekend nor a public holiday of the
  jurisdiction (as observed: a US holiday on a Saturday is observed on the Friday). The start's own
  day never counts, business day or not: from Thursday 10:00, four business days end on Wednesday
  10:00 (Friday, Monday, Tuesday, Wednesday), and from Saturday 10:00 on Thursday 10:00.
- **months** (calendar months): the same day and wall-clock time N months later, on the month's last
  day when it is shorter: one month from 31 January is 28 February (29 in a leap year).
- A wall-clock time that a change of summer time skips is moved forward by the gap (02:30 on the
  last Sunday of March in Brussels is 03:30); one that happens twice is the first of the two.
- With a second bound (``not_later_than``), the clock is due at the earlier of the two.

The rules are never later than the texts: EU time limits (Regulation 1182/71) end a period of days
at the end of its last day and move it past holidays, and an SEC filing counts the whole fourth
business day; we count from the instant, so an obligation is due at or before its legal limit.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

from bcm.clock import as_utc
from bcm.spec.obligations import DEFAULT_REMINDERS, DUE, ELAPSED_UNITS, Obligation, Period, format_point
from bcm.vocabulary import ObligationStatus

#: Saturday and Sunday (``date.weekday()`` numbers).
WEEKEND: frozenset[int] = frozenset({5, 6})


def due_at(
    start: datetime,
    period: Period,
    *,
    holidays: Container[date],
    tz: tzinfo,
    weekend: Collection[int] = WEEKEND,
) -> datetime:
    """When a clock that started at ``start`` and runs for ``period`` is due (the module's rules).

    Args:
        start: when the clock started (timezone-aware).
        period: how long it runs.
        holidays: the jurisdiction's public holidays (a ``holidays`` library calendar or any
            container of dates): business days skip them.
        tz: the jurisdiction's zone, for days, business days and months.
        weekend: the weekdays that are not business days (0 is Monday).

    Returns:
        The due time, in UTC.

    Raises:
        ValueError: when ``start`` is naive, or the weekend is the whole week.
    """
    begin = as_utc(start)
    if period.unit in ELAPSED_UNITS:
        return begin + timedelta(**{period.unit: period.amount})
    local = begin.astimezone(tz)
    if period.unit == "days":
        day = local.date() + timedelta(days=period.amount)
    elif period.unit == "business_days":
        day = nth_business_day(local.date(), period.amount, holidays=holidays, weekend=weekend)
    else:
        day = add_months(local.date(), period.amount)
    return at_wall_clock(day, local.time(), tz)


def nth_business_day(day: date, n: int, *, holidays: Container[date], weekend: Collection[int] = WEEKEND) -> date:
    """The ``n``-th business day after ``day`` (which itself never counts).

    Raises:
        ValueError: when every day of the week is in ``weekend``.
    """
    if len(set(weekend) & set(range(7))) == 7:
        raise ValueError("a weekend of seven days leaves no business days")
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if day.weekday() not in weekend and day not in holidays:
            counted += 1
    return day


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later, on the month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def at_wall_clock(day: date, clock_time: time, tz: tzinfo) -> datetime:
    """The instant (UTC) the clocks in ``tz`` show ``clock_time`` on ``day``.

    A time the zone skips is moved forward by the gap, a time it repeats is the first of the two
    (``fold=0``, PEP 495).
    """
    return datetime.combine(day, clock_time.replace(fold=0, tzinfo=None), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, eq=False)
class Calendar:
    """Where a clock is counted: the jurisdiction's zone, public holidays and weekend."""

    tz: tzinfo
    holidays: Container[date] = field(default_factory=frozenset)
    weekend: frozenset[int] = WEEKEND

    def due_at(self, start: datetime, period: Period) -> datetime:
        """:func:`due_at` in this calendar."""
        return due_at(start, period, holidays=self.holidays, tz=self.tz, weekend=self.weekend)


def clock_due(
    obligation: Obligation, *, started: datetime, bound_started: datetime | None, calendar: Calendar
) -> datetime:
    """When ``obligation`` is due: its period from ``started``, or its second bound's
    (``not_later_than``) from ``bound_started`` when that is earlier.

    A bound whose start is not known (``bound_started`` None) does not limit the clock.
    """
    due = calendar.due_at(started, obligation.period)
    bound = obligation.not_later_than
    if bound is not None and bound_started is not None:
        due = min(due, calendar.due_at(bound_started, bound.period))
    return due


class Reminder(NamedTuple):
    """When to remind the owner: at ``point`` percent of the clock's time (100 is the due time)."""

    point: int
    at: datetime

    @property
    def label(self) -> str:
        """``50%``, or ``due``."""
        return format_point(self.point)


def reminder_times(start: datetime, due: datetime, points: Sequence[int] = DEFAULT_REMINDERS) -> list[Reminder]:
    """The reminders of a clock: each point is that share of the real time from ``start`` to ``due``.

    A clock due at or before it starts (a second bound that had already passed) leaves no time to
    remind in: only the due point is kept, when asked for.

    Raises:
        ValueError: when a time is naive.
    """
    begin, end = as_utc(start), as_utc(due)
    span = end - begin
    if span <= timedelta(0):
        return [Reminder(DUE, end)] if DUE in points else []
    return [Reminder(point, begin + span * point // DUE) for point in points]


@dataclass(frozen=True)
class ClockState:
    """Where a clock stands.

    Attributes:
        status: open (running), met (fulfilled by the due time) or missed (not fulfilled in time,
            whether fulfilled late or not yet).
        due: when it is due (UTC).
        fulfilled_at: when it was fulfilled, if it was (UTC).
        time_left: from now (open or still unfulfilled) or from the fulfilment to the due time:
            negative when overdue, or by how much a late fulfilment missed it.
        elapsed: from the start to now or to the fulfilment (negative for a fulfilment made before
            the clock started).
    """

    status: ObligationStatus
    due: datetime
    fulfilled_at: datetime | None
    time_left: timedelta
    elapsed: timedelta

    @property
    def overdue(self) -> bool:
        """Past due and not fulfilled."""
        return self.status == "missed" and self.fulfilled_at is None


def clock_status(start: datetime, due: datetime, fulfilled_at: datetime | None, now: datetime) -> ClockState:
    """The state of a clock at ``now``: met when fulfilled at or before its due time, missed when
    fulfilled after it or still unfulfilled past it, open until then.

    Raises:
        ValueError: when a time is naive.
    """
    end = as_utc(due)
    done = as_utc(fulfilled_at) if fulfilled_at is not None else None
    at = done if done is not None else as_utc(now)
    if done is not None:
        status: ObligationStatus = "met" if done <= end else "missed"
    else:
        status = "open" if at <= end else "missed"
    return ClockState(status=status, due=end, fulfilled_at=done, time_left=end - at, elapsed=at - as_utc(start))
