"""The step graph of a run: pure Python, no Prefect.

A plan knows the order steps were written in, what each waits for, and which are ready given
what has finished. Concurrency comes from readiness: every ready step may start at once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bcm.kinds import PERSON_KINDS
from bcm.spec.graph import dependencies
from bcm.spec.models import Runbook, Step
from bcm.vocabulary import INCIDENT_PHASES

__all__ = ["PERSON_KINDS", "Plan", "PlannedStep"]


@dataclass(frozen=True)
class PlannedStep:
    """A step in the plan, with its phase and what it waits for."""

    step: Step
    phase: str
    needs: tuple[str, ...]

    @property
    def id(self) -> str:
        """The step id."""
        return self.step.id

    @property
    def needs_person(self) -> bool:
        """True for steps whose kind waits for a person (approve, manual: ``waits_for_person``)."""
        return self.step.kind_def.waits_for_person


@dataclass(frozen=True)
class Plan:
    """The steps of the phases a run executes, in written order, with their dependencies."""

    steps: tuple[PlannedStep, ...]

    @classmethod
    def build(cls, runbook: Runbook, *, phases: tuple[str, ...] = INCIDENT_PHASES) -> Plan:
        """Plan ``phases`` of ``runbook`` (incident phases by default; prevention for checks)."""
        deps = dependencies(runbook, phases=phases)
        planned = [
            PlannedStep(step=step, phase=phase, needs=deps[step.id])
            for phase in phases
            for step in getattr(runbook.phases, phase)
        ]
        return cls(steps=tuple(planned))

    def get(self, step_id: str) -> PlannedStep:
        """The planned step ``step_id``."""
        for planned in self.steps:
            if planned.id == step_id:
                return planned
        raise KeyError(step_id)

    def ready(self, *, done: Collection[str], started: Collection[str]) -> list[PlannedStep]:
        """Steps not yet started whose dependencies are all done, in written order."""
        return [
            planned
            for planned in self.steps
            if planned.id not in done and planned.id not in started and all(n in done for n in planned.needs)
        ]

    def waves(self) -> list[list[str]]:
        """The steps grouped by when they can start if every step takes the same time."""
        done: set[str] = set()
        out: list[list[str]] = []
        while len(done) < len(self.steps):
            wave = [p.id for p in self.ready(done=done, started=())]
            if not wave:  # unreachable for validated runbooks (no cycles)
                break
            out.append(wave)
            done.update(wave)
        return out
