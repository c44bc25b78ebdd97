"""Corrective actions: the rules of the improvement plan, whoever records an action.

An action answers a finding (from an exercise or a real disruption): the corrective action, the
capability element it changes, an owner role from the stakeholders catalog, a start and a due
date. Its status moves forward, ``open → in_progress → done → verified`` (a step may be skipped:
an open action can be closed at once); a done action may be reopened (to open or in progress)
with a note saying why; a verified one, confirmed by an effectiveness review, stays closed. Done
and verified need evidence. An action still open or in progress after its due date is overdue.

Every rule here raises :class:`~bcm.errors.InputError` with one line that says what to do.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import date
from difflib import get_close_matches
from typing import TYPE_CHECKING, Final

from bcm import clock
from bcm.errors import InputError
from bcm.vocabulary import (
    ACTION_STATUSES,
    CAPABILITY_ELEMENTS,
    OPEN_ACTION_STATUSES,
    ActionStatus,
    CapabilityElement,
)

if TYPE_CHECKING:
    from bcm.store.records import CorrectiveActionRecord

__all__ = [
    "CLOSED_STATUSES",
    "DEFAULT_LISTED",
    "action_json",
    "check_changeable",
    "check_dates",
    "check_element",
    "check_move",
    "check_owner",
    "days_overdue",
    "overdue_marker",
    "parse_day",
    "parse_ref",
    "parse_status",
    "summary",
    "today",
]

#: Statuses that close an action; both need evidence.
CLOSED_STATUSES: Final[frozenset[str]] = frozenset({"done", "verified"})

#: What a list shows unless asked: the actions still to be done.
DEFAULT_LISTED: Final[tuple[ActionStatus, ...]] = tuple(s for s in ACTION_STATUSES if s in OPEN_ACTION_STATUSES)

_ORDER: Final[dict[str, int]] = {status: i for i, status in enumerate(ACTION_STATUSES)}
_REF = re.compile(r"^(?:CA-)?([1-9][0-9]*)$", re.IGNORECASE)
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_MOVES = "statuses move open → in_progress → done → verified, and a done action may be reopened with --note"


def today() -> date:
    """The date overdue is judged on: today in UTC."""
    return clock.now().date()


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_ref(text: str) -> int:
    """The number in ``CA-7`` (or ``7``)."""
    found = _REF.match(text.strip())
    if found is None:
        raise InputError(f"{text}: not a corrective action: write CA-7 or 7 (`bcm actions list` shows them)")
    return int(found.group(1))


def parse_day(option: str, text: str) -> date:
    """A calendar date written ``YYYY-MM-DD``."""
    value = text.strip()
    try:
        if _DAY.match(value) is None:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {text}: not a date: write YYYY-MM-DD, e.g. 2026-03-31") from None


def check_dates(start_on: date, due_on: date, *, start_given: bool = False) -> None:
    """The due date is not before the start date (``start_given``: the user can change the start too)."""
    if due_on < start_on:
        also = " (or an earlier --start)" if start_given else ""
        raise InputError(
            f"--due {due_on.isoformat()} is before the start date {start_on.isoformat()}: "
            f"give a due date on or after the start{also}"
        )


def check_owner(role: str, roles: Collection[str], *, where: str) -> str:
    """``role`` is a role id of the stakeholders catalog at ``where``."""
    if role not in roles:
        raise InputError(
            f"--owner {role}: unknown role '{role}'{_did_you_mean(role, roles)}: an owner is a role id from {where}"
        )
    return role


def check_element(element: str) -> CapabilityElement:
    """``element`` is one of HSEEP's capability elements."""
    if element not in CAPABILITY_ELEMENTS:
        raise InputError(
            f"--element {element}: unknown capability element{_did_you_mean(element, CAPABILITY_ELEMENTS)}: "
            f"use one of {', '.join(CAPABILITY_ELEMENTS)}"
        )
    return element


def parse_status(text: str) -> ActionStatus:
    """A status; ``in-progress`` and ``in progress`` are read as ``in_progress``."""
    value = text.strip().lower().replace("-", "_").replace(" ", "_")
    if value not in ACTION_STATUSES:
        raise InputError(
            f"--status {text}: unknown status{_did_you_mean(value, ACTION_STATUSES)}: "
            f"use one of {', '.join(ACTION_STATUSES)}"
        )
    return value


def check_changeable(ref: str, status: str) -> None:
    """Any field of an action may change unless it is verified."""
    if status == "verified":
        raise InputError(
            f"{ref} is verified (an effectiveness review confirmed it) and stays closed: "
            "if the problem is back, add a new action with `bcm actions add`"
        )


def check_move(ref: str, current: str, new: str, *, note: str | None, evidence: str | None) -> None:
    """A status change ``current → new`` the plan allows (nothing to check when they are equal).

    Args:
        ref: the action's reference, for the message.
        note: the note given with the change (reopening needs one).
        evidence: the evidence the action will have after the change (closing needs some).
    """
    if new == current:
        return
    check_changeable(ref, current)
    if _ORDER[new] < _ORDER[current]:
        if current != "done":
            raise InputError(f"{ref} is {current} and cannot go back to {new}: {_MOVES}")
        if not note:
            raise InputError(f"reopening {ref} (done → {new}) needs --note saying why it is not done after all")
    if new == "verified" and current != "done":
        raise InputError(
            f"{ref} is {current}: verifying is the effectiveness review of a done action; "
            f"close it first (`bcm actions close {ref} --evidence TEXT --by WHO`), then `close --verified`"
        )
    if new in CLOSED_STATUSES and not evidence:
        raise InputError(
            f"{ref} cannot be {new} without evidence: give --evidence (what shows it was done), "
            f"or use `bcm actions close {ref} --evidence TEXT --by WHO`"
        )


def days_overdue(status: str, due_on: date, on: date) -> int:
    """Days past ``due_on`` on ``on`` for an action still open or in progress (0 when not overdue)."""
    if status not in OPEN_ACTION_STATUSES:
        return 0
    return max((on - due_on).days, 0)


def overdue_marker(status: str, due_on: date, on: date) -> str:
    """``OVERDUE 3 days`` (``OVERDUE 1 day``) for an overdue action, else an empty string."""
    days = days_overdue(status, due_on, on)
    if days == 0:
        return ""
    return f"OVERDUE {days} day{'s' if days != 1 else ''}"


def summary(statuses: Iterable[str], overdue: int) -> str:
    """``3 open, 1 overdue`` (open counts in-progress ones too), then the closed ones when listed."""
    counts = Counter(statuses)
    still_open = sum(counts[s] for s in OPEN_ACTION_STATUSES)
    parts = [f"{still_open} open", f"{overdue} overdue"]
    parts += [f"{counts[s]} {s}" for s in ACTION_STATUSES if s not in OPEN_ACTION_STATUSES and counts[s]]
    return ", ".join(parts)


def action_json(action: CorrectiveActionRecord, on: date) -> dict[str, object]:
    """An action as the JSON outputs show it: its fields, ``overdue`` and ``days_overdue`` as of ``on``."""
    return {**action.to_json(on), "days_overdue": days_overdue(action.status, action.due_on, on)}
