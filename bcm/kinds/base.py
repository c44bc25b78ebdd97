"""The step-kind table's entry type, and what every kind shares.

A step kind is one module in :mod:`bcm.kinds` that declares one :class:`StepKindDef`: its name
(the YAML key), its configuration model, how it executes and simulates, how it describes itself,
where its templates and roles are, and whether it waits for a person. The engine, the loader's
checks and the CLI read the table (:data:`bcm.kinds.KINDS`) instead of testing each kind.

Template and role locations are **data**: paths below the step mapping, such as
``("notify", "message")``. In a path, ``"*"`` stands for each item of a list or each value of a
mapping, and ``"**"`` for the value and everything nested in it. The same path is read from the
YAML document as written (:func:`values_at`, for the loader's checks, which run even when the
model does not validate) and from the validated step (:func:`model_value`).

This package sits below the spec: it refers to :class:`bcm.spec.models.Step` and
:class:`bcm.engine.context.RunContext` only for typing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from bcm.durations import DURATION_PATTERN, parse_duration, to_duration_string
from bcm.errors import TemplateRenderError
from bcm.templates import render

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step

#: A location below a step mapping: keys, list positions, ``"*"`` and ``"**"``.
KindPath = tuple[str | int, ...]

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(to_duration_string, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "description": "a duration: 90s, 15m, 4h, 2d"}),
]

RoleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]

#: Longest output text a step keeps (stdout, stderr, a response body).
MAX_TEXT = 4000


class Model(BaseModel):
    """Base of every spec model: unknown keys are errors and instances never change."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
    """Collaborators of the automated kinds (the engine provides them).

    Attributes:
        announce: sends a notify step's message, given its rendered text, and returns the text as
            sent (the run's communication builds the message, which also restarts the cadence
            clock; see :func:`bcm.engine.actions.action_env`).
        sleep: how wait steps wait.
        extra_env: more environment for run steps.
        started_process: told the pid of a run step's command as soon as it starts (the runner
            records it, so a resumed run can check the command is not still running).
        elapsed: how long the step has been going, in seconds, from its recorded start (non-zero
            when a resumed run goes on with it: a wait then sleeps only what is left).
    """

    announce: Callable[[Step, str], str]
    sleep: Callable[[float], None] = time.sleep
    extra_env: dict[str, str] = field(default_factory=dict)
    started_process: Callable[[Step, int], None] | None = None
    elapsed: Callable[[Step], float] | None = None


Execute = Callable[["Step", "RunContext", ActionEnv], StepOutcome]
Simulate = Callable[["Step", "RunContext"], StepOutcome]


@dataclass(frozen=True)
class PersonAsk:
    """Where a person kind keeps what it asks: paths below the step, as for templates.

    Attributes:
        role: the role that must answer.
        prompt: the text put to the person (a template).
        timeout: how long the step waits for its person.
    """

    role: KindPath
    prompt: KindPath
    timeout: KindPath


@dataclass(frozen=True)
class StepKindDef:
    """One step kind: one entry of the table.

    Attributes:
        name: the kind, which is also its key in a step mapping (``run``, ``notify``...).
        model: the pydantic model of its configuration; None when the value is plain (an argv, an
            entry point, a duration).
        describe: one line saying what a step of this kind does (may hold templates).
        default_exercise: what a step of this kind does in exercise mode unless it says.
        templates: where its templates are, below the step mapping.
        roles: where the roles it names are, below the step mapping.
        texts: the texts people read, by name (``message``, ``prompt``, ``instructions``): a dry
            run renders them.
        person: what it asks a person; None for automated kinds.
        execute: runs one attempt; None for person kinds (the runner waits for their decision).
        simulate: what it does when simulated; None: it says what it would do.
    """

    name: str
    model: type[BaseModel] | None
    describe: Callable[[Step], str]
    default_exercise: Literal["simulate", "run"]
    templates: tuple[KindPath, ...] = ()
    roles: tuple[KindPath, ...] = ()
    texts: Mapping[str, KindPath] = field(default_factory=dict)
    person: PersonAsk | None = None
    execute: Execute | None = None
    simulate: Simulate | None = None

    @property
    def waits_for_person(self) -> bool:
        """Whether a step of this kind waits for a person (approve, manual)."""
        return self.person is not None

    def execute_step(self, step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
        """Run one attempt at ``step``; a template that does not render fails the step.

        Raises:
            ValueError: for a person kind, which is not executed but waited for.
        """
        if self.execute is None:
            raise ValueError(f"step '{step.id}' of kind {self.name} is not automated")
        try:
            return self.execute(step, ctx, env)
        except TemplateRenderError as exc:
            return StepOutcome("failed", error=str(exc))

    def simulate_step(self, step: Step, ctx: RunContext) -> StepOutcome:
        """Exercise mode: say what the step would do, touch nothing."""
        if self.simulate is not None:
            return self.simulate(step, ctx)
        described = self.describe(step)
        try:
            would = render(described, ctx.template_context())
        except TemplateRenderError:
            would = described
        return StepOutcome("succeeded", output={"simulated": True, "would": would}, reason="exercise: simulated")


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_TEXT` characters, with a marker when cut."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 20] + "\n...[truncated]"


def values_at(data: object, path: KindPath, *, kind: type = str) -> Iterator[tuple[KindPath, Any]]:
    """``(path, value)`` of each value of type ``kind`` at ``path`` in a document as written.

    Whatever is not shaped as the path expects (a mapping where a key follows, a list or mapping
    where ``"*"`` follows) yields nothing: the model reports what is wrong with it.
    """
    yield from _walk(data, path, (), kind)


def _walk(value: object, rest: KindPath, here: KindPath, kind: type) -> Iterator[tuple[KindPath, Any]]:
    if not rest:
        if isinstance(value, kind):
            yield here, value
        return
    head, tail = rest[0], rest[1:]
    if head == "**":
        yield from _walk(value, tail, here, kind)
        for key, item in _children(value):
            yield from _walk(item, rest, (*here, key), kind)
    elif head == "*":
        for key, item in _children(value):
            yield from _walk(item, tail, (*here, key), kind)
    elif isinstance(value, dict) and head in value:
        yield from _walk(value[head], tail, (*here, head), kind)


def _children(value: object) -> list[tuple[str | int, object]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return list(enumerate(value))
    return []


def model_value(model: object, path: KindPath) -> Any:
    """The value at a plain path (no wildcards) in a validated model; None when a part is unset."""
    value: Any = model
    for key in path:
        if value is None:
            return None
        value = getattr(value, str(key))
    return value
