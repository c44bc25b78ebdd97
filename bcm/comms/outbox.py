"""The durable outbox: every message is stored before it is sent, delivered in order, once.

``send`` turns a :class:`Message` into one or more operations (open a channel, post, update),
stores each under a unique key and then flushes. ``flush`` delivers what is undelivered, oldest
first: a transient failure (rate limit past the retries, Slack down) stops the flush so later
messages never overtake earlier ones; a permanent failure (invalid_auth, channel_not_found, ...)
marks that message failed, shows in ``bcm status`` and does not block the rest. A message is
claimed in the store before it is sent, so two processes flushing at once never send it twice.

Routing:
- exercise runs: everything goes to the exercise channel, never to a stakeholder channel;
- real runs: the status board, step updates (in the board's thread) and approval requests go to
  the run's incident channel (or the incidents channel when the runbook opens none, or when it
  could not be opened); notify steps go to each role's channel, or to its members directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from bcm.comms.notifier import Message
from bcm.comms.transport import DeliveryError, Transport
from bcm.spec.loader import Catalog
from bcm.store import OutboxRecord, Store

DEFAULT_EXERCISE_CHANNEL = "bcm-exercises"
DEFAULT_INCIDENTS_CHANNEL = "bcm-incidents"
_FLUSH_LOCK = threading.Lock()  # one flush at a time in a process; the store claim covers others


@dataclass(frozen=True)
class FlushReport:
    """What a flush did."""

    delivered: int
    failed: int
    pending: int
    error: str | None = None


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
    ) -> None:
        self.store = store
        self.transport = transport
        self.catalog = catalog
        self.exercise_channel = exercise_channel
        self.incidents_channel = incidents_channel

    # ------------------------------------------------------------------ routing

    def send(self, message: Message) -> None:
        """Store the message's operations in the outbox, then try to deliver everything pending."""
        for key, payload in self._operations(message):
            self.store.enqueue_message(key, kind=message.kind, payload=payload, run_id=message.run_id)
        self.flush()

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
        raise ValueError(f"unknown message kind {kind!r}")

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

    def flush(self) -> FlushReport:
        """Deliver undelivered messages in order; stop at the first transient failure."""
        delivered = failed = 0
        with _FLUSH_LOCK:
            queue = self.store.list_messages(status="undelivered")
            last_update = {
                str(m.payload.get("target", {}).get("key")): m.id
                for m in queue
                if m.payload.get("op") == "update" and m.payload.get("target", {}).get("key")
            }
            for record in queue:
                if not self.store.claim_message(record.key):
                    continue
                target_key = (
                    record.payload.get("target", {}).get("key") if record.payload.get("op") == "update" else None
                )
                if target_key and last_update.get(str(target_key), record.id) > record.id:
                    # A later edit of the same board is queued: this one would be overwritten at once.
                    self.store.mark_message_delivered(record.key, result={"superseded": True})
                    continue
                try:
                    result = self._deliver(record)
                except DeliveryError as exc:
                    self.store.mark_message_attempt(record.key, error=str(exc), permanent=exc.permanent)
                    if exc.permanent:
                        failed += 1
                        continue
                    pending = len(self.store.list_messages(status="undelivered"))
                    return FlushReport(delivered, failed, pending, error=str(exc))
                self.store.mark_message_delivered(record.key, result=result)
                delivered += 1
        return FlushReport(delivered, failed, 0)

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
        if payload.get("topic"):
            self.transport.call("conversations.setTopic", channel=channel, topic=payload["topic"])
        if payload.get("invite"):
            try:
                self.transport.call("conversations.invite", channel=channel, users=",".join(payload["invite"]))
            except DeliveryError as exc:
                if not exc.permanent:
                    raise
                # The channel exists; people who cannot be invited join by themselves. Say so.
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
            if board is not None and board.status == "delivered" and board.result and "ts" in board.result:
                params["channel"] = board.result["channel"]
                params["thread_ts"] = board.result["ts"]
        answer = self.transport.call("chat.postMessage", **params)
        result = {"channel": answer.get("channel", params["channel"]), "ts": answer.get("ts")}
        if payload.get("pin"):
            try:
                self.transport.call("pins.add", channel=result["channel"], timestamp=result["ts"])
            except DeliveryError as exc:
                if not exc.permanent:
                    raise
                result["pin_error"] = exc.error
        return result

    def _update(self, payload: dict[str, Any]) -> dict[str, Any]:
        target = payload.get("target") or {}
        if "key" in target:
            board = self.store.get_message(target["key"])
            if board is None or board.status != "delivered" or not board.result or "ts" not in board.result:
                state = board.status if board else "missing"
                raise DeliveryError("chat.update", f"the message to edit is {state}", permanent=state != "pending")
            channel, ts = board.result["channel"], board.result["ts"]
        else:
            channel, ts = target.get("channel"), target.get("ts")
        params: dict[str, Any] = {"channel": channel, "ts": ts, "text": payload["text"]}
        if payload.get("blocks"):
            params["blocks"] = payload["blocks"]
        answer = self.transport.call("chat.update", **params)
        return {"channel": answer.get("channel", channel), "ts": answer.get("ts", ts)}
