"""The one Jinja2 environment: sandboxed, StrictUndefined, with load-time checks.

Runbook templates are checked when the runbook loads (syntax, unknown names, unknown filters,
parameters that are not declared, steps that do not exist), so a typo fails ``bcm validate`` and
never a recovery at 3 a.m. Rendering uses the same environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bcm.errors import TemplateRenderError

CONTEXT_NAMES = frozenset({"params", "runbook", "run", "steps", "targets", "services"})
_EXPRESSION_WRAPPER = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)

ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class TemplateIssue:
    """A problem found in a template at load time.

    Attributes:
        line: 1-based line inside the template (1 for one-line templates).
        message: what is wrong.
    """

    line: int
    message: str


def is_template(text: str) -> bool:
    """True when ``text`` contains Jinja markup."""
    return "{{" in text or "{%" in text or "{#" in text


def when_expression(text: str) -> str:
    """The bare expression of a ``when`` value, which may be wrapped in ``{{ }}``."""
    match = _EXPRESSION_WRAPPER.match(text)
    return match.group("expr") if match else text


# `{{ name.attr['key'] }}`: the commonest template shape, analysed without Jinja's parser.
_SIMPLE = re.compile(
    r"\{\{-?\s*(?P<path>[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\s*\[\s*(?:'[^'{}]*'|\"[^\"{}]*\"|\d+)\s*\])*)\s*-?\}\}"
)
_SEGMENT = re.compile(r"\.\s*(?P<attr>[A-Za-z_]\w*)|\[\s*(?:'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<num>\d+))\s*\]")


@dataclass(frozen=True)
class _Facts:
    """What a template refers to: names loaded, keys of params/steps, filters and tests used."""

    names: tuple[tuple[str, int], ...] = ()
    keys: tuple[tuple[str, str, int], ...] = ()  # (params|steps, key, line)
    filters: tuple[tuple[str, int], ...] = ()
    tests: tuple[tuple[str, int], ...] = ()
    syntax_error: TemplateIssue | None = None


def _simple_facts(source: str) -> _Facts | None:
    names: list[tuple[str, int]] = []
    keys: list[tuple[str, str, int]] = []
    for match in _SIMPLE.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        path = match.group("path")
        head = re.match(r"[A-Za-z_]\w*", path)
        assert head is not None
        name = head.group(0)
        names.append((name, line))
        first = _SEGMENT.match(path, head.end())
        if name in ("params", "steps") and first is not None:
            key = first.group("attr") or first.group("sq") or first.group("dq")
            if key is not None:
                keys.append((name, key, line))
    rest = _SIMPLE.sub("", source)
    if "{{" in rest or "{%" in rest or "{#" in rest or "}}" in rest:
        return None
    return _Facts(names=tuple(names), keys=tuple(keys))


@lru_cache(maxsize=8192)
def _facts(source: str, expression: bool) -> _Facts:
    if not expression:
        simple = _simple_facts(source)
        if simple is not None:
            return simple
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        what = "not a valid expression" if expression else "template syntax error"
        return _Facts(syntax_error=TemplateIssue(exc.lineno or 1, f"{what}: {exc.message}"))
    names: list[tuple[str, int]] = []
    assigned: set[str] = set()
    keys: list[tuple[str, str, int]] = []
    filters: list[tuple[str, int]] = []
    tests: list[tuple[str, int]] = []
    for node in tree.find_all(nodes.Node):  # one walk, every node
        if isinstance(node, nodes.Name):
            if node.ctx in ("store", "param"):
                assigned.add(node.name)
            else:
                names.append((node.name, node.lineno))
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            target = node.node
            if isinstance(target, nodes.Name) and target.name in ("params", "steps"):
                key = _static_key(node)
                if key is not None:
                    keys.append((target.name, key, node.lineno))
        elif isinstance(node, nodes.Filter):
            filters.append((node.name, node.lineno))
        elif isinstance(node, nodes.Test):
            tests.append((node.name, node.lineno))
    return _Facts(
        names=tuple((n, line) for n, line in names if n not in assigned),
        keys=tuple(keys),
        filters=tuple(filters),
        tests=tuple(tests),
    )


def check_template(
    text: str, *, params: frozenset[str], steps: frozenset[str], expression: bool = False
) -> list[TemplateIssue]:
    """Check a template (or a ``when`` expression) without rendering it.

    Args:
        text: the template source.
        params: the runbook's declared parameter names.
        steps: the runbook's step ids.
        expression: True for ``when``: ``text`` is one expression, optionally in ``{{ }}``.

    Returns:
        Every problem found; empty when the template is fine.
    """
    if not expression and not is_template(text):
        return []
    source = "{{ " + when_expression(text) + " }}" if expression else text
    facts = _facts(source, expression)
    if facts.syntax_error is not None:
        return [facts.syntax_error]
    issues: list[TemplateIssue] = []
    for name, line in facts.names:
        if name not in CONTEXT_NAMES:
            known = ", ".join(sorted(CONTEXT_NAMES))
            issues.append(TemplateIssue(line, f"unknown name '{name}' in template (known: {known})"))
    for target, key, line in facts.keys:
        known_keys = params if target == "params" else steps
        if key in known_keys:
            continue
        hint = _nearest(key, known_keys)
        if target == "params":
            message = f"parameter '{key}' is used but not declared under 'parameters'{hint}"
        else:
            message = f"no step '{key}' in this runbook{hint} (steps: {', '.join(sorted(known_keys)) or 'none'})"
        issues.append(TemplateIssue(line, message))
    issues += [
        TemplateIssue(line, f"unknown filter '{name}'") for name, line in facts.filters if name not in ENV.filters
    ]
    issues += [TemplateIssue(line, f"unknown test '{name}'") for name, line in facts.tests if name not in ENV.tests]
    return issues


def _static_key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _nearest(word: str, choices: frozenset[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return ENV.from_string(source)


@lru_cache(maxsize=1024)
def _compiled_expression(source: str) -> Any:
    return ENV.compile_expression(when_expression(source), undefined_to_none=False)


def render(text: str, context: Mapping[str, object]) -> str:
    """Render ``text`` with ``context`` in the sandbox.

    Raises:
        TemplateRenderError: when rendering fails (a missing value, a sandbox violation).
    """
    if not is_template(text):
        return text
    try:
        return str(_compiled(text).render(**context))
    except (UndefinedError, SecurityError, TemplateError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise TemplateRenderError(text, str(exc)) from exc


def render_value(value: object, context: Mapping[str, object]) -> object:
    """Render every string inside ``value`` (dicts and lists are walked)."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context) for v in value]
    return value


def evaluate(expression: str, context: Mapping[str, object]) -> object:
    """Evaluate a ``when`` expression.

    Raises:
        TemplateRenderError: when evaluation fails.
    """
    try:
        return _compiled_expression(expression)(**context)
    except (UndefinedError, SecurityError, TemplateError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise TemplateRenderError(expression, str(exc)) from exc


def truthy(value: object) -> bool:
    """How a ``when`` result decides: strings 'false', 'no', '0', '' count as false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none", "off")
    return bool(value)


_MRKDWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` so text cannot become a Slack link or ``<!channel>``."""
    return text.translate(_MRKDWN)
