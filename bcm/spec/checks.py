"""Checking a runbook document: every problem at once, each at its place.

As orquesta's ``inspect()``, three separate checks feed one sorted list of problems:

- :func:`inspect_syntax`: the document against the models (keys, types, durations, step kinds);
- :func:`inspect_semantics`: cross-references, within the runbook and against the catalog (roles,
  services, targets against the BIA, step ids, ``needs``, dependency cycles, obligations and the
  steps that fulfil them);
- :func:`inspect_expressions`: templates and ``when`` expressions (syntax, names, declared
  parameters, existing steps).

The last two read an outline of the document (:mod:`bcm.spec.outline`), not the model, so they run
even when the model does not validate: a misspelled ``needs`` is reported in the same pass as a bad
duration. They say nothing about a value the model refused (a role that does not match the role
pattern is not also an unknown role), and judge the step graph only when all of it is readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bcm.durations import format_duration
from bcm.spec.catalog import Catalog
from bcm.spec.graph import find_cycle, step_dependencies
from bcm.spec.models import Runbook
from bcm.spec.obligation_checks import inspect_obligations
from bcm.spec.outline import RunbookOutline, StepOutline, outline_runbook
from bcm.spec.problems import Findings, Path_, Problem, did_you_mean, unknown
from bcm.spec.validation import Checked, check_model
from bcm.spec.yamlsource import YamlDocument
from bcm.templates import check_template
from bcm.vocabulary import INCIDENT_PHASES


@dataclass(frozen=True)
class Inspection:
    """What the checks found in a runbook document.

    Attributes:
        runbook: the model; None when the document does not validate (there may be other
            problems even when it does).
        problems: every problem found, sorted.
    """

    runbook: Runbook | None
    problems: list[Problem]


def inspect_runbook(doc: YamlDocument, file: str, catalog: Catalog, lines: Sequence[str]) -> Inspection:
    """Run every check on a runbook document.

    Args:
        doc: the document as read, with its source map.
        file: the file as problems name it.
        catalog: the services and roles the runbook refers to.
        lines: the document's text, line by line (block scalars' templates are placed with it).
    """
    unsupported = _unsupported_version(doc, file)
    if unsupported is not None:
        return Inspection(None, [unsupported])  # another format: nothing else can be judged
    syntax = inspect_syntax(doc, file)
    outline = outline_runbook(doc.data)
    findings = Findings(file, doc.source, syntax.reported)
    inspect_semantics(outline, catalog, findings)
    inspect_expressions(outline, findings, lines)
    return Inspection(syntax.value, sorted([*syntax.problems, *findings.problems]))


def _unsupported_version(doc: YamlDocument, file: str) -> Problem | None:
    if not isinstance(doc.data, dict) or doc.data.get("version", 1) == 1:
        return None
    line, col = doc.source.locate(("version",))
    return Problem(
        file,
        line,
        col,
        "version",
        f"unsupported version {doc.data.get('version')!r}: this bcm reads runbook format version 1",
    )


# --------------------------------------------------------------------------- syntax


def inspect_syntax(doc: YamlDocument, file: str) -> Checked[Runbook]:
    """The document against the runbook model: unknown and missing keys, types, step kinds."""
    return check_model(Runbook, doc, file)


# --------------------------------------------------------------------------- semantics


def inspect_semantics(outline: RunbookOutline, catalog: Catalog, findings: Findings) -> None:
    """Cross-references: roles and services in the catalog, targets within the BIA, step ids,
    ``needs``, dependency cycles, obligations and ``fulfils``."""
    for path, role in outline.roles:
        findings.check_role(path, role, catalog.roles)
    for i, service_id in outline.services:
        if service_id not in catalog.services:
            findings.add(("services", i), unknown("service", service_id, catalog.services))
    _check_targets(outline, catalog, findings)
    first = _check_step_ids(outline, findings)
    all_ids = _ids_known(outline, findings)
    for step in outline.steps:
        for key, role in step.roles:
            findings.check_role((*step.path, *key), role, catalog.roles)
        _check_needs(step, first, findings, all_ids=all_ids)
    if all_ids:
        _check_cycles(outline, first, findings)
    inspect_obligations(outline, catalog, findings)


def _ids_known(outline: RunbookOutline, findings: Findings) -> bool:
    """Whether every step has a valid id: otherwise a name that is not a step id may be one."""
    return outline.steps_complete and not any(findings.was_reported((*step.path, "id")) for step in outline.steps)


def _parameters_known(outline: RunbookOutline, findings: Findings) -> bool:
    """Whether every parameter is declared under a valid name in a ``parameters`` mapping."""
    return (
        outline.parameters_complete
        and not findings.was_reported(("parameters",))
        and not any(findings.was_reported(("parameters", name, "[key]")) for name in outline.parameters)
    )


def _check_targets(outline: RunbookOutline, catalog: Catalog, findings: Findings) -> None:
    services = [catalog.services[s] for _, s in outline.services if s in catalog.services]
    for name, target in outline.targets.items():
        for service in services:
            if name == "rto" and target > service.mtpd:
                findings.add(
                    ("targets", "rto"),
                    f"RTO {format_duration(target)} exceeds the MTPD of service '{service.id}' "
                    f"({format_duration(service.mtpd)}): recovery must come before the disruption "
                    "becomes intolerable",
                )
            elif target > getattr(service, name):
                findings.add(
                    ("targets", name),
                    f"{name.upper()} {format_duration(target)} is looser than the BIA of service '{service.id}' "
                    f"({format_duration(getattr(service, name))}): a runbook may tighten a target, not loosen it",
                )


def _check_step_ids(outline: RunbookOutline, findings: Findings) -> dict[str, StepOutline]:
    """Report ids used twice; return the first step with each id."""
    first: dict[str, StepOutline] = {}
    for step in outline.steps:
        if step.id is None:
            continue
        if step.id in first:
            first_line = findings.source.locate((*first[step.id].path, "id"))[0]
            findings.add((*step.path, "id"), f"duplicate step id '{step.id}' (first used on line {first_line})")
            continue
        first[step.id] = step
    return first


def _check_needs(step: StepOutline, first: dict[str, StepOutline], findings: Findings, *, all_ids: bool) -> None:
    for j, need in step.needs:
        path = (*step.path, "needs", j)
        needed = first.get(need)
        if needed is None and not all_ids:
            continue  # perhaps the id of a step whose id is missing or invalid
        if needed is None:
            known = ", ".join(first) or "none"
            findings.add(path, f"unknown step '{need}'{did_you_mean(need, first)} (known: {known})")
        elif need == step.id:
            findings.add(path, f"step '{step.id}' cannot need itself")
        elif step.known_phase and needed.known_phase and not _may_need(step.phase, needed.phase):
            findings.add(
                path,
                f"step '{need}' is in phase {needed.phase}, which does not run before {step.phase}: "
                f"{_phase_rule(step.phase)}",
            )


def _may_need(phase: str, needed_phase: str) -> bool:
    if phase == "prevention" or needed_phase == "prevention":
        return phase == needed_phase
    if phase == "recovery":
        return True
    return needed_phase in ("communication", "response")


def _phase_rule(phase: str) -> str:
    if phase == "prevention":
        return "prevention steps run as readiness checks and can only need other prevention steps"
    return "communication and response run together; recovery runs after response"


def _check_cycles(outline: RunbookOutline, first: dict[str, StepOutline], findings: Findings) -> None:
    for phases in (("prevention",), INCIDENT_PHASES):
        steps = [step for step in outline.steps if step.phase in phases]
        ids = [step.id for step in steps]
        if len(set(ids)) < len(ids) or not all(step.needs_readable for step in steps):
            # A step whose id is used twice, or whose needs are not a list of ids, has no known
            # place in the graph: a cycle found without it could be one that is not there.
            continue
        by_phase: dict[str, list[tuple[str, list[str]]]] = {}
        for step in steps:
            by_phase.setdefault(step.phase, []).append((str(step.id), [need for _, need in step.needs]))
        cycle = find_cycle(step_dependencies(by_phase, phases=phases))
        if cycle:
            at: Path_ = first[cycle[0]].path if cycle[0] in first else ("phases",)
            findings.add(
                (*at, "needs"),
                f"dependency cycle: {' → '.join(cycle)} (a step without needs follows the one written before it)",
            )


# --------------------------------------------------------------------------- expressions


class _AnyName(frozenset[str]):
    """Holds every name: what templates are checked against when the parameters or step ids
    cannot all be read, so that none is called undeclared for a mistake reported elsewhere."""

    def __contains__(self, name: object) -> bool:
        return True


_ANY_NAME = _AnyName()


def inspect_expressions(outline: RunbookOutline, findings: Findings, lines: Sequence[str]) -> None:
    """Templates and ``when`` expressions (of steps and obligations): syntax, names, declared
    parameters, existing steps."""
    params = outline.parameters if _parameters_known(outline, findings) else _ANY_NAME
    steps = outline.step_ids() if _ids_known(outline, findings) else _ANY_NAME
    if outline.channel:
        _check_template(findings, lines, ("communication", "channel"), outline.channel, params, steps)
    for step in outline.steps:
        for key, text in step.templates:
            _check_template(findings, lines, (*step.path, *key), text, params, steps)
        if step.when is not None:
            _check_template(findings, lines, (*step.path, "when"), step.when, params, steps, expression=True)
    for entry in outline.obligations:
        if entry.when is not None:
            _check_template(findings, lines, (*entry.path, "when"), entry.when, params, steps, expression=True)


def _check_template(
    findings: Findings,
    lines: Sequence[str],
    path: Path_,
    text: str,
    params: frozenset[str],
    steps: frozenset[str],
    *,
    expression: bool = False,
) -> None:
    issues = check_template(text, params=params, steps=steps, expression=expression)
    if not issues:
        return
    line, col = findings.source.locate(path)
    block = path in findings.source.block_scalars
    for issue in issues:
        if block:
            # A block scalar's text starts on the line after its `|` or `>` indicator.
            at_line = line + issue.line
            content = lines[at_line - 1] if at_line - 1 < len(lines) else ""
            at_col = len(content) - len(content.lstrip()) + 1
        else:
            at_line, at_col = line + issue.line - 1, col if issue.line == 1 else 1
        findings.add_at(path, at_line, at_col, issue.message)
