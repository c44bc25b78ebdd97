"""The names ``bcm.obligations.models`` had before the catalog's models moved to the spec.

Runbooks name obligations (``obligations:``, a step's ``fulfils:``), so runbook validation needs
them: the models are in :mod:`bcm.spec.obligations`, below this package. New code imports them
from there, or from :mod:`bcm.obligations`.
"""

from bcm.spec.obligations import (
    DEFAULT_REMINDERS,
    DUE,
    ELAPSED_UNITS,
    PERIOD_EXAMPLES,
    Bound,
    Fulfilment,
    Jurisdiction,
    JurisdictionCode,
    Obligation,
    ObligationId,
    Obligations,
    Period,
    PeriodError,
    PeriodText,
    PeriodUnit,
    ReminderPoint,
    Source,
    Start,
    format_point,
    parse_period,
    parse_point,
)

__all__ = [
    "DEFAULT_REMINDERS",
    "DUE",
    "ELAPSED_UNITS",
    "PERIOD_EXAMPLES",
    "Bound",
    "Fulfilment",
    "Jurisdiction",
    "JurisdictionCode",
    "Obligation",
    "ObligationId",
    "Obligations",
    "Period",
    "PeriodError",
    "PeriodText",
    "PeriodUnit",
    "ReminderPoint",
    "Source",
    "Start",
    "format_point",
    "parse_period",
    "parse_point",
]
