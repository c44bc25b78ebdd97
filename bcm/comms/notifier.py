"""Stakeholder messages and the Notifier interface.

The engine describes *what* to say (:class:`Message`); a notifier decides where it goes and makes
sure it gets there. :class:`bcm.comms.outbox.OutboxNotifier` is the real one (durable, over Slack
or the local transcript); :class:`RecordingNotifier` keeps messages in memory for tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from bcm.vocabulary import MESSAGE_KINDS

EXERCISE_PREFIX = "[EXERCISE] "

#: Message kinds the engine sends (see the vocabulary).
KINDS = frozenset(MESSAGE_KINDS)


@dataclass(frozen=True)
class Message:
    """One thing to tell people.

    Attributes:
        key: idempotency key: the same key is never delivered twice (a retried step or a resumed
            run sends the same keys).
        run_id: the run it belongs to.
        kind: one of :data:`KINDS`.
        text: the fallback text (exercise messages already carry ``[EXERCISE]``).
        step_id: the step it is about, if any.
        to: role ids it is for (notify, approval_request, reminder).
        exercise: True for exercise runs: everything goes to the exercise channel.
        blocks: Block Kit blocks, if any.
        channel_name: the incident channel to open (open_channel).
        topic: the channel topic (open_channel).
        invite: Slack user ids to invite (open_channel).
        target: for ``decision``: the channel and ts of the message to edit.
        direct: for ``inject``: to each member of the ``to`` roles directly (an inject's ``dm``
            delivery), not to the exercise channel.
    """

    key: str
    run_id: str | None
    kind: str
    text: str
    step_id: str | None = None
    to: tuple[str, ...] = ()
    exercise: bool = False
    blocks: tuple[dict[str, Any], ...] = ()
    channel_name: str | None = None
    topic: str | None = None
    invite: tuple[str, ...] = ()
    target: dict[str, str] | None = None
    direct: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown message kind {self.kind!r} (kinds: {', '.join(sorted(KINDS))})")


class Notifier(Protocol):
    """Delivers messages; implementations must be safe to call from several threads."""

    def send(self, message: Message) -> None:
        """Deliver ``message`` (idempotent by ``message.key``); never raises for a chat outage."""

    def flush(self) -> object:
        """Try again to deliver what could not be delivered earlier (returns a report, if any)."""


def exercise_text(text: str, *, exercise: bool) -> str:
    """Prefix exercise messages so no one mistakes them for a real disruption."""
    return EXERCISE_PREFIX + text if exercise and not text.startswith(EXERCISE_PREFIX) else text


@dataclass
class RecordingNotifier:
    """Keeps every message in memory (for tests); duplicates by key are dropped."""

    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: Message) -> None:
        """Record ``message`` unless one with the same key was recorded."""
        with self._lock:
            if all(m.key != message.key for m in self.messages):
                self.messages.append(message)

    def flush(self) -> None:
        """Nothing is ever pending in memory."""
