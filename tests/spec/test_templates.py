"""The sandboxed template environment: load-time checks, rendering, escaping."""

from __future__ import annotations

import pytest

from bcm.errors import TemplateRenderError
from bcm.templates import TemplateIssue, check_template, escape_mrkdwn, evaluate, render, render_value, truthy

P = frozenset({"site"})
S = frozenset({"declare"})


def test_plain_text_is_not_checked_or_rendered() -> None:
    """Strings without Jinja markup are returned as they are."""
    assert check_template("no markup", params=P, steps=S) == []
    assert render("no markup", {}) == "no markup"


def test_unknown_name_parameter_step_and_filter_are_reported() -> None:
    """Every kind of unknown reference in one template is reported with its template line."""
    issues = check_template(
        "{{ params.sit }}\n{{ steps['declar'].status }} {{ nope }} {{ run.id | shout }}", params=P, steps=S
    )
    assert issues == [
        TemplateIssue(2, "unknown name 'nope' in template (known: params, run, runbook, services, steps, targets)"),
        TemplateIssue(1, "parameter 'sit' is used but not declared under 'parameters' (did you mean 'site'?)"),
        TemplateIssue(2, "no step 'declar' in this runbook (did you mean 'declare'?) (steps: declare)"),
        TemplateIssue(2, "unknown filter 'shout'"),
    ]


def test_loop_variables_are_known_names() -> None:
    """Names bound by a for loop are not unknown."""
    assert check_template("{% for s in services %}{{ s.name }}{% endfor %}", params=P, steps=S) == []


def test_when_accepts_wrapped_and_bare_expressions() -> None:
    """A when condition may be written with or without {{ }}."""
    assert check_template("{{ params.site == 'x' }}", params=P, steps=S, expression=True) == []
    assert check_template("params.site == 'x'", params=P, steps=S, expression=True) == []
    assert evaluate("{{ params.site == 'x' }}", {"params": {"site": "x"}}) is True
    assert evaluate("params.site == 'x'", {"params": {"site": "y"}}) is False


def test_rendering_missing_value_raises_clear_error() -> None:
    """StrictUndefined: a missing value at run time is an error, never an empty string."""
    with pytest.raises(TemplateRenderError) as info:
        render("{{ params.site }}", {"params": {}})
    assert str(info.value) == "template '{{ params.site }}' failed: 'dict object' has no attribute 'site'"


def test_sandbox_blocks_unsafe_attribute_access() -> None:
    """The sandbox refuses access to private attributes."""
    with pytest.raises(TemplateRenderError):
        render("{{ params.__class__.__mro__ }}", {"params": {}})


def test_render_value_walks_nested_structures() -> None:
    """Strings inside dicts and lists are rendered; other values pass through."""
    assert render_value({"a": ["{{ params.site }}", 3]}, {"params": {"site": "lon"}}) == {"a": ["lon", 3]}


def test_truthy_reads_strings_like_people_do() -> None:
    """'false', 'no', '0' and '' are false; other strings and values by Python truth."""
    assert [truthy(v) for v in ("false", "No", "0", "", "yes", True, 0)] == [
        False,
        False,
        False,
        False,
        True,
        True,
        False,
    ]


def test_mrkdwn_escaping_neutralises_mentions_and_links() -> None:
    """&, < and > are escaped so a value cannot inject <!channel> or a link."""
    assert escape_mrkdwn("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
