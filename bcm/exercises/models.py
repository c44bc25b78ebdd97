"""Exercise format version 1 (``runbooks/exercises/*.yaml``), as frozen pydantic models.

An exercise tests one runbook the way HSEEP describes (``bcm.vocabulary`` has the words): a
scenario, objectives each tied to a core capability and, where it can be, to something measurable
on the run's timeline, and the MSEL, the injects delivered on the exercise clock. Scripted
responses let a rehearsal run unattended. These models check shape and types; cross-references
(the runbook, its steps, roles, people, objective ids, inject numbers) are checked against the
library in :mod:`bcm.exercises.library`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator

from bcm.kinds.base import Duration, Model, RoleId
from bcm.vocabulary import (
    ExerciseType,
    InjectDelivery,
    Milestone,
    MissionArea,
)

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]

#: What an offset or measure is counted from: STARTEX or another milestone.
Origin = Milestone


class Happened(Model):
    """Something that can be seen on the timeline: a step done (succeeded) or a milestone reached."""

    # Exactly one of the two keys, for editors too.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    step: Slug | None = None
    milestone: Milestone | None = None

    @model_validator(mode="after")
    def _one(self) -> Happened:
        if (self.step is None) == (self.milestone is None):
            raise ValueError("give exactly one of 'step' (a step of the runbook) or 'milestone'")
        return self

    @property
    def label(self) -> str:
        """``step confirm-power`` or ``milestone acknowledged``."""
        return f"step {self.step}" if self.step is not None else f"milestone {self.milestone}"


# --------------------------------------------------------------------------- objectives


class MilestoneMeasure(Model):
    """A milestone reached within a time of STARTEX or of another milestone."""

    model_config = ConfigDict(title="milestone measure")

    milestone: Milestone
    within: Duration
    of: Origin = "startex"


class StepMeasure(Model):
    """A step of the runbook done (succeeded), optionally within a time of STARTEX or a milestone."""

    model_config = ConfigDict(title="step measure")

    step: Slug
    within: Duration | None = None
    of: Origin = "startex"


class CadenceMeasure(Model):
    """Stakeholder updates sent within the runbook's communication cadence.

    ``cadence: kept`` with ``at_least`` the share of updates that must be on time (default all).
    """

    model_config = ConfigDict(title="cadence measure")

    cadence: Literal["kept"]
    at_least: Annotated[float, Field(gt=0, le=1)] = 1.0


class TargetMeasure(Model):
    """A recovery target met: ``rto`` (time to recover within the RTO) or ``mtpd`` (within the MTPD)."""

    model_config = ConfigDict(title="target measure")

    target: Literal["rto", "mtpd"]


def _measure_kind(value: object) -> str | None:
    """Which measure a mapping is, by its key: one error message about the right model, not four."""
    if isinstance(value, dict):
        return next((key for key in ("milestone", "step", "cadence", "target") if key in value), None)
    return next((key for key in ("milestone", "step", "cadence", "target") if hasattr(value, key)), None)


Measure = Annotated[
    Annotated[MilestoneMeasure, Tag("milestone")]
    | Annotated[StepMeasure, Tag("step")]
    | Annotated[CadenceMeasure, Tag("cadence")]
    | Annotated[TargetMeasure, Tag("target")],
    Discriminator(
        _measure_kind,
        custom_error_type="measure",
        custom_error_message="a measure gives one of 'milestone', 'step', 'cadence' or 'target'",
    ),
]


class Objective(Model):
    """An exercise objective: a core capability, what is expected, and how it is measured."""

    id: Slug
    title: str = Field(min_length=1)
    capability: str = Field(min_length=1, max_length=80)
    measure: Measure | None = Field(
        default=None,
        description=(
            "How the run shows the objective met, one of: {milestone, within, of} (a milestone reached "
            "within a time of STARTEX or another milestone), {step, within?, of} (a runbook step done), "
            "{cadence: kept, at_least} (updates on the runbook's cadence), {target: rto | mtpd}. "
            "Without one, evaluators judge it."
        ),
        json_schema_extra={
            "examples": [
                {"milestone": "acknowledged", "within": "15m", "of": "startex"},
                {"step": "confirm-power-state", "within": "10m"},
                {"cadence": "kept", "at_least": 0.75},
                {"target": "rto"},
            ]
        },
    )
    description: str | None = None


# --------------------------------------------------------------------------- the MSEL


class Contingency(Model):
    """When a contingency inject is sent: only ``unless`` something has happened by its time (to
    put play back on track), or only ``if`` it has."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    unless: Happened | None = None
    if_: Happened | None = Field(default=None, alias="if")

    @model_validator(mode="after")
    def _one(self) -> Contingency:
        if (self.unless is None) == (self.if_ is None):
            raise ValueError("a contingency gives exactly one of 'unless' or 'if'")
        return self

    def holds(self, happened: bool) -> bool:
        """Whether the inject is sent, given whether its condition's event has happened."""
        return not happened if self.unless is not None else happened

    @property
    def event(self) -> Happened:
        """The step or milestone the condition looks at."""
        return self.unless or self.if_  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """``unless step assign-roles`` or ``if milestone acknowledged``."""
        return f"{'unless' if self.unless is not None else 'if'} {self.event.label}"


