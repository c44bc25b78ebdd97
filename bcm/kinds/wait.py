"""``wait: 10m``: a timer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bcm.durations import format_duration
from bcm.kinds.base import ActionEnv, StepKindDef, StepOutcome

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step


def describe(step: Step) -> str:
    """``wait 10m``."""
    return f"wait {format_duration(step.wait)}"


def execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    """Sleep for the duration (``env.sleep``)."""
    assert step.wait is not None
    env.sleep(step.wait.total_seconds())
    return StepOutcome("succeeded", output={"waited_s": step.wait.total_seconds()})


KIND = StepKindDef(name="wait", model=None, describe=describe, default_exercise="run", execute=execute)
