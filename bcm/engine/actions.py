"""What each automated step kind does: run, http, call, notify, wait (and simulation).

Every action returns a :class:`StepOutcome`; none raises for an expected failure. Timeouts are
enforced here (subprocess and HTTP timeouts, a bounded wait for ``call``), because a step's
timeout must hold whatever runs it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bcm.comms.notifier import Message, Notifier, exercise_text
from bcm.engine.context import RunContext
from bcm.engine.processes import die_with_parent
from bcm.errors import TemplateRenderError
from bcm.spec.models import Step
from bcm.spec.summary import describe_step
from bcm.templates import escape_mrkdwn, render, render_value

MAX_TEXT = 4000
DEFAULT_HTTP_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class StepOutcome:
    """The result of one attempt at a step."""

    status: str  # succeeded | rejected | failed | timed_out | skipped
    output: Any = None
    error: str | None = None
    reason: str | None = None
    actor: str | None = None
    #: When the step really ended, when that is not "now" (a person's decision time).
    ended_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when the step needs no retry: it succeeded, was skipped, or a person rejected it."""
        return self.status in ("succeeded", "rejected", "skipped")


@dataclass
class ActionEnv:
    """Collaborators of actions.

    Attributes:
        notifier: where notify steps' messages go.
        announce: builds a notify step's message from its rendered text (the run's
            communication, which also restarts the cadence clock); a plain message when None.
        sleep: how wait steps wait.
        extra_env: more environment for run steps.
        started_process: told the pid of a run step's command as soon as it starts (the runner
            records it, so a resumed run can check the command is not still running).
    """

    notifier: Notifier
    announce: Callable[[Step, str], Message] | None = None
    sleep: Callable[[float], None] = time.sleep
    extra_env: dict[str, str] = field(default_factory=dict)
    started_process: Callable[[Step, int], None] | None = None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 20] + "\n...[truncated]"


def simulate(step: Step, ctx: RunContext) -> StepOutcome:
    """Exercise mode: say what the step would do, touch nothing."""
    try:
        would = render(describe_step(step), ctx.template_context())
    except TemplateRenderError:
        would = describe_step(step)
    return StepOutcome("succeeded", output={"simulated": True, "would": would}, reason="exercise: simulated")


def execute(step: Step, ctx: RunContext, *, env: ActionEnv) -> StepOutcome:
    """Run one automated step (not approve/manual) once and report its outcome."""
    try:
        if step.run is not None:
            return _run(step, ctx, env)
        if step.http is not None:
            return _http(step, ctx)
        if step.call is not None:
            return _call(step, ctx)
        if step.notify is not None:
            return _notify(step, ctx, env)
        if step.wait is not None:
            env.sleep(step.wait.total_seconds())
            return StepOutcome("succeeded", output={"waited_s": step.wait.total_seconds()})
    except TemplateRenderError as exc:
        return StepOutcome("failed", error=str(exc))
    raise ValueError(f"step '{step.id}' of kind {step.kind} is not automated")


def _run(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    assert step.run is not None
    argv = [render(arg, ctx.template_context()) for arg in step.run]
    directory = ctx.loaded.directory
    program = argv[0]
    local = directory / program
    if "/" in program and local.exists():
        argv[0] = str(local)
    elif shutil.which(program) is None:
        return StepOutcome("failed", error=f"command not found: {program} (looked in {directory} and PATH)")
    child_env = {
        **os.environ,
        **env.extra_env,
        "BCM_RUN_ID": ctx.run.id,
        "BCM_RUN_MODE": ctx.run.mode,
        "BCM_STEP_ID": step.id,
    }
    timeout = step.timeout.total_seconds() if step.timeout else None
    try:
        # A group of its own, so a timeout stops everything the command started; killed with the
        # runner (see bcm.engine.processes), so a dead runner leaves nothing running unsupervised.
        child = subprocess.Popen(
            argv,
            cwd=directory,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,  # one prctl call, resolved before the fork: safe with threads
        )
    except OSError as exc:
        return StepOutcome("failed", error=f"cannot run {argv[0]}: {exc.strerror}")
    if env.started_process is not None:
        env.started_process(step, child.pid)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        stdout, _ = child.communicate()
        return StepOutcome("timed_out", output={"stdout": _clip(stdout or "")}, error=f"timed out after {timeout:g}s")
    finally:
        if child.poll() is None:  # the runner is leaving (an exception): take the command with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    output = {"exit_code": child.returncode, "stdout": _clip(stdout), "stderr": _clip(stderr)}
    if child.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-1:] or [""]
        return StepOutcome("failed", output=output, error=f"exit code {child.returncode}: {tail[0]}".rstrip(": "))
    return StepOutcome("succeeded", output=output)


