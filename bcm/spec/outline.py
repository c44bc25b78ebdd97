"""The well-formed parts of a runbook document, read from the YAML data rather than the model.

The cross-reference and template checks read an outline, not a :class:`bcm.spec.models.Runbook`,
so they still run when the model does not validate: a misspelled ``needs`` is reported together
with a bad duration elsewhere in the file, not after it is fixed. An outline keeps only what has
the expected shape (a step mapping, a string role, a list of needs); whatever is shaped wrongly is
left out, and the model's own problems say what is wrong with it.

Every part keeps its node path, so problems point at what was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from bcm.durations import parse_duration
from bcm.kinds import KINDS
from bcm.kinds.base import values_at
from bcm.spec.models import Runbook
from bcm.spec.problems import Path_
from bcm.vocabulary import PHASES

_RUNBOOK_KEYS = frozenset(field.alias or name for name, field in Runbook.model_fields.items())


@dataclass(frozen=True)
class StepOutline:
    """One step mapping as written.

    Attributes:
        phase: the key it is listed under (possibly not a phase: the model reports that).
        index: its position in that list.
        id: its id, when it is a string.
        needs: ``(position, step id)`` of each string in ``needs``.
        needs_readable: whether ``needs`` is absent or a list of strings only; otherwise the
            step's place in the step graph is not known.
        roles: ``(path below the step, role)`` of each role it names.
        templates: ``(path below the step, text)`` of each string that may hold a template.
        when: its ``when`` expression, when it is a string.
        fulfils: ``(position, obligation id)`` of each string in ``fulfils``.
    """

    phase: str
    index: int
    id: str | None
    needs: tuple[tuple[int, str], ...]
    needs_readable: bool
    roles: tuple[tuple[Path_, str], ...]
    templates: tuple[tuple[Path_, str], ...]
    when: str | None
    fulfils: tuple[tuple[int, str], ...] = ()

    @property
    def path(self) -> Path_:
        """The step's node path: ``("phases", "response", 1)``."""
        return ("phases", self.phase, self.index)

    @property
    def known_phase(self) -> bool:
        """Whether it is listed under one of the four phases."""
        return self.phase in PHASES


@dataclass(frozen=True)
class ObligationOutline:
    """One entry of the runbook's ``obligations`` list as written.

    Attributes:
        index: its position in the list.
        id: the obligation it names (``obligation:``), when that is a string.
        when: its ``when`` expression, when it is a string.
        period: whether it sets its own ``period``.
    """

    index: int
    id: str | None
    when: str | None
    period: bool

    @property
    def path(self) -> Path_:
        """The entry's node path: ``("obligations", 2)``."""
        return ("obligations", self.index)


@dataclass(frozen=True)
class RunbookOutline:
    """The parts of a runbook document the cross-reference and template checks read.

    Attributes:
        roles: ``(path, role)`` for the runbook's own roles (``owner``, ``review.approved_by``).
        services: ``(position, service id)`` of each string in ``services``.
        targets: the targets written as valid durations, by name (``rto``, ``rpo``).
        parameters: the parameter names declared (however well their declarations are written).
        channel: the incident channel template, when it is a string.
        steps: every step mapping, phases in their running order, then any other key of
            ``phases`` in the order written.
        steps_complete: whether every step is a mapping with a string id in a list under
            ``phases``; otherwise a step is missing from ``steps`` or has no id, and no name can
            be said not to be a step of this runbook.
        parameters_complete: whether ``parameters`` is a mapping, or absent from a document
            whose every top-level key is known (a misspelled ``parameter:`` declares them too).
        obligations: every entry of ``obligations`` that is a mapping.
        obligations_complete: whether ``obligations`` is absent (from a document whose every
            top-level key is known), or a list of mappings each naming its obligation with a
            string; otherwise no id a step ``fulfils`` can be said not to be the runbook's.
    """

    roles: tuple[tuple[Path_, str], ...]
    services: tuple[tuple[int, str], ...]
    targets: dict[str, timedelta]
    parameters: frozenset[str]
    channel: str | None
    steps: tuple[StepOutline, ...]
    steps_complete: bool
    parameters_complete: bool
    obligations: tuple[ObligationOutline, ...] = ()
    obligations_complete: bool = True

    def step_ids(self) -> frozenset[str]:
        """Every step id written in the document."""
        return frozenset(step.id for step in self.steps if step.id is not None)


