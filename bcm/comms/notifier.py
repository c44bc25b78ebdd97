"""Sending stakeholder messages: the Notifier interface and its local implementations.

The transcript (``$BCM_HOME/transcript.jsonl``) is the default when no Slack token is set, so an
embedded demo needs no Slack; the recorder keeps messages in memory for tests.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from bcm import clock
from bcm.clock import Clock

EXERCISE_PREFIX = "[EXERCISE] "


@dataclass(frozen=True)
class Message:
    """One stakeholder message.

    Attributes:
        key: idempotency key (run, step, purpose): the same key is never delivered twice.
        run_id: the run it belongs to, if any.
        step_id: the step that sent it, if any.
        kind: ``notify``, ``approval_request``, ``reminder`` or ``status``.
        to: the role ids it is for.
        text: the rendered text (exercise messages already carry the prefix).
        exercise: True for exercise runs.
    """

    key: str
    run_id: str | None
    step_id: str | None
    kind: str
    to: tuple[str, ...]
    text: str
    exercise: bool = False


class Notifier(Protocol):
    """Delivers messages; implementations must be safe to call from several threads."""

    def send(self, message: Message) -> None:
        """Deliver ``message`` (idempotent by ``message.key``)."""


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


class TranscriptNotifier:
    """Appends messages as JSON lines to a local transcript file."""

    def __init__(self, path: Path, *, now: Clock = clock.now) -> None:
        self.path = path
        self._now = now
        self._lock = threading.Lock()

    def _keys(self) -> set[str]:
        if not self.path.exists():
            return set()
        keys = set()
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue
        return keys

    def send(self, message: Message) -> None:
        """Append ``message`` unless its key is already in the transcript."""
        with self._lock:
            if message.key in self._keys():
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {"at": self._now().isoformat(), **asdict(message)}
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def read(self) -> list[dict[str, object]]:
        """Every message in the transcript, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
