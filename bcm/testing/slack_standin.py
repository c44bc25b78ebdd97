"""A Slack Web API stand-in: a real HTTP server on 127.0.0.1 that speaks enough of Slack's Web API
for bcm's tests to drive the real ``slack_sdk.WebClient`` over the wire.

It keeps a small workspace in memory (channels, members, topics, messages with ``ts``, pins, users),
records every call it receives, and lets a test inject the failures Slack really produces: HTTP 429
with ``Retry-After``, 5xx outages, connections closed without an answer, and permanent API errors.

In the test process::

    with SlackStandIn(tokens={"xoxb-test"}, channels={"C0EXERCISE": "bcm-exercises"}) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="#bcm-exercises", text="STARTEX")
        assert [m["text"] for m in slack.messages("bcm-exercises")] == ["STARTEX"]

As a process, for a ``bcm`` subprocess to talk to (it prints its base URL on the first line)::

    python -m bcm.testing.slack_standin --port 0 --token xoxb-test --channel C0EXERCISE=bcm-exercises

and from the test, over HTTP: ``StandInControl(base_url).rate_limit(times=2)``, ``.calls()``,
``.messages("bcm-exercises")``, ``.recover()``, ``.reset()``.

Control endpoints (outside Slack's ``/api/`` namespace): ``GET /_standin/calls[?method=M]``,
``GET /_standin/messages?channel=C``, ``GET /_standin/pins?channel=C``, ``POST /_standin/inject``
(JSON ``{"kind": "rate_limit" | "fail" | "drop_connections" | "fail_permanently", ...options}``),
``POST /_standin/recover``, ``POST /_standin/clear`` and ``POST /_standin/reset``.

Where Slack's behaviour is known, the stand-in follows it rather than being lenient: API errors
are HTTP 200 with ``{"ok": false, "error": ...}``; ``conversations.create`` answers
``invalid_name_required``, ``invalid_name_maxlength`` (over 80 characters),
``invalid_name_specials`` and ``name_taken``; ``chat.update`` and ``pins.add`` need a channel ID
while ``chat.postMessage`` also takes a name or ``#name``. What it leaves out: system messages
(Slack posts one when the topic changes), ``not_in_channel`` checks for the bot, private-channel
visibility, and pagination.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import parse_qsl, urlsplit

import httpx

from bcm import clock as bcm_clock

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_TOKEN",
    "TEAM_ID",
    "RecordedCall",
    "SlackStandIn",
    "StandInControl",
    "main",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "xoxb-test"
TEAM_ID = "T0STANDIN"
TEAM_NAME = "bcm stand-in"
BOT_USER_ID = "U0BCMBOT"
BOT_ID = "B0BCMBOT"
BOT_NAME = "bcm"

FaultKind = Literal["rate_limit", "fail", "drop_connections", "fail_permanently"]
FAULT_KINDS: tuple[FaultKind, ...] = ("rate_limit", "fail", "drop_connections", "fail_permanently")

# The first message gets this ts; each later one is 100 microseconds later, so ts values are
# strictly increasing across the whole workspace and the same from run to run.
_FIRST_TS_MICROS = 1_700_000_000_000_100
_TS_STEP_MICROS = 100

_CHANNEL_NAME_MAX = 80
_TOPIC_MAX = 250
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
_PUNCTUATION_ONLY = re.compile(r"[_-]+")

# Slack's own error strings for the HTTP failures a test can inject.
_HTTP_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}

# Methods Slack answers without a token.
_NO_AUTH_METHODS = frozenset({"api.test"})

_API_PREFIX = "/api/"
_CONTROL_PREFIX = "/_standin/"


@dataclass(frozen=True)
class RecordedCall:
    """One request the stand-in received, whatever became of it.

    Attributes:
        method: the Web API method, e.g. ``chat.postMessage``.
        params: the arguments, from the query string and the body (form, JSON or multipart),
            without ``token``; ``blocks`` and ``attachments`` sent as JSON strings are decoded.
        token: the token from ``Authorization: Bearer`` or the ``token`` field, or None.
        at: when the request arrived (timezone-aware UTC, from the stand-in's clock).
        status: the HTTP status answered; 0 when the connection was dropped without an answer.
        ok: the ``ok`` field answered: True only when Slack would have acted on the call.
        error: the ``error`` field answered, when not ok.
        fault: the injected failure that refused the call (``rate_limit``, ``fail``,
            ``drop_connections``, ``fail_permanently``), or None when the workspace answered.
    """

    method: str
    params: dict[str, Any]
    token: str | None
    at: datetime
    status: int = 200
    ok: bool = True
    error: str | None = None
    fault: FaultKind | None = None

    @property
    def delivered(self) -> bool:
        """Whether the call took effect (answered ``ok: true``); refused calls are the rest."""
        return self.ok

    def to_json(self) -> dict[str, Any]:
        """Return the call as a JSON-ready dict (``at`` in ISO 8601)."""
        return {
            "method": self.method,
            "params": self.params,
            "token": self.token,
            "at": self.at.isoformat(),
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "fault": self.fault,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedCall:
        """Build a call from :meth:`to_json` output (as the control API returns it)."""
        return cls(
            method=data["method"],
            params=dict(data["params"]),
            token=data["token"],
            at=datetime.fromisoformat(data["at"]),
            status=data["status"],
            ok=data["ok"],
            error=data["error"],
            fault=data["fault"],
        )


@dataclass
class _Fault:
    kind: FaultKind
    method: str | None
    remaining: int | None  # None: until recover()
    status: int = 200
    retry_after: int = 0
    error: str = ""

    def applies_to(self, method: str) -> bool:
        return self.method is None or self.method == method


@dataclass
class _Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    topic: dict[str, Any] = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    members: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": False,
            "is_member": BOT_USER_ID in self.members,
            "created": self.created,
            "creator": self.creator,
            "topic": dict(self.topic),
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": len(self.members),
        }

    def message(self, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["ts"] == ts), None)


class _ApiError(Exception):
    """Raised by a method handler: answered as HTTP 200 ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any] | None  # None: close the connection without answering
    headers: tuple[tuple[str, str], ...] = ()


