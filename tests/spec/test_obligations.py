"""A runbook's `obligations:` and its steps' `fulfils:`, checked against the shipped catalog: full messages, located."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcm.obligations import ObligationCatalog, Period
from bcm.spec import Catalog, load_catalog, load_runbook_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

HEAD = (
    "version: 1\nid: r\ntitle: T\nowner: security\nseverity: sev2\n"
    "parameters:\n  personal_data: {type: boolean, default: false}\n"
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    found, problems = load_catalog(ROOT / "runbooks" / "catalog")
    assert problems == [] and found is not None
    return found


def problems(text: str, catalog: Catalog) -> list[str]:
    loaded, found = load_runbook_text(text, "r.yaml", catalog)
    assert (loaded is None) == bool(found)
    return [str(p) for p in sorted(found)]


def test_obligations_and_fulfils_load_into_the_model(catalog: Catalog) -> None:
    """Each entry keeps its condition and its own period; the runbook says which steps fulfil an obligation."""
    text = HEAD + (
        "obligations:\n"
        "  - {obligation: gdpr-art33, when: '{{ params.personal_data }}'}\n"
        "  - {obligation: vdp-acknowledge, period: 2 business days}\n"
        "phases:\n"
        "  response:\n"
        "    - {id: assess, wait: 1m}\n"
        "    - {id: notify-dpa, manual: {by: privacy, instructions: Notify.}, fulfils: [gdpr-art33]}\n"
    )
    loaded, found = load_runbook_text(text, "r.yaml", catalog)
    assert found == [] and loaded is not None
    runbook = loaded.runbook
    assert [(o.obligation, o.when, o.period) for o in runbook.obligations] == [
        ("gdpr-art33", "{{ params.personal_data }}", None),
        ("vdp-acknowledge", None, Period(2, "business_days")),
    ]
    assert (runbook.fulfilled_by("gdpr-art33"), runbook.fulfilled_by("vdp-acknowledge")) == (["notify-dpa"], [])
    assert runbook.step("assess").fulfils == []


def test_an_unknown_obligation_suggests_the_nearest_catalog_id(catalog: Catalog) -> None:
    """A misspelt id is located at its value, with the catalog's nearest id."""
    text = HEAD + "obligations:\n  - obligation: gdpr-art-33\nphases:\n  response:\n    - {id: a, wait: 1m}\n"
    assert problems(text, catalog) == [
        "r.yaml:9:17: obligations[0].obligation: unknown obligation 'gdpr-art-33' (did you mean 'gdpr-art33'?) "
        "in obligations.yaml",
    ]


def test_a_step_fulfils_only_the_runbooks_obligations(catalog: Catalog) -> None:
    """A catalog obligation the runbook does not list, and a misspelt listed one, each at its place in `fulfils`."""
    text = HEAD + (
        "obligations:\n"
        "  - obligation: nis2-early-warning\n"
        "phases:\n"
        "  response:\n"
        "    - id: warn\n"
        "      manual: {by: ciso, instructions: Warn.}\n"
        "      fulfils: [nis2-notification, nis2-early-warnin]\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:14:17: phases.response[0].fulfils[0]: obligation 'nis2-notification' is not among the runbook's "
        "obligations (listed: nis2-early-warning): add it under 'obligations:'",
        "r.yaml:14:36: phases.response[0].fulfils[1]: unknown obligation 'nis2-early-warnin' "
        "(did you mean 'nis2-early-warning'?): a step fulfils one of the runbook's obligations "
        "(listed: nis2-early-warning)",
    ]


def test_a_runbook_period_is_refused_for_a_fixed_obligation(catalog: Catalog) -> None:
    """A period set by law cannot be changed by a runbook; a period that does not parse is one problem, not two."""
    text = HEAD + (
        "obligations:\n"
        "  - {obligation: gdpr-art33, period: 96 hours}\n"
        "  - {obligation: le-decide, period: 2h}\n"
        "  - {obligation: le-acknowledge, period: 10 minutes}\n"
        "phases:\n  response:\n    - {id: a, wait: 1m}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:9:38: obligations[0].period: obligation 'gdpr-art33' has a fixed period (72 hours, EU GDPR): "
        "only an obligation marked adjustable in obligations.yaml (a programme's own target) takes a runbook's period",
        "r.yaml:10:37: obligations[1].period: '2h' is not a period: write a whole number and a unit, such as "
        "72 hours, 15 days, 4 business days, 1 month or 15 minutes",
    ]


def test_a_bad_when_expression_is_located_as_a_steps_would_be(catalog: Catalog) -> None:
    """A syntax error, an undeclared parameter and a step that does not exist, each on its line."""
    text = HEAD + (
        "obligations:\n"
        "  - {obligation: gdpr-art33, when: '{{ params.personal_data and }}'}\n"
        "  - obligation: nis2-early-warning\n"
        '    when: "{{ params.personal_dat }}"\n'
        "  - obligation: nis2-notification\n"
        "    when: \"{{ steps['clasify'].output.approved is true }}\"\n"
        "phases:\n  response:\n    - {id: classify, approve: {by: ciso, prompt: Major?}}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:9:36: obligations[0].when: not a valid expression: unexpected 'end of print statement'",
        "r.yaml:11:11: obligations[1].when: parameter 'personal_dat' is used but not declared under 'parameters' "
        "(did you mean 'personal_data'?)",
        "r.yaml:13:11: obligations[2].when: no step 'clasify' in this runbook (did you mean 'classify'?) "
        "(steps: classify)",
    ]