def _http(step: Step, ctx: RunContext) -> StepOutcome:
    assert step.http is not None
    spec = step.http
    tctx = ctx.template_context()
    url = render(spec.url, tctx)
    headers = {k: render(v, tctx) for k, v in spec.headers.items()}
    body = render_value(spec.json_body, tctx) if spec.json_body is not None else None
    timeout = (step.timeout or DEFAULT_HTTP_TIMEOUT).total_seconds()
    try:
        response = httpx.request(spec.method, url, headers=headers, json=body, timeout=timeout)
    except httpx.TimeoutException:
        return StepOutcome("timed_out", error=f"{spec.method} {url} timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return StepOutcome("failed", error=f"{spec.method} {url} failed: {exc}")
    output: dict[str, Any] = {"status": response.status_code, "body": _clip(response.text)}
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            output["json"] = response.json()
    if response.status_code not in spec.expect_status:
        expected = ", ".join(str(s) for s in spec.expect_status)
        return StepOutcome(
            "failed", output=output, error=f"{spec.method} {url} answered {response.status_code}, expected {expected}"
        )
    return StepOutcome("succeeded", output=output)


def resolve_entry_point(ref: str) -> Callable[..., Any]:
    """Import ``package.module:function``.

    Raises:
        ValueError: when the module or function cannot be found.
    """
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"{module_name} has no function {attr}")
    return function  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _call(step: Step, ctx: RunContext) -> StepOutcome:
    assert step.call is not None
    try:
        function = resolve_entry_point(step.call)
    except ValueError as exc:
        return StepOutcome("failed", error=str(exc))
    kwargs = render_value(step.with_ or {}, ctx.template_context())
    assert isinstance(kwargs, dict)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = function(**kwargs)
        except Exception as exc:  # the entry point's failure is the step's failure
            result["error"] = f"{type(exc).__name__}: {exc}"

    if step.timeout is None:
        target()
    else:
        # A Python function cannot be killed; the step times out and the thread is left to finish.
        worker = threading.Thread(target=target, daemon=True, name=f"bcm-call-{step.id}")
        worker.start()
        worker.join(step.timeout.total_seconds())
        if worker.is_alive():
            return StepOutcome("timed_out", error=f"{step.call} timed out after {step.timeout.total_seconds():g}s")
    if "error" in result:
        return StepOutcome("failed", error=result["error"])
    return StepOutcome("succeeded", output=_jsonable(result.get("value")))


def _notify(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    assert step.notify is not None
    # Values from outside the runbook are escaped: a parameter cannot inject <!channel> or a link.
    text = render(step.notify.message, ctx.template_context(escape=escape_mrkdwn)).strip()
    if env.announce is not None:
        message = env.announce(step, text)
    else:
        message = Message(
            key=f"{ctx.run.id}/{step.id}/notify",
            run_id=ctx.run.id,
            step_id=step.id,
            kind="notify",
            to=tuple(step.notify.to),
            text=exercise_text(text, exercise=ctx.exercise),
            exercise=ctx.exercise,
        )
    env.notifier.send(message)
    return StepOutcome("succeeded", output={"to": list(step.notify.to), "text": message.text})
