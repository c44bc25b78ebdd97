"""Executing and simulating one step, through its kind in the table (:data:`bcm.kinds.KINDS`).

What each kind does is in its module in :mod:`bcm.kinds`; this module dispatches to it and wires
the collaborators the kinds need (:func:`action_env`: where a notify step's message goes). Every
attempt returns a :class:`StepOutcome`; none raises for an expected failure. Timeouts are
enforced by the kinds (subprocess and HTTP timeouts, a bounded wait for ``call``), because a
step's timeout must hold whatever runs it.

``StepOutcome``, ``ActionEnv`` and ``resolve_entry_point`` live in :mod:`bcm.kinds` and are
importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable

from bcm.comms.notifier import Message, Notifier, exercise_text
from bcm.engine.context import RunContext
from bcm.kinds.base import MAX_TEXT, ActionEnv, StepOutcome
from bcm.kinds.call import resolve_entry_point
from bcm.kinds.http import DEFAULT_HTTP_TIMEOUT
from bcm.spec.models import Step

__all__ = [
    "DEFAULT_HTTP_TIMEOUT",
    "MAX_TEXT",
    "ActionEnv",
    "StepOutcome",
    "action_env",
    "execute",
    "resolve_entry_point",
    "simulate",
]


def simulate(step: Step, ctx: RunContext) -> StepOutcome:
    """Exercise mode: say what the step would do, touch nothing."""
    return step.kind_def.simulate_step(step, ctx)


def execute(step: Step, ctx: RunContext, *, env: ActionEnv) -> StepOutcome:
    """Run one automated step (not approve/manual) once and report its outcome.

    Raises:
        ValueError: for a step that waits for a person.
    """
    return step.kind_def.execute_step(step, ctx, env)


def action_env(
    notifier: Notifier,
    ctx: RunContext,
    *,
    message: Callable[[Step, str], Message] | None = None,
    started_process: Callable[[Step, int], None] | None = None,
) -> ActionEnv:
    """The collaborators of a run's (or a check's) steps.

    Args:
        notifier: where notify steps' messages go.
        ctx: the run.
        message: builds a notify step's message from its rendered text (the run's
            communication, which also restarts the cadence clock); a plain message when None.
        started_process: told the pid of a run step's command as soon as it starts.
    """
    build = message or (lambda step, text: plain_message(step, text, ctx))

    def announce(step: Step, text: str) -> str:
        sent = build(step, text)
        notifier.send(sent)
        return sent.text

    return ActionEnv(announce=announce, started_process=started_process)


def plain_message(step: Step, text: str, ctx: RunContext) -> Message:
    """A notify step's message without the run's board and context (readiness checks)."""
    to = tuple(step.notify.to) if step.notify is not None else ()
    return Message(
        key=f"{ctx.run.id}/{step.id}/notify",
        run_id=ctx.run.id,
        step_id=step.id,
        kind="notify",
        to=to,
        text=exercise_text(text, exercise=ctx.exercise),
        exercise=ctx.exercise,
    )