def test_an_obligation_listed_twice_and_a_step_fulfilling_one_twice_are_refused(catalog: Catalog) -> None:
    """The second listing names the line of the first; a repeated id in `fulfils` is located at the repeat."""
    text = HEAD + (
        "obligations:\n"
        "  - obligation: gdpr-art33\n"
        "  - obligation: gdpr-art33\n"
        "    when: '{{ params.personal_data }}'\n"
        "phases:\n"
        "  response:\n"
        "    - {id: notify, manual: {by: privacy, instructions: Notify.}, fulfils: [gdpr-art33, gdpr-art33]}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:10:17: obligations[1].obligation: duplicate obligation 'gdpr-art33' (first listed on line 9)",
        "r.yaml:14:88: phases.response[0].fulfils[1]: obligation 'gdpr-art33' is listed twice",
    ]


def test_a_chained_clock_is_listed_with_the_one_that_starts_it(catalog: Catalog) -> None:
    """nis2-final starts when nis2-notification is fulfilled: without it, its clock would never start."""
    text = HEAD + "obligations:\n  - obligation: nis2-final\nphases:\n  response:\n    - {id: a, wait: 1m}\n"
    assert problems(text, catalog) == [
        "r.yaml:9:17: obligations[0].obligation: obligation 'nis2-final' starts when 'nis2-notification' is "
        "fulfilled: list 'nis2-notification' too, or this clock never starts",
    ]


def test_steps_that_cannot_fulfil_an_obligation(catalog: Catalog) -> None:
    """An obligation the catalog fulfils with a milestone is marked, not fulfilled; a readiness check fulfils none."""
    text = HEAD + (
        "obligations:\n"
        "  - {obligation: vdp-acknowledge}\n"
        "  - {obligation: vdp-disclosure}\n"
        "phases:\n"
        "  prevention:\n"
        "    - {id: check, wait: 1m, fulfils: [vdp-disclosure]}\n"
        "  response:\n"
        "    - {id: ack, manual: {by: psirt, instructions: Thank them.}, fulfils: [vdp-acknowledge]}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:13:38: phases.prevention[0].fulfils: a prevention step runs as a readiness check, never in an "
        "incident: it fulfils no obligation",
        "r.yaml:15:75: phases.response[0].fulfils[0]: obligation 'vdp-acknowledge' is fulfilled when the run "
        "reaches milestone acknowledged (obligations.yaml), not by a step: mark it instead (marks: acknowledged)",
    ]


def test_a_misspelt_obligations_key_is_one_problem(catalog: Catalog) -> None:
    """With `obligation:` for `obligations:`, the ids steps fulfil are not each called unknown."""
    text = HEAD + (
        "obligation:\n  - obligation: gdpr-art33\n"
        "phases:\n  response:\n    - {id: a, manual: {by: privacy, instructions: Notify.}, fulfils: [gdpr-art33]}\n"
    )
    assert problems(text, catalog) == ["r.yaml:8:1: unknown key 'obligation' (did you mean 'obligations'?)"]


def test_a_catalog_without_obligations_says_so() -> None:
    """The fixture catalog has no obligations.yaml: a runbook naming one is told the catalog has none."""
    found, catalog_problems = load_catalog(FIXTURES / "catalog")
    assert catalog_problems == [] and found is not None
    text = "version: 1\nid: r\ntitle: T\nowner: voice_ops\nseverity: sev2\nobligations: [{obligation: gdpr-art33}]\n"
    assert problems(text + "phases:\n  response:\n    - {id: a, wait: 1m}\n", found) == [
        "r.yaml:6:28: obligations[0].obligation: unknown obligation 'gdpr-art33': the catalog has no obligations "
        "(add obligations.yaml to it)",
    ]


def test_the_catalog_reports_its_obligations_problems_with_the_others(tmp_path: Path) -> None:
    """A bad obligations.yaml makes the catalog invalid, its problem located in that file."""
    for name in ("services.yaml", "stakeholders.yaml"):
        (tmp_path / name).write_text((FIXTURES / "catalog" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "obligations.yaml").write_text(
        "version: 1\n"
        "jurisdictions:\n  EU: {name: European Union, timezone: Europe/Brussels, holidays: BE}\n"
        "obligations:\n"
        "  - {id: notice, name: N, regime: R, jurisdiction: EU, deliverable: D, source: {document: Doc, "
        'url: "https://example.org"}, starts: {milestone: aware}, period: 24 hours, owner: legal}\n',
        encoding="utf-8",
    )
    found, catalog_problems = load_catalog(tmp_path)
    assert found is None
    assert [(p.line, p.column, p.where, p.message) for p in catalog_problems] == [
        (5, 178, "obligations[0].owner", "unknown role 'legal' in stakeholders.yaml"),
    ]


def test_the_clocks_come_from_the_loaded_catalog(catalog: Catalog) -> None:
    """bcm.obligations counts the clocks of the obligations the spec loaded, with the jurisdictions' calendars."""
    clocks = ObligationCatalog.of(catalog)
    assert (list(clocks.obligations) == list(catalog.obligations), sorted(clocks.jurisdictions)) == (
        True,
        ["EU", "GB", "US"],
    )
    assert clocks.obligation("nis2-early-warning") is catalog.obligations["nis2-early-warning"]
