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

from bcm.spec.problems import BcmError

CONTEXT_NAMES = frozenset({"params", "runbook", "run", "steps", "targets", "services"})
_EXPRESSION_WRAPPER = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)

ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateRenderError(BcmError):
    """A template failed while rendering (a value missing at run time, a sandbox violation)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"template {source!r} failed: {reason}")


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
    source = "{{ " + when_expression(text) + " }}" if expression else text
    if not expression and not is_template(text):
        return []
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        what = "not a valid expression" if expression else "template syntax error"
        return [TemplateIssue(exc.lineno or 1, f"{what}: {exc.message}")]
    issues: list[TemplateIssue] = []
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in CONTEXT_NAMES and name.name not in assigned:
            issues.append(
                TemplateIssue(
                    name.lineno,
                    f"unknown name '{name.name}' in template (known: {', '.join(sorted(CONTEXT_NAMES))})",
                )
            )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not isinstance(target, nodes.Name) or target.name not in ("params", "steps"):
            continue
        key = _static_key(node)
        if key is None:
            continue
        known = params if target.name == "params" else steps
        if key not in known:
            hint = _nearest(key, known)
            listing = ", ".join(sorted(known)) or "none"
            if target.name == "params":
                message = f"parameter '{key}' is used but not declared under 'parameters'{hint}"
            else:
                message = f"no step '{key}' in this runbook{hint} (steps: {listing})"
            issues.append(TemplateIssue(node.lineno, message))
    for node in tree.find_all(nodes.Filter):
        if node.name not in ENV.filters:
            issues.append(TemplateIssue(node.lineno, f"unknown filter '{node.name}'"))
    for node in tree.find_all(nodes.Test):
        if node.name not in ENV.tests:
            issues.append(TemplateIssue(node.lineno, f"unknown test '{node.name}'"))
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
