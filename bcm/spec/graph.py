"""The dependency graph of a runbook's steps, shared by validation and the engine's plan.

Rules (from the runbook format): within a phase, a step without ``needs`` follows the step written
before it; a step with ``needs`` waits for exactly those steps. Prevention steps are readiness
checks: each stands alone unless its ``needs`` names others, so one failed check never hides the
result of the next. Communication and response start
together; every recovery step also waits for the whole response phase. Prevention steps run only
as readiness checks and form a graph of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bcm.spec.models import Runbook
from bcm.vocabulary import INCIDENT_PHASES

StepNeeds = tuple[str, Sequence[str]]
"""A step id and the ids its ``needs`` names."""


def dependencies(runbook: Runbook, *, phases: tuple[str, ...] = INCIDENT_PHASES) -> dict[str, tuple[str, ...]]:
    """Map each step id in ``phases`` to the step ids it waits for, in a stable order.

    Unknown ids in ``needs`` are kept (validation reports them); callers that run steps only see
    validated runbooks.
    """
    return step_dependencies(
        {phase: [(step.id, step.needs) for step in steps] for phase, steps in runbook.phases.items()},
        phases=phases,
    )


def step_dependencies(
    steps: Mapping[str, Sequence[StepNeeds]], *, phases: tuple[str, ...] = INCIDENT_PHASES
) -> dict[str, tuple[str, ...]]:
    """:func:`dependencies` from ``(id, needs)`` pairs by phase, as written (checks use it before
    the runbook is a model)."""
    deps: dict[str, tuple[str, ...]] = {}
    response_ids = [step_id for step_id, _ in steps.get("response", ())] if "recovery" in phases else []
    for phase in phases:
        previous: str | None = None
        for step_id, needs in steps.get(phase, ()):
            wanted = list(needs)
            if not wanted and previous and phase != "prevention":  # readiness checks stand alone
                wanted = [previous]
            if phase == "recovery":
                wanted += [r for r in response_ids if r not in wanted]
            deps[step_id] = tuple(dict.fromkeys(wanted))
            previous = step_id
    return deps


def find_cycle(deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in deps.get(node, ()):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
