"""``run: [argv...]``: a local command, never through a shell; exit 0 is success, stdout the output."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator

from bcm.kinds.base import ActionEnv, StepKindDef, StepOutcome, clip
from bcm.kinds.processes import die_with_parent
from bcm.templates import render

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step


def _argv_item(value: object) -> object:
    # YAML reads `[ping, -c, 3]` with an int; an argv is strings, so numbers are taken as written.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: One item of a ``run`` argv (the list itself is ``Step.run``, at least one item).
ArgvItem = Annotated[str, BeforeValidator(_argv_item)]


def describe(step: Step) -> str:
    """``run ARGV...``."""
    assert step.run is not None
    return "run " + " ".join(step.run)


def execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    """Run the command (templates rendered) in a process group of its own, within the step's timeout."""
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
        # runner (see bcm.kinds.processes), so a dead runner leaves nothing running unsupervised.
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
    return _wait(child, timeout)


def _wait(child: subprocess.Popen[str], timeout: float | None) -> StepOutcome:
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        stdout, _ = child.communicate()
        return StepOutcome("timed_out", output={"stdout": clip(stdout or "")}, error=f"timed out after {timeout:g}s")
    finally:
        if child.poll() is None:  # the runner is leaving (an exception): take the command with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    output = {"exit_code": child.returncode, "stdout": clip(stdout), "stderr": clip(stderr)}
    if child.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-1:] or [""]
        return StepOutcome("failed", output=output, error=f"exit code {child.returncode}: {tail[0]}".rstrip(": "))
    return StepOutcome("succeeded", output=output)


KIND = StepKindDef(
    name="run",
    model=None,
    describe=describe,
    default_exercise="simulate",
    templates=(("run", "*"),),
    execute=execute,
)
