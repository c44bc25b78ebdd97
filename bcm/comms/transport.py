"""Transports carry outbox operations to a chat service: Slack, or the local transcript."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any, Protocol

from bcm import clock
from bcm.clock import Clock
from bcm.spec.problems import BcmError


class DeliveryError(BcmError):
    """A call the chat service did not take; ``permanent`` when retrying cannot help."""

    def __init__(self, method: str, error: str, *, permanent: bool) -> None:
        self.method = method
        self.error = error
        self.permanent = permanent
        super().__init__(f"{method}: {error}")


class Transport(Protocol):
    """Calls a Slack-Web-API-shaped method and returns its answer, or raises DeliveryError."""

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method``."""


class TranscriptTransport:
    """Writes every call as a JSON line to the transcript and answers like Slack would.

    The default when no Slack token is set: the embedded demo and exercises need no Slack, and
    the transcript still shows the channel, the status board and its thread.
    """

    def __init__(self, path: Path, *, now: Clock = clock.now) -> None:
        self.path = path
        self._now = now
        self._lock = threading.Lock()
        self._ts = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Append the call to the transcript; return ids shaped like Slack's."""
        with self._lock:
            at = self._now()
            answer: dict[str, Any] = {"ok": True}
            if method == "conversations.create":
                answer["channel"] = {"id": f"transcript:{params['name']}", "name": params["name"]}
            elif method in ("chat.postMessage", "chat.update"):
                answer["channel"] = params.get("channel")
                answer["ts"] = params.get("ts") or f"{at.timestamp():.6f}-{next(self._ts)}"
            record = {"at": at.isoformat(), "method": method, **params, "answer": answer}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            return answer

    def read(self) -> list[dict[str, Any]]:
        """Every call in the transcript, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
