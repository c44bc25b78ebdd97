"""The dependency graph of a runbook's steps, shared by validation and the engine's plan.

Rules (from the runbook format): within a phase, a step without ``needs`` follows the step written
before it; a step with ``needs`` waits for exactly those steps. Prevention steps are readiness
checks: each stands alone unless its ``needs`` names others, so one failed check never hides the
result of the next. Communication and response start
together; every recovery step also waits for the whole response phase. Prevention steps run only
as readiness checks and form a graph of their own.
"""

from __future__ import annotations

from bcm.spec.models import Runbook
from bcm.vocabulary import INCIDENT_PHASES


def dependencies(runbook: Runbook, *, phases: tuple[str, ...] = INCIDENT_PHASES) -> dict[str, tuple[str, ...]]:
    """Map each step id in ``phases`` to the step ids it waits for, in a stable order.

    Unknown ids in ``needs`` are kept (validation reports them); callers that run steps only see
    validated runbooks.
    """
    deps: dict[str, tuple[str, ...]] = {}
    response_ids = [s.id for s in runbook.phases.response] if "recovery" in phases else []
    for phase in phases:
        previous: str | None = None
        for step in getattr(runbook.phases, phase):
            if phase == "prevention":
                wanted = list(step.needs)  # readiness checks are independent unless needs says so
            else:
                wanted = list(step.needs) if step.needs else [previous] if previous else []
            if phase == "recovery":
                wanted += [r for r in response_ids if r not in wanted]
            deps[step.id] = tuple(dict.fromkeys(wanted))
            previous = step.id
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
