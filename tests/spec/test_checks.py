"""The runbook checks (syntax, semantics, expressions) on in-memory YAML, with the full message text."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcm.spec import Catalog, load_catalog, load_runbook_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

HEAD = "version: 1\nid: r\ntitle: T\nowner: voice_ops\nseverity: sev2\n"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    found, problems = load_catalog(FIXTURES / "catalog")
    assert problems == [] and found is not None
    return found


def problems(text: str, catalog: Catalog) -> list[str]:
    loaded, found = load_runbook_text(text, "r.yaml", catalog)
    assert (loaded is None) == bool(found)
    return [str(p) for p in sorted(found)]


def test_valid_runbook_loads_with_its_model(catalog: Catalog) -> None:
    """A runbook with no problems comes back as a model and a digest of its text."""
    text = HEAD + "phases:\n  response:\n    - {id: a, wait: 1m}\n"
    loaded, found = load_runbook_text(text, "r.yaml", catalog)
    assert found == []
    assert loaded is not None and loaded.runbook.step("a").kind == "wait"
    assert len(loaded.sha256) == 64


def test_cross_references_are_checked_when_the_model_does_not_validate(catalog: Catalog) -> None:
    """A bad duration does not hide an unknown role, a misspelled need or an undeclared parameter."""
    text = HEAD + (
        "phases:\n"
        "  response:\n"
        "    - id: ask\n"
        "      approve: {by: legal, prompt: 'Go {{ params.site }}?', timeout: soon}\n"
        "    - id: act\n"
        "      needs: [aks]\n"
        "      wait: 1m\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:9:21: phases.response[0].approve.by: unknown role 'legal' in stakeholders.yaml",
        "r.yaml:9:36: phases.response[0].approve.prompt: parameter 'site' is used but not declared under 'parameters'",
        "r.yaml:9:70: phases.response[0].approve.timeout: 'soon' is not a duration: write a whole number and a unit, "
        "such as 90s, 15m, 4h or 2d",
        "r.yaml:11:15: phases.response[1].needs[0]: unknown step 'aks' (did you mean 'ask'?) (known: ask, act)",
    ]


def test_steps_under_a_misspelled_phase_still_count_as_steps(catalog: Catalog) -> None:
    """A need that names a step under `respons:` is not also an unknown step: the phase name is the mistake."""
    text = HEAD + (
        "phases:\n  respons:\n    - {id: a, wait: 1m}\n  recovery:\n    - {id: b, wait: 1 minute, needs: [a]}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:7:3: phases: unknown key 'respons' (did you mean 'response'?)",
        "r.yaml:10:21: phases.recovery[0].wait: '1 minute' is not a duration: write a whole number and a unit, "
        "such as 90s, 15m, 4h or 2d",
    ]


def test_misspelled_parameters_key_does_not_make_every_parameter_undeclared(catalog: Catalog) -> None:
    """With `parameter:` for `parameters:`, templates using params are not each reported."""
    text = HEAD + (
        "parameter:\n  site: {type: string}\nphases:\n  response:\n    - {id: a, run: [echo, '{{ params.site }}']}\n"
    )
    assert problems(text, catalog) == ["r.yaml:6:1: unknown key 'parameter' (did you mean 'parameters'?)"]


def test_a_step_id_used_twice_in_a_row_is_a_duplicate_not_a_cycle(catalog: Catalog) -> None:
    """Two consecutive steps with one id are one problem: the graph is not judged (no `a → a` cycle)."""
    text = HEAD + "phases:\n  response:\n    - {id: a, wait: 1m}\n    - {id: a, wait: 2m}\n"
    assert problems(text, catalog) == [
        "r.yaml:9:12: phases.response[1].id: duplicate step id 'a' (first used on line 8)",
    ]


def test_a_cycle_is_still_found_beside_schema_errors(catalog: Catalog) -> None:
    """The step graph is judged when every step has an id and readable needs, whatever else is wrong."""
    text = HEAD + (
        "phases:\n  response:\n    - {id: a, wait: 1m, needs: [b], retries: lots}\n    - {id: b, wait: 1m}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:8:32: phases.response[0].needs: dependency cycle: a → b → a "
        "(a step without needs follows the one written before it)",
        "r.yaml:8:46: phases.response[0].retries: expected an integer, got 'lots'",
    ]


def test_an_unquoted_template_is_one_problem(catalog: Catalog) -> None:
    """`owner: {{ x }}` is reported as an unquoted template, not also as a bad role or duration."""
    text = (
        "version: 1\nid: r\ntitle: T\nowner: {{ params.who }}\nseverity: sev2\n"
        "phases:\n  response:\n    - {id: a, wait: {{ params.delay }}}\n"
    )
    assert problems(text, catalog) == [
        "r.yaml:4:8: owner: a value that starts with '{{' must be quoted: \"{{ ... }}\"",
        "r.yaml:8:21: phases.response[0].wait: a value that starts with '{{' must be quoted: \"{{ ... }}\"",
    ]
