"""Deadline clocks: regulatory and contractual obligations that start, count down and are met or missed.

The catalog's format and its checks are part of the runbook format (runbooks name obligations):
:mod:`bcm.spec.obligations` (the models) and :mod:`bcm.spec.obligation_catalog` (``obligations.yaml``
read with located problems), re-exported here. This package holds the clocks: ``catalog`` (the
catalog with each jurisdiction's calendar and due times from a run's milestones), ``due`` (due
times in a calendar, reminder times, the state of a clock). Pure domain: no store, engine or Slack.
"""

from bcm.obligations.catalog import OBLIGATIONS_FILE, ObligationCatalog, load_obligations, parse_obligations
from bcm.obligations.due import Calendar, ClockState, Reminder, clock_due, clock_status, due_at, reminder_times
from bcm.spec.obligations import Obligation, Obligations, Period, PeriodError, parse_period

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
