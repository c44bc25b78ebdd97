"""The durable outbox: every message is stored before it is sent, delivered in order, once.

``send`` turns a :class:`Message` into one or more operations (open a channel, post, update),
stores each under a unique key and then flushes. ``flush`` delivers what is undelivered, oldest
first: a transient failure (rate limit past the retries, Slack down) stops the flush so later
messages never overtake earlier ones; a permanent failure (invalid_auth, channel_not_found, ...)
marks that message failed, shows in ``bcm status`` and does not block the rest. A message is
claimed in the store before it is sent, so two processes flushing at once never send it twice.

Bounded delivery (see :class:`~bcm.comms.transport.DeliveryPolicy`): each call has a short timeout
and few retries, and a flush starts no new delivery once its time budget is spent. After a
transient failure the notifier rests for a cooldown (30s, doubling while Slack keeps failing, or
the Retry-After Slack asked for): ``send`` then only stores messages, so a run with Slack down pays
for one failed delivery per cooldown, not one per message. ``flush`` (the end of a run,
`bcm outbox flush`, the outbox-flush deployment) always tries. The first failure is logged once,
as a warning that messages are queued.

Board edits: an edit queued behind a later edit of the same message is never sent (the later one
overwrites it at once): it is recorded ``{"superseded": True, "by": KEY}`` and counted as
superseded, not delivered (:func:`message_counts`). An edit waits while the message it edits is
undelivered, and fails when that message failed for good.

Routing:
- exercise runs: everything goes to the exercise channel, never to a stakeholder channel; an
  exercise inject delivered ``dm`` goes to each member of its recipient role directly;
- real runs: the status board, step updates (in the board's thread) and approval requests go to
  the run's incident channel (or the incidents channel when the runbook opens none, or when it
  could not be opened); notify steps go to each role's channel, or to its members directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bcm.comms.notifier import Message
from bcm.comms.transport import RUN_POLICY, DeliveryPolicy, Transport
from bcm.durations import format_duration
from bcm.errors import DeliveryError
from bcm.spec.loader import Catalog
from bcm.store import OutboxRecord, Store

log = logging.getLogger(__name__)

DEFAULT_EXERCISE_CHANNEL = "bcm-exercises"
DEFAULT_INCIDENTS_CHANNEL = "bcm-incidents"
_FLUSH_LOCK = threading.Lock()  # one flush at a time in a process; the store claim covers others


class _WaitingForEarlier(DeliveryError):
    """The message depends on an earlier one another process is still sending: the flush stops
    there to keep the order, but the chat service did nothing wrong (no cooldown)."""

    def __init__(self, method: str, key: str) -> None:
        super().__init__(method, f"the message it belongs to ({key}) is not sent yet", permanent=False)


@dataclass(frozen=True)
class FlushReport:
    """What a flush did.

    Attributes:
        delivered: messages the chat service took in this flush.
        failed: messages that failed for good in this flush.
        pending: messages still undelivered after it.
        error: why it stopped early (a transient failure, or its time budget), if it did.
        superseded: board edits not sent because a later edit of the same message replaces them.
    """

    delivered: int
    failed: int
    pending: int
    error: str | None = None
    superseded: int = 0


def is_superseded(record: OutboxRecord) -> bool:
    """Whether ``record`` is an edit that was never sent because a later edit replaced it."""
    return record.status == "delivered" and bool((record.result or {}).get("superseded"))


def message_counts(records: Iterable[OutboxRecord]) -> dict[str, int]:
    """How many of ``records`` are delivered, superseded (never sent: see :func:`is_superseded`),
    pending (including being sent) and failed for good."""
    counts = {"delivered": 0, "superseded": 0, "pending": 0, "failed": 0}
    for record in records:
        if is_superseded(record):
            counts["superseded"] += 1
        elif record.status == "delivered":
            counts["delivered"] += 1
        elif record.status == "failed":
            counts["failed"] += 1
        else:
            counts["pending"] += 1
    return counts


class OutboxNotifier:
    """A Notifier that stores every message in the outbox and delivers it through a transport."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        catalog: Catalog | None = None,
        exercise_channel: str = DEFAULT_EXERCISE_CHANNEL,
        incidents_channel: str = DEFAULT_INCIDENTS_CHANNEL,
        policy: DeliveryPolicy = RUN_POLICY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.transport = transport
        self.catalog = catalog
        self.exercise_channel = exercise_channel
        self.incidents_channel = incidents_channel
        self.policy = policy
        self._monotonic = monotonic
        self._state = threading.Lock()
        self._rest_until: float | None = None  # after a transient failure: sends only queue until then
        self._failures = 0  # transient failures in a row
        self._warned = False

    # ------------------------------------------------------------------ routing

    def send(self, message: Message) -> None:
        """Store the message's operations in the outbox, then try to deliver everything pending,
        unless the chat service failed less than a cooldown ago (then the messages just wait)."""
        for key, payload in self._operations(message):
            self.store.enqueue_message(key, kind=message.kind, payload=payload, run_id=message.run_id)
        if not self.resting():
            self._flush(probe=False)

    def _run_channel(self, message: Message) -> dict[str, str]:
        if message.exercise:
            return {"name": self.exercise_channel}
        return {"ref": "run", "fallback": self.incidents_channel}

    def _operations(self, message: Message) -> list[tuple[str, dict[str, Any]]]:
        base = {"text": message.text, "blocks": list(message.blocks)}
        board_key = f"{message.run_id}/board"
        kind = message.kind
        if kind == "open_channel":
            if message.exercise:
                return []  # exercises use the exercise channel; no channel is opened
            return [
                (
                    message.key,
                    {
                        "op": "open_channel",
                        "name": message.channel_name,
                        "topic": message.topic,
                        "invite": list(message.invite),
                        "fallback": self.incidents_channel,
                    },
                )
            ]
        if kind == "board":
            return [(message.key, {"op": "post", "channel": self._run_channel(message), "pin": True, **base})]
        if kind in ("board_update",):
            return [(message.key, {"op": "update", "target": {"key": board_key}, **base})]
        if kind == "decision":
            return [(message.key, {"op": "update", "target": message.target or {}, **base})]
        if kind == "thread":
            channel = self._run_channel(message)
            return [(message.key, {"op": "post", "channel": channel, "thread": {"key": board_key}, **base})]
        if kind == "approval_request":
            return [(message.key, {"op": "post", "channel": self._run_channel(message), **base})]
        if kind in ("notify", "reminder"):
            if message.exercise:
                return [(message.key, {"op": "post", "channel": {"name": self.exercise_channel}, **base})]
            return [
                (f"{message.key}/{i}", {"op": "post", "channel": dest, **base})
                for i, dest in enumerate(self._destinations(message.to))
            ]
        if kind == "inject":
            return self._inject_operations(message, base)
        raise ValueError(f"unknown message kind {kind!r}")

    def _inject_operations(self, message: Message, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """An exercise inject goes only to exercise destinations: the exercise channel, or (``dm``) each
        member of the recipient role directly; a role with no Slack user gets it in the exercise channel."""
        users: list[str] = []
        for role_id in message.to if message.direct else ():
            role = self.catalog.roles.get(role_id) if self.catalog else None
            for person in role.members if role else []:
                if person.slack_user and person.slack_user not in users:
                    users.append(person.slack_user)
        if not users:
            return [(message.key, {"op": "post", "channel": {"name": self.exercise_channel}, **base})]
        return [(f"{message.key}/{i}", {"op": "post", "channel": {"id": user}, **base}) for i, user in enumerate(users)]

    def _destinations(self, roles: tuple[str, ...]) -> list[dict[str, str]]:
        """A role's channel, or each of its members directly; the incidents channel otherwise."""
        found: list[dict[str, str]] = []
        for role_id in roles:
            role = self.catalog.roles.get(role_id) if self.catalog else None
            if role is not None and role.slack_channel:
                found.append({"name": role.slack_channel})
            elif role is not None and any(p.slack_user for p in role.members):
                found += [{"id": p.slack_user} for p in role.members if p.slack_user]
            else:
                found.append({"name": self.incidents_channel})
        unique: list[dict[str, str]] = []
        for dest in found:
            if dest not in unique:
                unique.append(dest)
        return unique

    # ------------------------------------------------------------------ delivery

    def resting(self) -> bool:
        """True while sends only queue: the chat service failed transiently less than a cooldown ago."""
        with self._state:
            return self._rest_until is not None and self._monotonic() < self._rest_until

    def flush(self) -> FlushReport:
        """Deliver undelivered messages in order; stop at the first transient failure or when the
        policy's time budget is spent. Tries even while :meth:`resting`."""
        report = self._flush(probe=True)
        assert report is not None
        return report

    def _flush(self, *, probe: bool) -> FlushReport | None:
        delivered = failed = superseded = 0
        with _FLUSH_LOCK:
            if not probe and self.resting():  # another thread's delivery just failed
                return None
            started = self._monotonic()
            queue = self.store.list_messages(status="undelivered")
            last_update = {
                str(m.payload.get("target", {}).get("key")): m
                for m in queue
                if m.payload.get("op") == "update" and m.payload.get("target", {}).get("key")
            }
            for record in queue:
                spent = self._monotonic() - started
                if delivered + failed > 0 and spent >= self.policy.budget_s:
                    error = f"stopped after {_seconds(spent)} (this flush's time budget): the rest waits"
                    return self._report(delivered, failed, superseded, error)
                if not self.store.claim_message(record.key):
                    continue
                target_key = (
                    record.payload.get("target", {}).get("key") if record.payload.get("op") == "update" else None
                )
                later = last_update.get(str(target_key)) if target_key else None
                if later is not None and later.id > record.id:
                    # A later edit of the same message is queued: this one would be overwritten at once.
                    self.store.mark_message_delivered(record.key, result={"superseded": True, "by": later.key})
                    superseded += 1
                    continue
                try:
                    result = self._deliver(record)
                except DeliveryError as exc:
                    self.store.mark_message_attempt(record.key, error=str(exc), permanent=exc.permanent)
                    if exc.permanent:
                        failed += 1
                        continue
                    if not isinstance(exc, _WaitingForEarlier):
                        self._rest(exc)
                    return self._report(delivered, failed, superseded, str(exc))
                self.store.mark_message_delivered(record.key, result=result)
                delivered += 1
                self._recovered()
            pending = len(self.store.list_messages(status="undelivered"))  # others: held by another process
        return FlushReport(delivered, failed, pending, superseded=superseded)

    def _report(self, delivered: int, failed: int, superseded: int, error: str) -> FlushReport:
        pending = len(self.store.list_messages(status="undelivered"))
        return FlushReport(delivered, failed, pending, error=error, superseded=superseded)

    def _rest(self, exc: DeliveryError) -> None:
        """After a transient failure: sends only queue for the cooldown (doubled for each failure in a
        row, up to the policy's longest) or for the Retry-After Slack asked."""
        with self._state:
            self._failures += 1
            backoff = self.policy.cooldown_s * 2 ** (self._failures - 1)
            wait = exc.retry_after_s if exc.retry_after_s is not None else min(backoff, self.policy.max_cooldown_s)
            self._rest_until = self._monotonic() + wait
            first, self._warned = not self._warned, True
        if first and self.policy.warn:
            log.warning(
                "Slack is unreachable (%s): messages are queued in the outbox, in order, and delivered when it "
                "answers again (by a later message, the flush at the end of the run, or `bcm outbox flush`); "
                "next try in %s",
                exc,
                _seconds(wait),
            )
        else:
            log.debug("Slack still unreachable (%s); next try in %s", exc, _seconds(wait))

    def _recovered(self) -> None:
        with self._state:
            failures, self._failures, self._rest_until = self._failures, 0, None
        if failures:
            log.info("Slack answers again: delivering the queued messages")

    def _deliver(self, record: OutboxRecord) -> dict[str, Any]:
        payload = record.payload
        op = payload.get("op")
        if op == "open_channel":
            return self._open_channel(payload)
        if op == "post":
            return self._post(record, payload)
        if op == "update":
            return self._update(payload)
        raise DeliveryError("outbox", f"unknown operation {op!r} in message {record.key}", permanent=True)

    def _open_channel(self, payload: dict[str, Any]) -> dict[str, Any]:
        name = str(payload["name"])
        answer: dict[str, Any] = {}
        for attempt in range(1, 20):
            candidate = name if attempt == 1 else f"{name}-{attempt}"
            try:
                answer = self.transport.call("conversations.create", name=candidate)
                break
            except DeliveryError as exc:
                if exc.error != "name_taken":
                    raise
        else:
            raise DeliveryError("conversations.create", f"every name from {name} to {name}-19 is taken", permanent=True)
        channel = answer["channel"]["id"]
        result: dict[str, Any] = {"channel": channel, "name": answer["channel"].get("name", name)}
        # The channel exists now: trying the whole operation again would open a second one. A topic
        # or invitations that did not go through are recorded; people can join by themselves.
        if payload.get("topic"):
            try:
                self.transport.call("conversations.setTopic", channel=channel, topic=payload["topic"])
            except DeliveryError as exc:
                result["topic_error"] = exc.error
        if payload.get("invite"):
            try:
                self.transport.call("conversations.invite", channel=channel, users=",".join(payload["invite"]))
            except DeliveryError as exc:
                result["invite_error"] = exc.error
        return result

    def _channel(self, ref: dict[str, str], run_id: str | None) -> str:
        if "id" in ref:
            return ref["id"]
        if "name" in ref:
            return ref["name"].lstrip("#")
        opened = self.store.get_message(f"{run_id}/channel") if run_id else None
        if opened is not None and opened.status == "delivered" and opened.result:
            return str(opened.result["channel"])
        # No incident channel (the runbook opens none, or it could not be opened): the fallback.
        return ref.get("fallback", self.incidents_channel).lstrip("#")

    def _post(self, record: OutboxRecord, payload: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(payload["channel"], record.run_id)
        params: dict[str, Any] = {"channel": channel, "text": payload["text"]}
        if payload.get("blocks"):
            params["blocks"] = payload["blocks"]
        thread = payload.get("thread")
        if thread:
            board = self.store.get_message(thread["key"])
            if board is not None and board.status in ("pending", "sending"):
                # Being sent by another process: wait for it rather than post outside the thread.
                raise _WaitingForEarlier("chat.postMessage", board.key)
            if board is not None and board.status == "delivered" and board.result and "ts" in board.result:
                params["channel"] = board.result["channel"]
                params["thread_ts"] = board.result["ts"]
        answer = self.transport.call("chat.postMessage", **params)
        result = {"channel": answer.get("channel", params["channel"]), "ts": answer.get("ts")}
        if payload.get("pin"):
            # The message is posted: trying again would post it twice. A missing pin is recorded.
            try:
                self.transport.call("pins.add", channel=result["channel"], timestamp=result["ts"])
            except DeliveryError as exc:
                result["pin_error"] = exc.error
        return result

    def _update(self, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("target") or {}
        if "key" in target:
            board = self.store.get_message(target["key"])
            if board is None:
                raise DeliveryError(
                    "chat.update", f"the message to edit ({target['key']}) was never queued", permanent=True
                )
            if board.status in ("pending", "sending"):
                raise _WaitingForEarlier("chat.update", board.key)
            if board.status != "delivered" or not board.result or "ts" not in board.result:
                raise DeliveryError(
                    "chat.update",
                    f"the message to edit ({board.key}) was not delivered: {board.last_error or board.status}",
                    permanent=True,
                )
            channel, ts = board.result["channel"], board.result["ts"]
        else:
            channel, ts = target.get("channel"), target.get("ts")
        params: dict[str, Any] = {"channel": channel, "ts": ts, "text": payload["text"]}
        if payload.get("blocks"):
            params["blocks"] = payload["blocks"]
        answer = self.transport.call("chat.update", **params)
        return {"channel": answer.get("channel", channel), "ts": answer.get("ts", ts)}


def _seconds(seconds: float) -> str:
    """Seconds for a log line or a report: ``0.4s`` under ten seconds, else ``30s``, ``1m``, ``2m 5s``."""
    return f"{seconds:.1f}s" if seconds < 10 else format_duration(timedelta(seconds=seconds))
