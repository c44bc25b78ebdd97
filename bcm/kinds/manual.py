"""``manual: {by: role, instructions, timeout?}``: a task a person does and confirms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from bcm.kinds.base import Duration, Model, RoleId, StepKindDef
from bcm.kinds.people import person_ask

if TYPE_CHECKING:
    from bcm.spec.models import Step


class ManualAction(Model):
    """A task a person in role ``by`` does and confirms."""

    by: RoleId
    instructions: str = Field(min_length=1)
    timeout: Duration | None = None


def describe(step: Step) -> str:
    """``manual by ROLE``."""
    assert step.manual is not None
    return f"manual by {step.manual.by}"


KIND = StepKindDef(
    name="manual",
    model=ManualAction,
    describe=describe,
    default_exercise="run",
    templates=(("manual", "instructions"),),
    roles=(("manual", "by"),),
    texts={"instructions": ("manual", "instructions")},
    person=person_ask("manual", "instructions"),
)
