"""Runbook format version 1 and the catalog, as frozen pydantic models.

These models check shape and types. Cross-references (roles, services, step ids, templates,
cycles, obligations) need the whole library and are checked in :mod:`bcm.spec.checks`. Execution code only
ever receives instances of these models, never raw dicts.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from bcm.kinds import KINDS, StepKindDef
from bcm.kinds.approve import ApproveAction as ApproveAction
from bcm.kinds.base import Duration as Duration
from bcm.kinds.base import Model as Model
from bcm.kinds.base import RoleId as RoleId
from bcm.kinds.base import model_value
from bcm.kinds.call import EntryPoint
from bcm.kinds.http import HttpAction as HttpAction
from bcm.kinds.manual import ManualAction as ManualAction
from bcm.kinds.notify import NotifyAction as NotifyAction
from bcm.kinds.run import ArgvItem
from bcm.spec.obligations import ObligationId, PeriodText
from bcm.vocabulary import PHASES, Milestone, Severity

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
ParamName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$", max_length=64)]

# --------------------------------------------------------------------------- steps
# Each kind's configuration model, description, templates and roles are in its module in
# bcm.kinds; a step has one field per kind (the YAML key), typed with that module's model.


class Step(Model):
    """One step: exactly one kind (run, http, call, notify, approve, manual, wait) and common keys."""

    id: Slug
    title: str | None = None
    run: list[ArgvItem] | None = Field(default=None, min_length=1)
    http: HttpAction | None = None
    call: EntryPoint | None = None
    with_: dict[str, Any] | None = Field(default=None, alias="with")
    notify: NotifyAction | None = None
    approve: ApproveAction | None = None
    manual: ManualAction | None = None
    wait: Duration | None = None
    needs: list[Slug] = Field(default_factory=list)
    when: str | None = None
    retries: Annotated[int, Field(ge=0, le=20)] = 0
    retry_delay: Duration = timedelta(seconds=10)
    timeout: Duration | None = None
    marks: Milestone | None = None
    fulfils: list[ObligationId] = Field(default_factory=list)
    on_failure: Literal["stop", "continue"] = "stop"
    exercise: Literal["simulate", "run", "skip"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in KINDS if getattr(self, k, None) is not None]
        if len(kinds) != 1:
            found = f" (found: {', '.join(kinds)})" if kinds else ""
            raise ValueError(f"a step needs exactly one of {', '.join(KINDS)}{found}")
        if self.with_ is not None and self.call is None:
            raise ValueError("'with' gives keyword arguments to 'call' and needs a 'call' key")
        return self

    @property
    def kind(self) -> str:
        """The step kind: run, http, call, notify, approve, manual or wait."""
        return next(k for k in KINDS if getattr(self, k, None) is not None)

    @property
    def kind_def(self) -> StepKindDef:
        """The step's kind in the table (:data:`bcm.kinds.KINDS`)."""
        return KINDS[self.kind]

    @property
    def exercise_behaviour(self) -> str:
        """What the step does in exercise mode (simulate for run/http/call by default)."""
        return self.exercise if self.exercise is not None else self.kind_def.default_exercise

    @property
    def person_role(self) -> str | None:
        """The role that must answer an approve or manual step; None for automated steps."""
        person = self.kind_def.person
        return None if person is None else model_value(self, person.role)

    @property
    def person_prompt(self) -> str:
        """The question (approve) or instructions (manual) put to the person."""
        person = self.kind_def.person
        return "" if person is None else str(model_value(self, person.prompt))

    @property
    def person_timeout(self) -> timedelta | None:
        """How long an approve or manual step waits for its person."""
        person = self.kind_def.person
        return None if person is None else model_value(self, person.timeout)

    @property
    def label(self) -> str:
        """The title, or the id when there is none."""
        return self.title or self.id


# --------------------------------------------------------------------------- runbook


class Parameter(Model):
    """A typed input given when the runbook is triggered."""

    type: Literal["string", "integer", "number", "boolean", "enum"] = "string"
    required: bool = False
    default: str | int | float | bool | None = None
    values: list[str] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum parameter lists its allowed 'values'")
        if self.type != "enum" and self.values is not None:
            raise ValueError("'values' is only for parameters of type enum")
        if self.default is not None:
            from bcm.spec.params import coerce_parameter

            coerce_parameter(self, self.default)
        return self


class Review(Model):
    """When the runbook was last reviewed and how often it must be."""

    last_reviewed: date
    interval: Duration = timedelta(days=365)
    approved_by: RoleId | None = None

    def due(self) -> date:
        """The date the next review is due."""
        return self.last_reviewed + self.interval


class Targets(Model):
    """Recovery targets; default from the services' BIA."""

    rto: Duration | None = None
    rpo: Duration | None = None


