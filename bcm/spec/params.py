"""Typed runbook parameters: turning ``-p key=value`` strings into checked values."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bcm.spec.models import Parameter, Runbook

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_parameter(param: Parameter, value: object) -> str | int | float | bool:
    """Convert ``value`` to the parameter's type.

    Raises:
        ValueError: with a message saying what was expected.
    """
    kind = param.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if kind == "enum":
        allowed = param.values or []
        if str(value) not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return str(value)
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def resolve_parameters(runbook: Runbook, given: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """Check trigger-time values against the runbook's declared parameters.

    Args:
        runbook: the validated runbook.
        given: ``key -> value`` as typed on the command line.

    Returns:
        The typed values (defaults filled in) and a list of problems, one sentence each.
    """
    values: dict[str, object] = {}
    problems: list[str] = []
    for name in given:
        if name not in runbook.parameters:
            known = ", ".join(sorted(runbook.parameters)) or "none"
            problems.append(f"unknown parameter '{name}' (this runbook takes: {known})")
    for name, param in runbook.parameters.items():
        if name in given:
            try:
                values[name] = coerce_parameter(param, given[name])
            except ValueError as exc:
                problems.append(f"parameter '{name}': {exc}")
        elif param.default is not None:
            values[name] = coerce_parameter(param, param.default)
        elif param.required:
            what = f" ({param.description})" if param.description else ""
            problems.append(f"missing required parameter '{name}'{what}: give it with -p {name}=VALUE")
        else:
            values[name] = None
    return values, problems
