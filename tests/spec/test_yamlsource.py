"""YAML loading: data, positions, duplicate keys, syntax errors."""

from __future__ import annotations

from datetime import date

import pytest

from bcm.spec.problems import Problem, dotted
from bcm.spec.yamlsource import load_yaml


def test_positions_of_keys_and_values_are_recorded() -> None:
    """Values and keys map to 1-based line and column by node path."""
    doc, problems = load_yaml("a: 1\nb:\n  - x: hello\n", "f.yaml")
    assert problems == []
    assert doc is not None
    assert doc.data == {"a": 1, "b": [{"x": "hello"}]}
    assert doc.source.values[("b", 0, "x")] == (3, 8)
    assert doc.source.keys[("b", 0, "x")] == (3, 5)


def test_duplicate_key_is_a_problem_and_first_value_kept() -> None:
    """PyYAML would keep the last of two equal keys; we report the second and keep the first."""
    doc, problems = load_yaml("a: 1\na: 2\n", "f.yaml")
    assert doc is not None and doc.data == {"a": 1}
    assert problems == [Problem("f.yaml", 2, 1, "a", "duplicate key 'a' (first defined on line 1): remove one")]


def test_syntax_error_names_line_and_context() -> None:
    """A YAML syntax error gives one problem with the place and what the parser was doing."""
    doc, problems = load_yaml('a: "open\n', "f.yaml")
    assert doc is None
    assert [str(p) for p in problems] == [
        "f.yaml:2:1: YAML syntax error: found unexpected end of stream "
        "(while scanning a quoted scalar that starts at line 1, column 4)"
    ]


def test_two_documents_are_refused() -> None:
    """A file holds one runbook: a second document is a problem at its start."""
    _, problems = load_yaml("a: 1\n---\nb: 2\n", "f.yaml")
    assert [str(p) for p in problems] == [
        "f.yaml:3:1: a file holds one document: remove the second '---' or split the file"
    ]


def test_dates_are_dates_and_bad_dates_stay_text() -> None:
    """Valid YAML dates become dates; an impossible one is kept as text for the model to report."""
    doc, _ = load_yaml("good: 2026-05-01\nbad: 2026-13-01\n", "f.yaml")
    assert doc is not None and doc.data == {"good": date(2026, 5, 1), "bad": "2026-13-01"}


def test_dotted_paths() -> None:
    """Node paths render as dotted keys with [index] for list items."""
    assert dotted(("phases", "response", 1, "needs", 0)) == "phases.response[1].needs[0]"
    assert dotted(()) == ""


INDENT = " (check the indentation: the keys of one mapping, and the '-' items of one list, start in the same column)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a:\n  b: 1\n   c: '{{ x }}'\n",
            "f.yaml:3:5: YAML syntax error: mapping values are not allowed in this context" + INDENT,
        ),
        (
            "a:\n  - x\n  b: 1\n",
            "f.yaml:3:3: YAML syntax error: did not find expected '-' indicator "
            "(while parsing a block collection that starts at line 2, column 3)" + INDENT,
        ),
        (
            "a: {{ x }} and more\n",
            "f.yaml:1:12: YAML syntax error: did not find expected key "
            "(while parsing a block mapping that starts at line 1, column 1) "
            "(a value that starts with '{{' must be quoted: \"{{ ... }}\")",
        ),
        (
            "run: [echo, {{ x }}/y]\n",
            "f.yaml:1:20: YAML syntax error: did not find expected ',' or ']' "
            "(while parsing a flow sequence that starts at line 1, column 6) "
            "(a value that starts with '{{' must be quoted: \"{{ ... }}\")",
        ),
        (
            "message: Note: {{ x }} here\n",
            "f.yaml:1:14: YAML syntax error: mapping values are not allowed in this context "
            "(a value that contains ': ' must be quoted)",
        ),
        (
            'a: "{{ x }}" more\n',
            "f.yaml:1:14: YAML syntax error: did not find expected key "
            "(while parsing a block mapping that starts at line 1, column 1) "
            "(text follows a quoted value or a closing bracket on the same line: quote the whole value)",
        ),
        (
            "a:\n\tb: 1\n",
            "f.yaml:2:1: YAML syntax error: found character that cannot start any token "
            "(while scanning for the next token that starts at line 2, column 1) "
            "(tabs are not allowed for indentation: use spaces)",
        ),
    ],
    ids=["indented-key", "key-among-items", "unquoted-template", "in-flow-list", "colon", "after-quote", "tab"],
)
def test_syntax_errors_get_the_hint_that_matches_the_mistake(text: str, message: str) -> None:
    """The hint follows what libyaml reports and where: quoting only for a plain `{{` that starts a value."""
    doc, problems = load_yaml(text, "f.yaml")
    assert doc is None
    assert [str(p) for p in problems] == [message]