class Communication(Model):
    """The incident channel and the update cadence."""

    channel: str | None = None
    cadence: Duration | None = None


class RunbookObligation(Model):
    """A deadline clock of the catalog (``catalog/obligations.yaml``) that may apply to a run: it
    applies when ``when`` (an expression on params and step outputs) is true or absent, starts at
    the catalog's milestone and runs for the catalog's period, or for ``period`` when the catalog
    marks the obligation adjustable (a programme's own target, never a period set by law)."""

    obligation: ObligationId
    when: str | None = None
    period: PeriodText | None = None


class Phases(Model):
    """Steps by phase: prevention (readiness checks), communication, response, recovery."""

    prevention: list[Step] = Field(default_factory=list)
    communication: list[Step] = Field(default_factory=list)
    response: list[Step] = Field(default_factory=list)
    recovery: list[Step] = Field(default_factory=list)

    def items(self) -> list[tuple[str, list[Step]]]:
        """(phase, steps) pairs in phase order."""
        return [(name, getattr(self, name)) for name in PHASES]


class Runbook(Model):
    """A continuity runbook, format version 1."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
        title="bcm runbook (format version 1)",
    )

    version: Literal[1]
    id: Slug
    title: str = Field(min_length=1)
    owner: RoleId
    severity: Severity
    services: list[Slug] = Field(default_factory=list)
    description: str | None = None
    review: Review | None = None
    targets: Targets = Field(default_factory=Targets)
    parameters: dict[ParamName, Parameter] = Field(default_factory=dict)
    communication: Communication = Field(default_factory=Communication)
    obligations: list[RunbookObligation] = Field(default_factory=list)
    phases: Phases

    def steps(self, *, include_prevention: bool = True) -> list[tuple[str, Step]]:
        """Every (phase, step) in phase and written order."""
        return [
            (phase, step)
            for phase, steps in self.phases.items()
            if include_prevention or phase != "prevention"
            for step in steps
        ]

    def step(self, step_id: str) -> Step:
        """The step with ``step_id``.

        Raises:
            KeyError: when there is no such step.
        """
        for _, step in self.steps():
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def fulfilled_by(self, obligation_id: str) -> list[str]:
        """The ids of the steps that declare ``fulfils: [obligation_id]``, in phase and written order."""
        return [step.id for _, step in self.steps() if obligation_id in step.fulfils]


# --------------------------------------------------------------------------- catalog


class Person(Model):
    """Someone who holds a role."""

    name: str
    slack_user: str | None = None
    email: str | None = None

    def matches(self, who: str) -> bool:
        """True when ``who`` names this person (name, Slack user id or email, any case)."""
        probe = who.strip().lower()
        return probe in {v.lower() for v in (self.name, self.slack_user, self.email) if v}


class Role(Model):
    """A stakeholder role with its members and alternates."""

    name: str
    description: str | None = None
    slack_channel: str | None = None
    email: str | None = None
    members: list[Person] = Field(min_length=1)
    alternates: list[Person] = Field(default_factory=list)

    def holder(self, who: str) -> Person | None:
        """The member or alternate named by ``who``, if any."""
        return next((p for p in [*self.members, *self.alternates] if p.matches(who)), None)


class Stakeholders(Model):
    """``runbooks/catalog/stakeholders.yaml``."""

    version: Literal[1]
    roles: dict[RoleId, Role]


class Dependencies(Model):
    """What a service depends on (BIA)."""

    services: list[Slug] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    suppliers: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    technology: list[str] = Field(default_factory=list)
    data: list[str] = Field(default_factory=list)


class Impact(Model):
    """How impact grows with time: the level reached after a duration of disruption."""

    after: Duration
    level: Literal["minimal", "moderate", "significant", "severe"]
    description: str


class BiaApproval(Model):
    """Who approved the business-impact analysis, and when."""

    approved_by: RoleId
    approved_on: date


class Service(Model):
    """A prioritised service with its business-impact analysis."""

    id: Slug
    name: str
    owner: RoleId
    tier: Annotated[int, Field(ge=1, le=4)]
    rto: Duration
    rpo: Duration
    mtpd: Duration
    mbco: str
    recovery_strategy: Literal["backup-restore", "pilot-light", "warm-standby", "active-active"]
    dependencies: Dependencies = Field(default_factory=Dependencies)
    impact: list[Impact] = Field(default_factory=list)
    bia: BiaApproval | None = None

    @property
    def critical(self) -> bool:
        """Tier 1 and 2 services are critical."""
        return self.tier <= 2


class Services(Model):
    """``runbooks/catalog/services.yaml``."""

    version: Literal[1]
    services: list[Service]