def outline_runbook(data: object) -> RunbookOutline:
    """Read the well-formed parts of a runbook document (``data`` as the YAML reader built it)."""
    top = data if isinstance(data, dict) else {}
    own_roles = (("owner",), ("review", "approved_by"))
    roles = [(path, role) for path in own_roles if isinstance(role := _get(top, path), str)]
    channel = _get(top, ("communication", "channel"))
    phases = top.get("phases")
    steps = tuple(_steps(phases))
    parameters = top.get("parameters")
    written = top.get("obligations")
    obligations = tuple(_obligations(written))
    return RunbookOutline(
        roles=tuple(roles),
        services=tuple(_strings(top.get("services"))),
        targets=_targets(top.get("targets")),
        parameters=frozenset(parameters) if isinstance(parameters, dict) else frozenset(),
        channel=channel if isinstance(channel, str) else None,
        steps=steps,
        steps_complete=all(step.id is not None for step in steps) and len(steps) == _count_items(phases),
        parameters_complete=isinstance(parameters, dict) or ("parameters" not in top and set(top) <= _RUNBOOK_KEYS),
        obligations=obligations,
        obligations_complete=(
            ("obligations" not in top and set(top) <= _RUNBOOK_KEYS)
            or (isinstance(written, list) and len(obligations) == len(written) and all(o.id for o in obligations))
        ),
    )


def _obligations(value: object) -> Iterator[ObligationOutline]:
    if not isinstance(value, list):
        return
    for index, entry in enumerate(value):
        if isinstance(entry, dict):
            ob_id, when = entry.get("obligation"), entry.get("when")
            yield ObligationOutline(
                index=index,
                id=ob_id if isinstance(ob_id, str) else None,
                when=when if isinstance(when, str) else None,
                period="period" in entry,
            )


def _count_items(phases: object) -> int:
    """How many items the lists under ``phases`` hold; -1 when something there is not a list."""
    if phases is None:
        return 0
    if not isinstance(phases, dict) or not all(isinstance(v, list) or v is None for v in phases.values()):
        return -1
    return sum(len(v) for v in phases.values() if v is not None)


def _steps(phases: object) -> Iterator[StepOutline]:
    if not isinstance(phases, dict):
        return
    names = [p for p in PHASES if p in phases] + [p for p in phases if p not in PHASES]
    for phase in names:
        steps = phases[phase]
        if not isinstance(steps, list):
            continue
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                yield _step(phase, index, step)


def _step(phase: str, index: int, step: dict[str, object]) -> StepOutline:
    step_id = step.get("id")
    needs = step.get("needs")
    when = step.get("when")
    templates: list[tuple[Path_, str]] = list(values_at(step, ("title",)))
    roles: list[tuple[Path_, str]] = []
    for kind in KINDS.values():  # where each kind has templates and roles: bcm.kinds
        # A path whose first key the step does not have holds nothing: skip it (the common case).
        for path in kind.templates:
            if path[0] in step:
                templates += values_at(step, path)
        for path in kind.roles:
            if path[0] in step:
                roles += values_at(step, path)
    return StepOutline(
        phase=phase,
        index=index,
        id=step_id if isinstance(step_id, str) else None,
        needs=tuple(_strings(needs)),
        needs_readable=needs is None or (isinstance(needs, list) and all(isinstance(n, str) for n in needs)),
        roles=tuple(roles),
        templates=tuple(templates),
        when=when if isinstance(when, str) else None,
        fulfils=tuple(_strings(step.get("fulfils"))),
    )


def _get(mapping: dict[str, object], path: Path_) -> object:
    """The value at ``path`` below ``mapping``; None when any step of the way is not a mapping."""
    value: object = mapping
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(str(key))
    return value


def _strings(value: object) -> Iterable[tuple[int, str]]:
    """``(position, item)`` of the strings in a list; nothing when ``value`` is not a list."""
    if not isinstance(value, list):
        return ()
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _targets(value: object) -> dict[str, timedelta]:
    if not isinstance(value, dict):
        return {}
    found = {}
    for name in ("rto", "rpo"):
        try:
            found[name] = parse_duration(value[name])
        except (KeyError, ValueError):
            continue  # not written, or not a duration (the model reports that)
    return found