class Inject(Model):
    """One MSEL inject: delivered at its offset from STARTEX on the exercise clock."""

    number: Annotated[int, Field(ge=1, le=999)]
    at: Duration = Field(description="Offset from STARTEX on the exercise clock: 0m, 15m, 2h.")
    from_: RoleId = Field(alias="from", description="The role that sends it (usually the controller).")
    to: RoleId = Field(description="The role that receives it: a player.")
    delivery: InjectDelivery = "channel"
    message: str = Field(min_length=1)
    expected_action: str = Field(min_length=1)
    expects: Happened | None = Field(default=None, description="The step or milestone the inject should lead to.")
    objective: Slug | None = Field(default=None, description="The id of the objective the inject tests.")
    contingency: Contingency | None = Field(
        default=None, description="Send it only unless (or only if) a step or milestone has happened by its time."
    )


class Response(Model):
    """A scripted answer for unattended rehearsal: who answers a person step, after how long."""

    step: Slug
    by: str = Field(min_length=1, description="The name of a person who holds the step's role.")
    after: Duration = Field(
        default=timedelta(0),
        description="How long after the step can start (the steps it needs have ended), in exercise time.",
    )
    decision: Literal["approve", "reject"] = "approve"
    note: str | None = None


class GameDay(Model):
    """What a game day (chaos practice) states before anything is broken: the steady state it
    expects to hold, how far the fault may reach, and when the controller stops at once."""

    hypothesis: str = Field(min_length=1)
    blast_radius: str = Field(min_length=1)
    abort_when: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class Schedule(Model):
    """When the exercise is held: a cron expression in a timezone (a deployment in prefect.yaml)."""

    cron: str = Field(min_length=9)
    timezone: str = "UTC"


# --------------------------------------------------------------------------- the exercise


class Exercise(Model):
    """An HSEEP exercise of one runbook, format version 1."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
        title="bcm exercise (format version 1)",
    )

    version: Literal[1]
    id: Slug
    title: str = Field(min_length=1)
    runbook: Slug
    type: ExerciseType
    scope: str = Field(min_length=1)
    scenario: str = Field(min_length=1)
    game_day: GameDay | None = None
    mission_areas: list[MissionArea] = Field(default_factory=list)
    sponsor: RoleId
    participants: list[RoleId] = Field(min_length=1)
    evaluators: list[RoleId] = Field(min_length=1)
    controller: RoleId | None = None
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="The runbook's parameters for the exercise run."
    )
    schedule: Schedule | None = None
    objectives: list[Objective] = Field(min_length=1)
    msel: list[Inject] = Field(default_factory=list)
    responses: list[Response] = Field(default_factory=list)

    def objective(self, objective_id: str) -> Objective:
        """The objective with ``objective_id``.

        Raises:
            KeyError: when there is none.
        """
        for objective in self.objectives:
            if objective.id == objective_id:
                return objective
        raise KeyError(objective_id)

    def injects(self) -> list[Inject]:
        """The MSEL in delivery order: by offset, then number."""
        return sorted(self.msel, key=lambda i: (i.at, i.number))


__all__ = [
    "CadenceMeasure",
    "Contingency",
    "Exercise",
    "GameDay",
    "Happened",
    "Inject",
    "Measure",
    "MilestoneMeasure",
    "Objective",
    "Response",
    "Schedule",
    "StepMeasure",
    "TargetMeasure",
    "exercise_schema",
    "exercise_schema_text",
]


def exercise_schema() -> dict[str, object]:
    """The JSON Schema of exercise format version 1, for editors and CI."""
    schema = Exercise.model_json_schema(by_alias=True)
    # One level for editors: a measure is one of the four kinds (or null), not "any of (one of ...) or null".
    measure: dict[str, Any] = schema["$defs"]["Objective"]["properties"]["measure"]
    kinds, null = measure.pop("anyOf")
    measure["oneOf"] = [*kinds["oneOf"], null]
    schema["$id"] = "https://github.com/bcm-project/bcm/runbooks/exercise.schema.json"
    return schema


def exercise_schema_text() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indent, final newline."""
    return json.dumps(exercise_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
