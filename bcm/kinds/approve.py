"""``approve: {by: role, prompt, timeout, on_timeout: fail|continue}``: a person's decision.

Output ``{approved, by, note, waited_s}``; a rejection is an answer, not a failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from bcm.durations import format_duration
from bcm.kinds.base import Duration, Model, RoleId, StepKindDef
from bcm.kinds.people import person_ask

if TYPE_CHECKING:
    from bcm.spec.models import Step


class ApproveAction(Model):
    """A decision by a person holding role ``by``; output ``{approved, by, note, waited_s}``."""

    by: RoleId
    prompt: str = Field(min_length=1)
    timeout: Duration | None = None
    on_timeout: Literal["fail", "continue"] = "fail"


def describe(step: Step) -> str:
    """``approve by ROLE, timeout 30m``."""
    assert step.approve is not None
    timeout = f", timeout {format_duration(step.approve.timeout)}" if step.approve.timeout else ""
    return f"approve by {step.approve.by}{timeout}"


KIND = StepKindDef(
    name="approve",
    model=ApproveAction,
    describe=describe,
    default_exercise="run",
    templates=(("approve", "prompt"),),
    roles=(("approve", "by"),),
    texts={"prompt": ("approve", "prompt")},
    person=person_ask("approve", "prompt"),
)
