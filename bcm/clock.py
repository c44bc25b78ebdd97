"""The one clock: every timestamp bcm records comes from here, timezone-aware and in UTC.

Tests inject a fixed clock (any zero-argument callable returning an aware datetime) or freeze
time with freezegun; nothing else in bcm calls ``datetime.now()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        ValueError: when ``value`` is naive (a time without an offset is ambiguous).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"time {value.isoformat()} has no UTC offset")
    return value.astimezone(UTC)
