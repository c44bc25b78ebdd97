"""Transports carry outbox operations to a chat service: Slack, or the local transcript.

How hard a delivery tries is a :class:`DeliveryPolicy`: :data:`RUN_POLICY` inside a run (a short
timeout, one retry, then the message waits in the outbox so the run is not held up by Slack) and
:data:`FLUSH_POLICY` for `bcm outbox flush` (patient, still bounded).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bcm import clock
from bcm.clock import Clock


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard a delivery tries before its message is left waiting in the outbox.

    Attributes:
        timeout_s: seconds one HTTP call may take (to connect, then for each read).
        retries: further attempts of a call after a connection error or an HTTP 5xx answer.
        backoff_s: the wait before the first of those retries; it doubles for each next one.
        max_retry_after_s: a rate limit asking to wait at most this long is waited out; a longer
            one leaves the message queued.
        cooldown_s: after a transient failure, ``send`` only queues messages for this long (or
            for the Retry-After asked) before it tries the chat service again; ``flush`` always tries.
            Each further failure in a row doubles it, up to ``max_cooldown_s``.
        max_cooldown_s: the longest cooldown.
        budget_s: a flush starts no new delivery once it has run this long (it always makes one).
        warn: log one warning when the chat service first fails (inside a run, where nobody reads
            a flush report); `bcm outbox flush` prints its report instead.
    """

    timeout_s: int
    retries: int
    backoff_s: float
    max_retry_after_s: float
    cooldown_s: float
    max_cooldown_s: float
    budget_s: float
    warn: bool


#: Inside a run (and the Slack app): at most two HTTP attempts per Slack call, at most one delivery per
#: cooldown (30s, then 1m, 2m, 4m, 5m while Slack keeps failing) from sends; what is left is
#: delivered by a later send, the flush at the end of the run, `bcm outbox flush` or the
#: outbox-flush deployment.
RUN_POLICY = DeliveryPolicy(
    timeout_s=5,
    retries=1,
    backoff_s=0.25,
    max_retry_after_s=3,
    cooldown_s=30,
    max_cooldown_s=300,
    budget_s=15,
    warn=True,
)
#: `bcm outbox flush`: patient with each call, but a flush still ends.
FLUSH_POLICY = DeliveryPolicy(
    timeout_s=10,
    retries=3,
    backoff_s=0.5,
    max_retry_after_s=60,
    cooldown_s=0,
    max_cooldown_s=0,
    budget_s=300,
    warn=False,
)


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
