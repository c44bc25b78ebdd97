"""Typed runbook parameters: turning ``-p key=value`` strings into checked values."""

from __future__ import annotations

from collections.abc import Callable
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
    if param.type == "enum":
        allowed = param.values or []
        if str(value) not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return str(value)
    return _COERCE[param.type](value)


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _integer(value: object) -> int:
    if not isinstance(value, bool):  # YAML's true is not the integer 1
        try:
            return int(str(value).strip())
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r}")


def _number(value: object) -> float:
    if not isinstance(value, bool):
        try:
            return float(str(value).strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _string(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


_COERCE: dict[str, Callable[[object], str | int | float | bool]] = {
    "boolean": _boolean,
    "integer": _integer,
    "number": _number,
    "string": _string,
}


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
