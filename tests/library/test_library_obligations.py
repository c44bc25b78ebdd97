"""The deadline clocks in the shipped runbooks: which each declares, and that each can start and be fulfilled."""

from __future__ import annotations

import pytest

from bcm.spec import Library, load_library
from bcm.vocabulary import CLOCK_MILESTONES
from tests.conftest import ROOT

LIBRARY = ROOT / "runbooks"

#: Each runbook's obligations as listed: (id, its condition, the runbook's own period).
EXPECTED: dict[str, list[tuple[str, str | None, str | None]]] = {
    "ai-incident": [
        (
            "eu-ai-act-art73",
            "params.high_risk and params.ai_act_case == 'serious-incident' "
            "and steps['regulator-decision'].output.approved is not false",
            None,
        ),
        (
            "eu-ai-act-art73-critical",
            "params.high_risk and params.ai_act_case == 'widespread-or-critical-infrastructure' "
            "and steps['regulator-decision'].output.approved is not false",
            None,
        ),
        (
            "eu-ai-act-art73-death",
            "params.high_risk and params.ai_act_case == 'death' "
            "and steps['regulator-decision'].output.approved is not false",
            None,
        ),
        ("gdpr-art33", "params.harm == 'privacy-leak'", None),
    ],
    "dc-power-loss": [],
    "ddos": [
        ("nis2-early-warning", "params.significant", None),
        ("nis2-notification", "params.significant", None),
        ("nis2-final", "params.significant", None),
    ],
    "fibre-cut": [
        ("nis2-early-warning", "params.customer_impact", None),
        ("nis2-notification", "params.customer_impact", None),
        ("nis2-final", "params.customer_impact", None),
    ],
    "insider-threat": [("gdpr-art33", "params.personal_data", None)],
    "le-emergency-disclosure": [("le-acknowledge", None, "15 minutes"), ("le-decide", None, "1 hour")],
    "pandemic": [],
    "ransomware": [
        ("gdpr-art33", "params.personal_data_involved", None),
        ("nis2-early-warning", None, None),
        ("nis2-notification", None, None),
        ("nis2-final", None, None),
        ("dora-initial", "params.financial_entity", None),
        ("dora-intermediate", "params.financial_entity", None),
        ("dora-final", "params.financial_entity", None),
        ("sec-8k-item-1.05", "params.sec_registrant", None),
    ],
    "supplier-failure": [],
    "vuln-disclosure": [("vdp-acknowledge", None, "1 day"), ("vdp-disclosure", None, None)],
}


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(LIBRARY)


def bare(when: str | None) -> str | None:
    """A `when` without its braces, on one line."""
    return " ".join(when.strip("{} ").split()) if when else None


def test_each_runbook_declares_the_obligations_that_apply_to_it(library: Library) -> None:
    """The issue's list, with conditions on real parameters (and legal's decision) and the programmes' own periods."""
    found = {
        rid: [(o.obligation, bare(o.when), str(o.period) if o.period else None) for o in item.runbook.obligations]
        for rid, item in sorted(library.runbooks.items())
    }
    assert found == EXPECTED


def test_each_obligation_has_a_step_that_starts_its_clock_and_one_that_fulfils_it(library: Library) -> None:
    """Every clock can start in a run (a step marks its milestone, or it follows a listed one) and be fulfilled
    (a step declares `fulfils`, or marks the catalog's fulfilling milestone)."""
    gaps = []
    for rid, item in sorted(library.runbooks.items()):
        runbook = item.runbook
        marked = {step.marks for _, step in runbook.steps(include_prevention=False) if step.marks}
        listed = {o.obligation for o in runbook.obligations}
        for entry in runbook.obligations:
            obligation = library.catalog.obligations[entry.obligation]
            start = obligation.starts
            if start.milestone not in marked and start.fulfilled not in listed:
                gaps.append(f"{rid}: nothing starts {obligation.id}")
            fulfilling = obligation.fulfilled_by.milestone
            if (fulfilling not in marked) if fulfilling else not runbook.fulfilled_by(obligation.id):
                gaps.append(f"{rid}: nothing fulfils {obligation.id}")
    assert gaps == []


def test_the_steps_that_fulfil_the_ransomware_clocks(library: Library) -> None:
    """One reporting step per clock, and the steps that mark the milestones the clocks start at."""
    runbook = library.get("ransomware").runbook
    fulfils = {o.obligation: runbook.fulfilled_by(o.obligation) for o in runbook.obligations}
    assert fulfils == {
        "gdpr-art33": ["regulator-clock"],
        "nis2-early-warning": ["nis2-early-warning"],
        "nis2-notification": ["nis2-notification"],
        "nis2-final": ["nis2-final-report"],
        "dora-initial": ["dora-initial-report"],
        "dora-intermediate": ["dora-intermediate-report"],
        "dora-final": ["dora-final-report"],
        "sec-8k-item-1.05": ["sec-8k"],
    }
    marks = {step.marks: step.id for _, step in runbook.steps() if step.marks in CLOCK_MILESTONES}
    assert marks == {
        "aware": "awareness",
        "classified_major": "major-classified",
        "materiality_determined": "materiality-determined",
    }


def test_the_programmes_fulfil_their_clocks_on_every_branch(library: Library) -> None:
    """A refused disclosure request is decided too; a report closed as invalid ends the disclosure clock."""
    le = library.get("le-emergency-disclosure").runbook
    vdp = library.get("vuln-disclosure").runbook
    assert (le.fulfilled_by("le-decide"), vdp.fulfilled_by("vdp-disclosure")) == (
        ["legal-decision", "refuse"],
        ["close-invalid", "publish"],
    )
