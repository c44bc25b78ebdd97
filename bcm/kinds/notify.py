"""``notify: {to: [roles], message: template}``: a stakeholder message (Slack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from bcm.kinds.base import ActionEnv, Model, RoleId, StepKindDef, StepOutcome
from bcm.templates import escape_mrkdwn, render

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step


class NotifyAction(Model):
    """A stakeholder message to the roles in ``to``."""

    to: list[RoleId] = Field(min_length=1)
    message: str = Field(min_length=1)


def describe(step: Step) -> str:
    """``notify ROLE, ROLE``."""
    assert step.notify is not None
    return f"notify {', '.join(step.notify.to)}"


def execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    """Render the message and hand it to ``env.announce`` (the engine builds and sends it)."""
    assert step.notify is not None
    # Values from outside the runbook are escaped: a parameter cannot inject <!channel> or a link.
    text = render(step.notify.message, ctx.template_context(escape=escape_mrkdwn)).strip()
    sent = env.announce(step, text)
    return StepOutcome("succeeded", output={"to": list(step.notify.to), "text": sent})


KIND = StepKindDef(
    name="notify",
    model=NotifyAction,
    describe=describe,
    default_exercise="run",
    templates=(("notify", "message"),),
    roles=(("notify", "to", "*"),),
    texts={"message": ("notify", "message")},
    execute=execute,
)
