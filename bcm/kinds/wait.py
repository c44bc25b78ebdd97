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
    """Sleep for what is left of the duration (``env.sleep``): a wait that was under way when its
    runner died does not start again from the beginning when the run is resumed."""
    assert step.wait is not None
    total = step.wait.total_seconds()
    already = env.elapsed(step) if env.elapsed is not None else 0.0
    env.sleep(max(0.0, total - already))
    return StepOutcome("succeeded", output={"waited_s": total})


KIND = StepKindDef(name="wait", model=None, describe=describe, default_exercise="run", execute=execute)
