"""A runbook's obligations and the steps that fulfil them, checked against the catalog.

The top-level ``obligations:`` list names deadline clocks of ``catalog/obligations.yaml`` that may
apply to a run (``{obligation: ID, when: EXPRESSION, period: PERIOD}``); a step's ``fulfils:``
names those it fulfils. Checked here, each problem at its place (the ``when`` expressions are
checked with the steps' in :func:`bcm.spec.checks.inspect_expressions`):

- each obligation is in the catalog (the nearest id suggested), listed once, and sets its own
  ``period`` only when the catalog marks it adjustable (a programme's target, not a period set by
  law); a chained clock is listed with the one whose fulfilment starts it;
- each id a step fulfils is one of the runbook's obligations, once, of an obligation that a step
  fulfils (not one the catalog fulfils with a milestone), and not by a prevention step.
"""

from __future__ import annotations

from bcm.spec.catalog import Catalog
from bcm.spec.obligation_catalog import OBLIGATIONS_FILE
from bcm.spec.outline import ObligationOutline, RunbookOutline, StepOutline
from bcm.spec.problems import Findings, did_you_mean, unknown


def inspect_obligations(outline: RunbookOutline, catalog: Catalog, findings: Findings) -> None:
    """Check the runbook's ``obligations`` and every step's ``fulfils`` (see the module)."""
    listed = [entry.id for entry in outline.obligations if entry.id is not None]
    first: dict[str, ObligationOutline] = {}
    for entry in outline.obligations:
        if entry.id is None:
            continue
        if entry.id in first:
            line = findings.source.locate((*first[entry.id].path, "obligation"))[0]
            message = f"duplicate obligation '{entry.id}' (first listed on line {line})"
            findings.add((*entry.path, "obligation"), message)
            continue
        first[entry.id] = entry
        _check_entry(entry, catalog, findings, listed=listed, complete=outline.obligations_complete)
    for step in outline.steps:
        _check_fulfils(step, catalog, findings, listed=listed, complete=outline.obligations_complete)


def _check_entry(
    entry: ObligationOutline, catalog: Catalog, findings: Findings, *, listed: list[str], complete: bool
) -> None:
    assert entry.id is not None
    obligation = catalog.obligations.get(entry.id)
    if obligation is None:
        findings.add((*entry.path, "obligation"), _unknown_in_catalog(entry.id, catalog))
        return
    if entry.period and not obligation.adjustable:
        findings.add(
            (*entry.path, "period"),
            f"obligation '{entry.id}' has a fixed period ({obligation.period}, {obligation.regime}): only an "
            f"obligation marked adjustable in {OBLIGATIONS_FILE} (a programme's own target) takes a runbook's period",
        )
    before = obligation.starts.fulfilled
    if complete and before is not None and before not in listed:
        findings.add(
            (*entry.path, "obligation"),
            f"obligation '{entry.id}' starts when '{before}' is fulfilled: list '{before}' too, "
            "or this clock never starts",
        )


def _check_fulfils(
    step: StepOutline, catalog: Catalog, findings: Findings, *, listed: list[str], complete: bool
) -> None:
    if step.fulfils and step.phase == "prevention":
        findings.add(
            (*step.path, "fulfils"),
            "a prevention step runs as a readiness check, never in an incident: it fulfils no obligation",
        )
        return
    seen: set[str] = set()
    for j, ob_id in step.fulfils:
        path = (*step.path, "fulfils", j)
        if ob_id in seen:
            findings.add(path, f"obligation '{ob_id}' is listed twice")
            continue
        seen.add(ob_id)
        if ob_id not in listed:
            if complete:
                findings.add(path, _not_listed(ob_id, catalog, listed))
            continue
        obligation = catalog.obligations.get(ob_id)
        if obligation is not None and obligation.fulfilled_by.milestone is not None:
            milestone = obligation.fulfilled_by.milestone
            findings.add(
                path,
                f"obligation '{ob_id}' is fulfilled when the run reaches milestone {milestone} ({OBLIGATIONS_FILE}), "
                f"not by a step: mark it instead (marks: {milestone})",
            )


def _unknown_in_catalog(ob_id: str, catalog: Catalog) -> str:
    if not catalog.obligations:
        return f"unknown obligation '{ob_id}': the catalog has no obligations (add {OBLIGATIONS_FILE} to it)"
    return unknown("obligation", ob_id, catalog.obligations) + f" in {OBLIGATIONS_FILE}"


def _not_listed(ob_id: str, catalog: Catalog, listed: list[str]) -> str:
    shown = f"listed: {', '.join(dict.fromkeys(listed))}" if listed else "the runbook lists none"
    if ob_id in catalog.obligations:
        return f"obligation '{ob_id}' is not among the runbook's obligations ({shown}): add it under 'obligations:'"
    hint = did_you_mean(ob_id, listed) or did_you_mean(ob_id, catalog.obligations)
    return f"unknown obligation '{ob_id}'{hint}: a step fulfils one of the runbook's obligations ({shown})"