class SlackStandIn:
    """A Slack Web API stand-in serving on ``127.0.0.1`` from a background thread.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`); ``base_url`` is what
    ``WebClient(base_url=...)`` takes. All methods are thread-safe.

    Args:
        tokens: the tokens Slack accepts; others get ``invalid_auth``, none gets ``not_authed``.
        channels: channels that exist from the start, ID to name; the bot is a member of each.
        users: workspace users, ID to email address.
        port: the port to listen on; 0 picks a free one.
        clock: the clock stamping recorded calls and created channels.
    """

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        channels: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        port: int = 0,
        clock: bcm_clock.Clock = bcm_clock.now,
    ) -> None:
        self._tokens = frozenset(tokens)
        self._seed_channels = dict(channels or {})
        self._seed_users = dict(users or {})
        self._port = port
        self._clock = clock
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "conversations.create": self._conversations_create,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.invite": self._conversations_invite,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "pins.add": self._pins_add,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.info": self._users_info,
        }
        self._calls: list[RecordedCall] = []
        self._faults: list[_Fault] = []
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, str] = {}
        self._next_ts = _FIRST_TS_MICROS
        self._next_channel = 1
        self._seed()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and start serving in a daemon thread.

        Raises:
            RuntimeError: when already started.
            OSError: when the port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the Slack stand-in is already running")
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and wait for the thread; safe to repeat."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the stand-in listens on.

        Raises:
            RuntimeError: when not started.
        """
        if self._server is None:
            raise RuntimeError("the Slack stand-in is not running: use it as a context manager or start()")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:50123/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def base_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)``, ending with ``/``."""
        return f"{self.url}api/"

    # -- recording ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """The calls received for one Web API method, oldest first."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages in a channel as they stand now (after updates), oldest first.

        Args:
            channel: a channel ID, name or ``#name``.

        Raises:
            KeyError: when there is no such channel.
        """
        with self._lock:
            return copy.deepcopy(self._require_channel(channel).messages)

    def pins(self, channel: str) -> list[str]:
        """The ``ts`` of the pinned messages in a channel, in the order they were pinned.

        Raises:
            KeyError: when there is no such channel.
        """
        with self._lock:
            return list(self._require_channel(channel).pins)

    def ephemerals(self, channel: str) -> list[dict[str, Any]]:
        """The ephemeral messages sent in a channel (each with the ``user`` it was shown to).

        Raises:
            KeyError: when there is no such channel.
        """
        with self._lock:
            return copy.deepcopy(self._require_channel(channel).ephemerals)

    def channel(self, channel: str) -> dict[str, Any]:
        """A channel as ``conversations.info`` describes it, plus its ``members``.

        Raises:
            KeyError: when there is no such channel.
        """
        with self._lock:
            found = self._require_channel(channel)
            return {**found.describe(), "members": list(found.members)}

    def clear(self) -> None:
        """Forget the recorded calls; the workspace and injected failures stay."""
        with self._lock:
            self._calls.clear()

    def reset(self) -> None:
        """Return to the state at construction: seeded workspace, no calls, no failures."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._seed()

    # -- injected failures -------------------------------------------------------------------

    def rate_limit(self, times: int, retry_after: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` calls with HTTP 429, ``Retry-After`` and ``ratelimited``.

        Args:
            times: how many calls to refuse.
            retry_after: the ``Retry-After`` header, in whole seconds.
            method: refuse only calls to this method; None for any.
        """
        _require_positive("times", times)
        if retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {retry_after}")
        self._add_fault(_Fault("rate_limit", method, times, status=429, retry_after=retry_after))

    def fail(self, status: int = 503, times: int | None = None, method: str | None = None) -> None:
        """Answer calls with an HTTP error status, as Slack does during an outage.

        Args:
            status: the HTTP status, 400 to 599.
            times: how many calls to refuse; None until :meth:`recover`.
            method: refuse only calls to this method; None for any.
        """
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status}")
        if times is not None:
            _require_positive("times", times)
        error = _HTTP_ERRORS.get(status, "http_error")
        self._add_fault(_Fault("fail", method, times, status=status, error=error))

    def drop_connections(self, times: int, method: str | None = None) -> None:
        """Read the next ``times`` requests and close the connection without answering.

        Args:
            times: how many connections to drop.
            method: drop only calls to this method; None for any.
        """
        _require_positive("times", times)
        self._add_fault(_Fault("drop_connections", method, times, status=0, error="connection_dropped"))

    def fail_permanently(self, error: str, method: str | None = None) -> None:
        """Answer calls with HTTP 200 ``{"ok": false, "error": error}`` until :meth:`recover`.

        Args:
            error: the Slack error, e.g. ``channel_not_found`` or ``invalid_auth``.
            method: refuse only calls to this method; None for any.
        """
        if not error:
            raise ValueError("error must be a Slack error string, e.g. 'channel_not_found'")
        self._add_fault(_Fault("fail_permanently", method, None, status=200, error=error))

    def recover(self) -> None:
        """Remove every injected failure, spent or not."""
        with self._lock:
            self._faults.clear()

    def inject(self, kind: str, options: Mapping[str, Any]) -> None:
        """Inject a failure by name, as the control API does.

        Args:
            kind: ``rate_limit``, ``fail``, ``drop_connections`` or ``fail_permanently``.
            options: that method's keyword arguments.

        Raises:
            ValueError: for an unknown kind or unusable options.
        """
        injectors: dict[str, Callable[..., None]] = {
            "rate_limit": self.rate_limit,
            "fail": self.fail,
            "drop_connections": self.drop_connections,
            "fail_permanently": self.fail_permanently,
        }
        if kind not in injectors:
            raise ValueError(f"unknown failure kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        try:
            injectors[kind](**options)
        except TypeError as exc:
            raise ValueError(f"bad options for {kind}: {exc}") from exc

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        fault = next((f for f in self._faults if f.applies_to(method)), None)
        if fault is not None and fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
        return fault

    # -- request handling --------------------------------------------------------------------

    def _handle_api(self, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        with self._lock:
            at = self._clock()
            fault = self._take_fault(method)
            reply = self._fault_reply(fault) if fault is not None else self._answer(method, params, token)
            body = reply.body
            self._calls.append(
                RecordedCall(
                    method=method,
                    params=copy.deepcopy(params),
                    token=token,
                    at=at,
                    status=0 if body is None else reply.status,
                    ok=body is not None and body.get("ok") is True,
                    error="connection_dropped" if body is None else body.get("error"),
                    fault=fault.kind if fault is not None else None,
                )
            )
            return reply

    @staticmethod
    def _fault_reply(fault: _Fault) -> _Reply:
        if fault.kind == "drop_connections":
            return _Reply(0, None)
        if fault.kind == "rate_limit":
            retry_after = (("Retry-After", str(fault.retry_after)),)
            return _Reply(429, {"ok": False, "error": "ratelimited"}, retry_after)
        return _Reply(fault.status, {"ok": False, "error": fault.error})

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise _ApiError("unknown_method")
            if method not in _NO_AUTH_METHODS:
                if not token:
                    raise _ApiError("not_authed")
                if token not in self._tokens:
                    raise _ApiError("invalid_auth")
            return _Reply(200, {"ok": True, **handler(params)})
        except _ApiError as exc:
            return _Reply(200, {"ok": False, "error": exc.error})

    # -- workspace state ---------------------------------------------------------------------

    def _seed(self) -> None:
        self._channels = {}
        self._users = dict(self._seed_users)
        self._next_ts = _FIRST_TS_MICROS
        self._next_channel = 1
        created = int(self._clock().timestamp())
        for channel_id, name in self._seed_channels.items():
            self._channels[channel_id] = _Channel(
                id=channel_id, name=name, created=created, creator=BOT_USER_ID, members=[BOT_USER_ID]
            )

    def _new_ts(self) -> str:
        micros = self._next_ts
        self._next_ts += _TS_STEP_MICROS
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_channel_id(self) -> str:
        while True:
            channel_id = f"C{self._next_channel:010d}"
            self._next_channel += 1
            if channel_id not in self._channels:
                return channel_id

    def _find_channel(self, ref: str, *, by_name: bool) -> _Channel | None:
        if ref in self._channels:
            return self._channels[ref]
        if not by_name:
            return None
        name = ref.removeprefix("#")
        return next((c for c in self._channels.values() if c.name == name), None)

    def _require_channel(self, ref: str) -> _Channel:
        found = self._find_channel(ref, by_name=True)
        if found is None:
            raise KeyError(f"no channel {ref!r} in the Slack stand-in (known: {sorted(self._channels)})")
        return found

    def _channel_param(self, params: Mapping[str, Any], *, by_name: bool = False) -> _Channel:
        ref = str(params.get("channel") or "")
        found = self._find_channel(ref, by_name=by_name) if ref else None
        if found is None:
            raise _ApiError("channel_not_found")
        return found

    def _user(self, user_id: str) -> dict[str, Any]:
        email = self._users[user_id]
        name = email.partition("@")[0]
        return {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": name,
            "deleted": False,
            "is_bot": False,
            "profile": {"email": email, "real_name": name, "display_name": name},
        }

    # -- Web API methods ---------------------------------------------------------------------

    def _api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": params} if params else {}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://bcm-standin.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversations_create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("name") or "")
        if not name:
            raise _ApiError("invalid_name_required")
        if len(name) > _CHANNEL_NAME_MAX:
            raise _ApiError("invalid_name_maxlength")
        if not _CHANNEL_NAME.fullmatch(name):
            raise _ApiError("invalid_name_specials")
        if _PUNCTUATION_ONLY.fullmatch(name):
            raise _ApiError("invalid_name_punctuation")
        if any(c.name == name for c in self._channels.values()):
            raise _ApiError("name_taken")
        channel = _Channel(
            id=self._new_channel_id(),
            name=name,
            created=int(self._clock().timestamp()),
            creator=BOT_USER_ID,
            is_private=_truthy(params.get("is_private")),
            members=[BOT_USER_ID],
        )
        self._channels[channel.id] = channel
        return {"channel": channel.describe()}

    def _conversations_set_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        topic = str(params.get("topic") or "")
        if len(topic) > _TOPIC_MAX:
            raise _ApiError("too_long")
        channel.topic = {"value": topic, "creator": BOT_USER_ID, "last_set": int(self._clock().timestamp())}
        return {"channel": channel.describe()}

    def _conversations_invite(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        user_ids = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not user_ids:
            raise _ApiError("no_user")
        for user_id in user_ids:
            if user_id == BOT_USER_ID:
                raise _ApiError("cant_invite_self")
            if user_id not in self._users:
                raise _ApiError("user_not_found")
            if user_id in channel.members:
                raise _ApiError("already_in_channel")
        channel.members.extend(dict.fromkeys(user_ids))
        return {"channel": channel.describe()}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_param(params).describe()}

    def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        if BOT_USER_ID in channel.members:
            return {
                "channel": channel.describe(),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        channel.members.append(BOT_USER_ID)
        return {"channel": channel.describe()}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=True)
        content = _message_content(params)
        ts = self._new_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "team": TEAM_ID,
            "ts": ts,
            **content,
        }
        thread_ts = params.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            parent = channel.message(str(thread_ts))
            if parent is not None:
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["reply_users"] = [BOT_USER_ID]
                parent["latest_reply"] = ts
        channel.messages.append(message)
        return {"channel": channel.id, "ts": ts, "message": copy.deepcopy(message)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        message = channel.message(str(params.get("ts") or ""))
        if message is None:
            raise _ApiError("message_not_found")
        _message_content(params)  # no_text when there is nothing to show
        if "text" in params:
            message["text"] = str(params["text"] or "")
        # As in Slack: blocks and attachments left out are kept; an empty list removes them.
        for key in ("blocks", "attachments"):
            if params.get(key):
                message[key] = params[key]
            elif key in params:
                message.pop(key, None)
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(message),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params, by_name=True)
        user_id = str(params.get("user") or "")
        if user_id not in self._users:
            raise _ApiError("user_not_found")
        if user_id not in channel.members:
            raise _ApiError("user_not_in_channel")
        content = _message_content(params)
        ts = self._new_ts()
        channel.ephemerals.append({"type": "message", "user": user_id, "ts": ts, **content})
        return {"message_ts": ts}

    def _pins_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_param(params)
        ts = str(params.get("timestamp") or "")
        if not ts:
            raise _ApiError("no_item_specified")
        message = channel.message(ts)
        if message is None:
            raise _ApiError("message_not_found")
        if ts in channel.pins:
            raise _ApiError("already_pinned")
        channel.pins.append(ts)
        message["pinned_to"] = [channel.id]
        return {}

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        user_id = next((uid for uid, e in self._users.items() if e.lower() == email), None)
        if user_id is None:
            raise _ApiError("users_not_found")
        return {"user": self._user(user_id)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        if user_id not in self._users:
            raise _ApiError("user_not_found")
        return {"user": self._user(user_id)}

    # -- control API -------------------------------------------------------------------------

    def _handle_control(self, verb: str, action: str, query: dict[str, str], body: Any) -> _Reply:
        try:
            if verb == "GET" and action == "calls":
                method = query.get("method")
                calls = self.calls_to(method) if method else self.calls
                return _Reply(200, {"ok": True, "calls": [c.to_json() for c in calls]})
            if verb == "GET" and action in {"messages", "pins", "channel"}:
                channel = query.get("channel", "")
                getter = {"messages": self.messages, "pins": self.pins, "channel": self.channel}[action]
                return _Reply(200, {"ok": True, action: getter(channel)})
            if verb == "POST" and action == "inject":
                if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
                    raise ValueError('the body must be a JSON object with a "kind"')
                options = {k: v for k, v in body.items() if k != "kind"}
                self.inject(body["kind"], options)
                return _Reply(200, {"ok": True})
            simple = {"recover": self.recover, "reset": self.reset, "clear": self.clear}
            if verb == "POST" and action in simple:
                simple[action]()
                return _Reply(200, {"ok": True})
        except KeyError as exc:
            return _Reply(404, {"ok": False, "error": str(exc.args[0])})
        except ValueError as exc:
            return _Reply(400, {"ok": False, "error": str(exc)})
        return _Reply(404, {"ok": False, "error": f"no control endpoint {verb} /_standin/{action}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: SlackStandIn


class _Handler(BaseHTTPRequestHandler):
    server_version = "bcm-slack-standin"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("slack stand-in: " + format, *args)

    def _dispatch(self, verb: str) -> None:
        standin = cast(_Server, self.server).standin
        url = urlsplit(self.path)
        # Read the whole body even when the answer is to drop the connection: closing a socket
        # with unread data makes the kernel send RST, and the client should see a clean close.
        try:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if url.path.startswith(_API_PREFIX):
                method = url.path.removeprefix(_API_PREFIX)
                try:
                    params = _request_params(url.query, self.headers.get("Content-Type", ""), raw)
                except ValueError:
                    reply = _Reply(200, {"ok": False, "error": "invalid_json"})
                else:
                    token = _bearer(self.headers.get("Authorization")) or params.pop("token", None)
                    params.pop("token", None)
                    reply = standin._handle_api(method, params, token)
            elif url.path.startswith(_CONTROL_PREFIX):
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    reply = _Reply(400, {"ok": False, "error": "the body is not JSON"})
                else:
                    reply = standin._handle_control(verb, url.path.removeprefix(_CONTROL_PREFIX), query, body)
            else:
                reply = _Reply(404, {"ok": False, "error": "not_found"})
        except Exception as exc:  # a bug in the stand-in: say so loudly rather than hang the client
            log.exception("slack stand-in failed on %s %s", verb, self.path)
            reply = _Reply(500, {"ok": False, "error": f"standin_bug: {type(exc).__name__}: {exc}"})
        if reply.body is None:
            self.close_connection = True
            return
        payload = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class StandInControl:
    """Drives a :class:`SlackStandIn` running in another process, over its control API.

    Args:
        base_url: the stand-in's base URL as it printed it (``http://127.0.0.1:PORT/api/``);
            its root URL works too.
        timeout: seconds to wait for each control request.
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        parts = urlsplit(base_url)
        self._client = httpx.Client(base_url=f"{parts.scheme}://{parts.netloc}/_standin/", timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call the stand-in received, oldest first."""
        return [RecordedCall.from_json(c) for c in self._get("calls")["calls"]]

    def calls_to(self, method: str) -> list[RecordedCall]:
        """The calls the stand-in received for one method, oldest first."""
        return [RecordedCall.from_json(c) for c in self._get("calls", method=method)["calls"]]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages in a channel as they stand now."""
        return cast(list[dict[str, Any]], self._get("messages", channel=channel)["messages"])

    def pins(self, channel: str) -> list[str]:
        """The ``ts`` of the pinned messages in a channel."""
        return cast(list[str], self._get("pins", channel=channel)["pins"])

    def channel(self, channel: str) -> dict[str, Any]:
        """A channel as ``conversations.info`` describes it, plus its ``members``."""
        return cast(dict[str, Any], self._get("channel", channel=channel)["channel"])

    def rate_limit(self, times: int, retry_after: int = 1, method: str | None = None) -> None:
        """See :meth:`SlackStandIn.rate_limit`."""
        options = {"times": times, "retry_after": retry_after, "method": method}
        self._post("inject", {"kind": "rate_limit", **options})

    def fail(self, status: int = 503, times: int | None = None, method: str | None = None) -> None:
        """See :meth:`SlackStandIn.fail`."""
        self._post("inject", {"kind": "fail", "status": status, "times": times, "method": method})

    def drop_connections(self, times: int, method: str | None = None) -> None:
        """See :meth:`SlackStandIn.drop_connections`."""
        self._post("inject", {"kind": "drop_connections", "times": times, "method": method})

    def fail_permanently(self, error: str, method: str | None = None) -> None:
        """See :meth:`SlackStandIn.fail_permanently`."""
        self._post("inject", {"kind": "fail_permanently", "error": error, "method": method})

    def recover(self) -> None:
        """Remove every injected failure."""
        self._post("recover")

    def clear(self) -> None:
        """Forget the recorded calls."""
        self._post("clear")

    def reset(self) -> None:
        """Return the stand-in to its state at start-up."""
        self._post("reset")

    def _get(self, action: str, **query: str) -> dict[str, Any]:
        return self._check(self._client.get(action, params=query))

    def _post(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._check(self._client.post(action, json=body))

    @staticmethod
    def _check(response: httpx.Response) -> dict[str, Any]:
        body = cast(dict[str, Any], response.json())
        if response.status_code != 200 or not body.get("ok"):
            raise RuntimeError(
                f"Slack stand-in control {response.request.method} {response.request.url.path} "
                f"answered {response.status_code}: {body.get('error')}"
            )
        return body


def _require_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"1", "true"}


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[len("bearer ") :].strip() or None
    return None


def _message_content(params: Mapping[str, Any]) -> dict[str, Any]:
    """The text, blocks and attachments of a message; ``no_text`` when it has none of them."""
    content: dict[str, Any] = {}
    for key in ("blocks", "attachments"):
        if params.get(key):
            content[key] = params[key]
    if not params.get("text") and not content:
        raise _ApiError("no_text")
    content["text"] = str(params.get("text") or "")
    return content


def _request_params(query: str, content_type: str, raw: bytes) -> dict[str, Any]:
    """Merge the query string and the body into one dict of arguments.

    Raises:
        ValueError: when a JSON body is not a JSON object.
    """
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json":
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            raise ValueError("a JSON body must be an object")
        params.update(body)
    elif media_type == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                params[name] = payload if part.get_filename() else payload.decode("utf-8")
    elif raw:
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    # Form bodies carry blocks and attachments as JSON strings; JSON bodies carry them as lists.
    for key in ("blocks", "attachments"):
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(value)
    return params


def _parse_pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise argparse.ArgumentTypeError(f"{what} must look like ID=VALUE, got {value!r}")
        pairs[key] = rest
    return pairs


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in until SIGTERM or Ctrl-C; print its base URL first, on its own line.

    Args:
        argv: the command-line arguments, without the program name; None for ``sys.argv``.

    Returns:
        The exit status: 0 after a clean stop.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bcm.testing.slack_standin",
        description="A Slack Web API stand-in on 127.0.0.1, for tests. Prints its base URL, then serves.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one)")
    parser.add_argument(
        "--token", action="append", dest="tokens", metavar="TOKEN", help=f"an accepted token (default {DEFAULT_TOKEN})"
    )
    parser.add_argument("--channel", action="append", metavar="ID=NAME", help="a channel that exists")
    parser.add_argument("--user", action="append", metavar="ID=EMAIL", help="a workspace user")
    args = parser.parse_args(argv)
    try:
        channels = _parse_pairs(args.channel, "--channel")
        users = _parse_pairs(args.user, "--user")
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with SlackStandIn(
        tokens=args.tokens or (DEFAULT_TOKEN,), channels=channels, users=users, port=args.port
    ) as standin:
        print(standin.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
