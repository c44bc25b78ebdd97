"""Deadline clocks: regulatory and contractual obligations that start, count down and are met or missed.

Modules: ``models`` (the catalog's format), ``catalog`` (``obligations.yaml`` read with located
problems and checked as a whole), ``due`` (due times in a jurisdiction's calendar, reminder times,
the state of a clock). Pure domain: no store, engine or Slack here.
"""

from bcm.obligations.catalog import OBLIGATIONS_FILE, ObligationCatalog, load_obligations, parse_obligations
from bcm.obligations.due import Calendar, ClockState, Reminder, clock_due, clock_status, due_at, reminder_times
from bcm.obligations.models import Obligation, Obligations, Period, PeriodError, parse_period

__all__ = [
    "OBLIGATIONS_FILE",
    "Calendar",
    "ClockState",
    "Obligation",
    "ObligationCatalog",
    "Obligations",
    "Period",
    "PeriodError",
    "Reminder",
    "clock_due",
    "clock_status",
    "due_at",
    "load_obligations",
    "parse_obligations",
    "parse_period",
    "reminder_times",
]
