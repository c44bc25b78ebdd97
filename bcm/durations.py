"""Durations as runbooks write them: ``90s``, ``15m``, ``4h``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_PATTERN = r"^[0-9]+(s|m|h|d)$"
_RE = re.compile(DURATION_PATTERN)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class DurationError(ValueError):
    """A string that is not a duration such as ``90s``, ``15m``, ``4h`` or ``2d``."""

    def __init__(self, text: object) -> None:
        self.text = text
        super().__init__(f"{text!r} is not a duration: write a whole number and a unit, such as 90s, 15m, 4h or 2d")


def parse_duration(text: object) -> timedelta:
    """Parse a duration string.

    Args:
        text: the duration as written, e.g. ``"15m"``. A ``timedelta`` is returned unchanged.

    Returns:
        The duration.

    Raises:
        DurationError: when ``text`` is not of the form number + unit (s, m, h, d).
    """
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str):
        raise DurationError(text)
    match = _RE.match(text.strip())
    if match is None:
        raise DurationError(text)
    value = text.strip()
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])


def format_duration(value: timedelta | None) -> str:
    """Format a duration compactly for people: ``2h 30m``, ``45s``; ``-`` for ``None``."""
    if value is None:
        return "-"
    total = round(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return sign + " ".join(parts[:2])


def to_duration_string(value: timedelta) -> str:
    """Write a duration back in runbook form, using the largest unit that divides it."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
