"""Due-time arithmetic, reminder times and clock states on plain calendars, computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bcm.obligations import Period, PeriodError, clock_status, due_at, parse_period, reminder_times
from bcm.obligations.due import Reminder, add_months

BRUSSELS = ZoneInfo("Europe/Brussels")
NO_HOLIDAYS: frozenset[date] = frozenset()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("text", "period", "written"),
    [
        ("72 hours", Period(72, "hours"), "72 hours"),
        ("1 hour", Period(1, "hours"), "1 hour"),
        ("15 minutes", Period(15, "minutes"), "15 minutes"),
        ("15 days", Period(15, "days"), "15 days"),
        ("4 business days", Period(4, "business_days"), "4 business days"),
        ("1 business day", Period(1, "business_days"), "1 business day"),
        ("1 month", Period(1, "months"), "1 month"),
        ("  3   months ", Period(3, "months"), "3 months"),
    ],
)
def test_periods_read_as_the_texts_write_them(text: str, period: Period, written: str) -> None:
    """A whole number and a unit, singular or plural, extra spaces ignored; written back tidily."""
    assert parse_period(text) == period
    assert str(period) == written


@pytest.mark.parametrize("text", ["72h", "0 hours", "three days", "4 working days", "1.5 hours", 72])
def test_anything_else_is_not_a_period(text: object) -> None:
    """Durations in the runbook style, zero, words and numbers alone are refused with examples."""
    with pytest.raises(PeriodError) as caught:
        parse_period(text)
    assert str(caught.value) == (
        f"{text!r} is not a period: write a whole number and a unit, such as "
        "72 hours, 15 days, 4 business days, 1 month or 15 minutes"
    )


# --------------------------------------------------------------------------- due_at


def test_hours_are_exact_elapsed_time_whatever_the_zone() -> None:
    """Saturday 28 March 2026 23:00 CET (22:00Z) + 4 hours = 02:00Z, which is 04:00 CEST: the wall
    clock shows five hours later because it jumped an hour at 02:00 CET."""
    found = due_at(utc(2026, 3, 28, 22), Period(4, "hours"), holidays=NO_HOLIDAYS, tz=BRUSSELS)
    assert found == utc(2026, 3, 29, 2)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-03-29T04:00:00+02:00"


def test_days_keep_the_wall_clock_time_across_the_spring_change() -> None:
    """Saturday 28 March 2026 09:00 CET (08:00Z) + 1 day = Sunday 09:00 CEST (07:00Z): 23 real hours."""
    found = due_at(utc(2026, 3, 28, 8), Period(1, "days"), holidays=NO_HOLIDAYS, tz=BRUSSELS)
    assert found == utc(2026, 3, 29, 7)


def test_days_landing_in_the_repeated_hour_take_the_first_of_the_two() -> None:
    """Saturday 24 October 2026 02:30 CEST (00:30Z) + 1 day: Sunday 02:30 happens twice in Brussels
    (CEST, then CET); the first is 02:30 CEST, 00:30Z, exactly 24 real hours later."""
    found = due_at(utc(2026, 10, 24, 0, 30), Period(1, "days"), holidays=NO_HOLIDAYS, tz=BRUSSELS)
    assert found == utc(2026, 10, 25, 0, 30)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-10-25T02:30:00+02:00"


def test_business_days_skip_the_weekend_and_the_holidays_given() -> None:
    """Thursday 4 June 2026 10:00 CEST (08:00Z), Friday 5 June a holiday: Monday 8 is business day
    1, Tuesday 9 is 2: 10:00 CEST on Tuesday, 08:00Z."""
    found = due_at(utc(2026, 6, 4, 8), Period(2, "business_days"), holidays={date(2026, 6, 5)}, tz=BRUSSELS)
    assert found == utc(2026, 6, 9, 8)


def test_business_days_never_count_the_start_day() -> None:
    """A start on Saturday 6 June 2026 10:00 CEST: Monday 8 is business day 1, so one business day
    is due Monday 10:00 CEST (08:00Z); from Monday 8 itself it is Tuesday 9."""
    one = Period(1, "business_days")
    assert due_at(utc(2026, 6, 6, 8), one, holidays=NO_HOLIDAYS, tz=BRUSSELS) == utc(2026, 6, 8, 8)
    assert due_at(utc(2026, 6, 8, 8), one, holidays=NO_HOLIDAYS, tz=BRUSSELS) == utc(2026, 6, 9, 8)


def test_business_days_follow_the_jurisdictions_weekend() -> None:
    """With a Friday-Saturday weekend, Thursday 4 June 2026 + 1 business day is Sunday 7 June."""
    found = due_at(utc(2026, 6, 4, 8), Period(1, "business_days"), holidays=NO_HOLIDAYS, tz=BRUSSELS, weekend={4, 5})
    assert found == utc(2026, 6, 7, 8)


def test_a_seven_day_weekend_is_refused() -> None:
    """No business day would ever come: the arithmetic says so rather than looping."""
    with pytest.raises(ValueError) as caught:
        due_at(utc(2026, 6, 4, 8), Period(1, "business_days"), holidays=NO_HOLIDAYS, tz=BRUSSELS, weekend=range(7))
    assert str(caught.value) == "a weekend of seven days leaves no business days"


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # not a leap year: the last day of February
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # a leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),  # April has 30 days
        (date(2026, 1, 30), 1, date(2026, 2, 28)),
        (date(2026, 2, 28), 1, date(2026, 3, 28)),  # the same day, not the month's end
        (date(2026, 12, 15), 2, date(2027, 2, 15)),  # across the year
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 11, 30), 1, date(2026, 12, 30)),
    ],
)
def test_months_keep_the_day_or_clamp_to_the_months_end(start: date, months: int, expected: date) -> None:
    """One month from 31 January is the end of February; other days stay the same day."""
    assert add_months(start, months) == expected


def test_one_month_from_31_january_keeps_the_wall_clock_time() -> None:
    """31 January 2028 18:45 CET (17:45Z) + 1 month = 29 February 2028 (a leap year) 18:45 CET."""
    found = due_at(utc(2028, 1, 31, 17, 45), Period(1, "months"), holidays=NO_HOLIDAYS, tz=BRUSSELS)
    assert found == utc(2028, 2, 29, 17, 45)


def test_a_start_without_an_offset_is_refused() -> None:
    """A naive time is ambiguous: the arithmetic refuses it rather than guess a zone."""
    with pytest.raises(ValueError) as caught:
        due_at(datetime(2026, 6, 4, 8), Period(1, "days"), holidays=NO_HOLIDAYS, tz=BRUSSELS)
    assert str(caught.value) == "time 2026-06-04T08:00:00 has no UTC offset"


# --------------------------------------------------------------------------- reminders


def test_reminders_are_shares_of_the_real_time_to_the_due_time() -> None:
    """72 hours from 27 March 09:00Z: 50 % is +36 h (28 March 21:00Z), 75 % +54 h (29 March
    15:00Z), 90 % +64 h 48 min (30 March 01:48Z), due +72 h (30 March 09:00Z)."""
    found = reminder_times(utc(2026, 3, 27, 9), utc(2026, 3, 30, 9), (50, 75, 90, 100))
    assert found == [
        Reminder(50, utc(2026, 3, 28, 21)),
        Reminder(75, utc(2026, 3, 29, 15)),
        Reminder(90, utc(2026, 3, 30, 1, 48)),
        Reminder(100, utc(2026, 3, 30, 9)),
    ]
    assert [r.label for r in found] == ["50%", "75%", "90%", "due"]


def test_reminders_of_a_short_clock_keep_the_seconds() -> None:
    """15 minutes from 00:50Z: half way is 00:57:30Z, due 01:05Z."""
    found = reminder_times(utc(2026, 10, 25, 0, 50), utc(2026, 10, 25, 1, 5), (50, 100))
    assert found == [
        Reminder(50, datetime(2026, 10, 25, 0, 57, 30, tzinfo=UTC)),
        Reminder(100, utc(2026, 10, 25, 1, 5)),
    ]


def test_a_clock_due_before_it_starts_only_reminds_at_due() -> None:
    """DORA initial classified 30 h after awareness: due (aware + 24 h) is already past at the start,
    so there is no time to remind in; only the due point is kept, and none when it is not asked for."""
    start, due = utc(2026, 6, 2, 14), utc(2026, 6, 2, 8)
    assert reminder_times(start, due, (50, 75, 90, 100)) == [Reminder(100, due)]
    assert reminder_times(start, due, (50, 90)) == []


# --------------------------------------------------------------------------- clock states

START = utc(2026, 3, 27, 9)
DUE = utc(2026, 3, 30, 9)


def test_an_unfulfilled_clock_before_its_due_time_is_open() -> None:
    """60 hours into a 72-hour clock: open, 12 hours left, 60 elapsed."""
    state = clock_status(START, DUE, None, utc(2026, 3, 29, 21))
    assert (state.status, state.time_left, state.elapsed, state.overdue) == (
        "open",
        timedelta(hours=12),
        timedelta(hours=60),
        False,
    )


def test_a_clock_at_its_due_instant_is_still_open() -> None:
    """The due time itself is within the period: open with no time left."""
    state = clock_status(START, DUE, None, DUE)
    assert (state.status, state.time_left) == ("open", timedelta(0))


def test_a_clock_fulfilled_at_its_due_time_is_met() -> None:
    """Fulfilled exactly at due: met, with no margin."""
    state = clock_status(START, DUE, DUE, utc(2026, 4, 2))
    assert (state.status, state.time_left, state.fulfilled_at) == ("met", timedelta(0), DUE)


def test_a_clock_fulfilled_early_is_met_with_its_margin() -> None:
    """Fulfilled after 20 hours: met with 52 hours to spare, whatever the time now."""
    state = clock_status(START, DUE, utc(2026, 3, 28, 5), utc(2026, 5, 1))
    assert (state.status, state.time_left, state.elapsed) == ("met", timedelta(hours=52), timedelta(hours=20))


def test_a_clock_fulfilled_late_is_missed_by_how_much() -> None:
    """Fulfilled two hours after due: missed, time left -2 h, not overdue (it was done)."""
    state = clock_status(START, DUE, utc(2026, 3, 30, 11), utc(2026, 3, 31))
    assert (state.status, state.time_left, state.overdue) == ("missed", timedelta(hours=-2), False)


def test_an_unfulfilled_clock_past_its_due_time_is_missed_and_overdue() -> None:
    """A minute past due with no fulfilment: missed, overdue, time left -1 min."""
    state = clock_status(START, DUE, None, utc(2026, 3, 30, 9, 1))
    assert (state.status, state.time_left, state.overdue) == ("missed", timedelta(minutes=-1), True)


def test_clock_times_come_back_in_utc() -> None:
    """Times given with any offset are compared as instants and returned in UTC."""
    state = clock_status(START, DUE.astimezone(BRUSSELS), DUE.astimezone(BRUSSELS), DUE)
    assert (state.due.tzinfo, state.fulfilled_at, state.status) == (UTC, DUE, "met")
