"""Slack interactivity and the slash command: approvals by button, `/bcm run`, `/bcm status`.

The ASGI app behind ``bcm slack serve``: an entry point like the command line, so it lives next to
it and may use the engine (``bcm.comms`` does not). Every request's signature and timestamp are
verified (stale requests are refused by slack_sdk's verifier; a request seen before is refused as a
replay). A button click from someone who holds the step's role records the decision and resumes
the paused flow run; anyone else gets an ephemeral refusal. The app takes its Prefect-facing parts
(starting a run) as callables, so this module does not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bcm.comms import make_notifier, make_transport
from bcm.comms.messages import board_text, decision_message
from bcm.comms.slack import verify_request
from bcm.config import Settings
from bcm.engine.approvals import decide
from bcm.engine.liveness import assess
from bcm.engine.runner import new_run_id
from bcm.engine.status import board_from_document, run_document
from bcm.errors import ApprovalRefused, BcmError, DeliveryError
from bcm.spec import load_library
from bcm.spec.params import resolve_parameters
from bcm.store import Store

REPLAY_WINDOW_S = 5 * 60
#: Roles allowed to start a real run from Slack (besides the runbook's owner).
TRIGGER_ROLES = ("incident_commander",)
USAGE = "Usage: `/bcm run RUNBOOK [--exercise] key=value ...` or `/bcm status RUN`"
RUN_USAGE = "Usage: `/bcm run RUNBOOK [--exercise] key=value ...`"

Trigger = Callable[..., None]


@dataclass(frozen=True)
class SlashCommand:
    """A parsed `/bcm ...` command."""

    action: str
    args: tuple[str, ...]


class ReplayGuard:
    """Remembers signatures for the replay window; a signature seen twice is a replay."""

    def __init__(self, window_s: float = REPLAY_WINDOW_S) -> None:
        self.window_s = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        """True the first time ``signature`` is seen within the window."""
        now = time.monotonic()
        with self._lock:
            for old in [s for s, at in self._seen.items() if now - at > self.window_s]:
                del self._seen[old]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


def create_app(*, settings: Settings, signing_secret: str, trigger: Trigger) -> Starlette:
    """The ASGI app behind `bcm slack serve`.

    Args:
        settings: bcm's configuration (store, library, Slack).
        signing_secret: the Slack app's signing secret.
        trigger: starts a run: ``trigger(runbook_path, parameters, mode=, triggered_by=, run_id=)``.
    """
    endpoints = _Endpoints(settings=settings, signing_secret=signing_secret, trigger=trigger)
    return Starlette(
        routes=[
            Route("/slack/interactivity", endpoints.interactivity, methods=["POST"]),
            Route("/slack/commands", endpoints.commands, methods=["POST"]),
            Route("/healthz", _health, methods=["GET"]),
        ]
    )


class _Endpoints:
    """The request handlers of one app, sharing its configuration and its replay guard."""

    def __init__(self, *, settings: Settings, signing_secret: str, trigger: Trigger) -> None:
        self.settings = settings
        self.signing_secret = signing_secret
        self.trigger = trigger
        self.replays = ReplayGuard()

    async def verified(self, request: Request) -> bytes | Response:
        """The request's body, or the refusal when its signature is invalid, stale or replayed."""
        body = await request.body()
        if not verify_request(self.signing_secret, body, request.headers):
            return PlainTextResponse("invalid or stale Slack signature", status_code=401)
        if not self.replays.first_time(request.headers.get("x-slack-signature", "")):
            return PlainTextResponse("replayed request", status_code=401)
        return body

    async def interactivity(self, request: Request) -> Response:
        """A button click: answered at once (Slack waits 3 s at most), handled in the background."""
        body = await self.verified(request)
        if isinstance(body, Response):
            return body
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, ValueError, IndexError):
            return PlainTextResponse("expected a form field 'payload' with JSON", status_code=400)
        if payload.get("type") != "block_actions" or not payload.get("actions"):
            return Response(status_code=200)
        return Response(status_code=200, background=BackgroundTask(self.handle_click, payload))

    def handle_click(self, payload: dict[str, Any]) -> None:
        """Record the clicked decision, update the message; tell the person when the run cannot take it."""
        action = payload["actions"][0]
        try:
            value = json.loads(action.get("value") or "{}")
            run_ref, step_id, approved = str(value["run"]), str(value["step"]), bool(value["approved"])
        except (ValueError, KeyError, TypeError):
            return
        settings = self.settings
        user = str(payload.get("user", {}).get("id", ""))
        channel = str(payload.get("channel", {}).get("id") or payload.get("container", {}).get("channel_id", ""))
        message_ts = str(payload.get("container", {}).get("message_ts") or payload.get("message", {}).get("ts", ""))
        with Store.open(settings.database_url) as store:
            try:
                run, step, approval = decide(
                    store, run_ref, step_id, who=user, approve=approved, note=None, library_root=settings.runbooks
                )
            except (ApprovalRefused, BcmError) as exc:
                _ephemeral(settings, channel, user, f":no_entry: {exc}")
                return
            make_notifier(settings, store).send(
                decision_message(
                    run_id=run.id,
                    step_id=step_id,
                    prompt=step.person_prompt,
                    decision=approval.decision,
                    by=approval.by,
                    note=None,
                    at=approval.at,
                    exercise=run.mode == "exercise",
                    target={"channel": channel, "ts": message_ts} if message_ts else None,
                )
            )

            # The run takes the decision from the store; a run whose runner died takes it when resumed.
            liveness = assess(store.get_run(run.id))
            still_waiting = (found := store.get_step(run.id, step_id)) is not None and found.status == "waiting"
        if still_waiting and liveness.state != "alive":
            _ephemeral(
                settings,
                channel,
                user,
                f"Recorded. Run {run.short_id} is not running ({liveness.why or run.status}): "
                f"`bcm resume {run.short_id}` continues it with your decision.",
            )

    async def commands(self, request: Request) -> Response:
        """``/bcm run ...`` and ``/bcm status RUN``; the answer is for the person who typed it only."""
        body = await self.verified(request)
        if isinstance(body, Response):
            return body
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        words = tuple(form.get("text", "").split())
        command = SlashCommand(words[0].lower(), words[1:]) if words else SlashCommand("help", ())
        user = form.get("user_id", "")
        try:
            if command.action == "run":
                text = self.start_run(command.args, user)
            elif command.action == "status" and command.args:
                text = self.status_text(command.args[0])
            else:
                text = USAGE
        except BcmError as exc:
            text = f":no_entry: {exc}"
        return JSONResponse({"response_type": "ephemeral", "text": text})

    def start_run(self, args: tuple[str, ...], user: str) -> str:
        """Start a run for ``user`` (a real run only for a holder of a trigger role or the owner)."""
        if not args:
            return RUN_USAGE
        library = load_library(self.settings.runbooks)
        loaded = library.get(args[0])
        mode = "exercise" if "--exercise" in args else "real"
        given = dict(a.split("=", 1) for a in args[1:] if "=" in a)
        rb = loaded.runbook
        allowed = [library.catalog.roles[r] for r in (*TRIGGER_ROLES, rb.owner) if r in library.catalog.roles]
        if mode == "real" and not any(role.holder(user) for role in allowed):
            names = ", ".join(sorted({*TRIGGER_ROLES, rb.owner}))
            return f":no_entry: only holders of {names} can start a real run of {rb.id}; try --exercise"
        _, problems = resolve_parameters(rb, given)
        if problems:
            return ":no_entry: " + "; ".join(problems)
        run_id = new_run_id()
        self.trigger(str(loaded.path), given, mode=mode, triggered_by=f"slack:{user}", run_id=run_id)
        return f":rocket: Starting {mode} run `{run_id[:8]}` of *{rb.title}*. `/bcm status {run_id[:8]}` shows it."

    def status_text(self, ref: str) -> str:
        """The run's status board as Slack shows it."""
        with Store.open(self.settings.database_url) as store:
            doc = run_document(store, store.get_run(ref))
        return board_text(board_from_document(doc))


async def _health(_: Request) -> Response:
    return PlainTextResponse("ok")


def _ephemeral(settings: Settings, channel: str, user: str, text: str) -> None:
    """An ephemeral reply: feedback for one person, so it is sent directly, not through the outbox."""
    if not channel or not user:
        return
    # Nothing to keep when it fails: the person can click again or use `bcm approve`.
    with contextlib.suppress(DeliveryError):
        make_transport(settings).call("chat.postEphemeral", channel=channel, user=user, text=text)
