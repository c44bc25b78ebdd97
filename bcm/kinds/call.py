"""``call: "package.module:function"`` with ``with: {...}`` keyword arguments: a Python entry point."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from bcm.kinds.base import ActionEnv, StepKindDef, StepOutcome
from bcm.templates import render_value

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step

#: The value of ``call``: ``package.module:function``.
EntryPoint = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


def describe(step: Step) -> str:
    """``call package.module:function``."""
    return f"call {step.call}"


def resolve_entry_point(ref: str) -> Callable[..., Any]:
    """Import ``package.module:function``.

    Raises:
        ValueError: when the module or function cannot be found.
    """
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"{module_name} has no function {attr}")
    return function  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    """Call the entry point with ``with`` (templates rendered), within the step's timeout."""
    assert step.call is not None
    try:
        function = resolve_entry_point(step.call)
    except ValueError as exc:
        return StepOutcome("failed", error=str(exc))
    kwargs = render_value(step.with_ or {}, ctx.template_context())
    assert isinstance(kwargs, dict)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = function(**kwargs)
        except Exception as exc:  # the entry point's failure is the step's failure
            result["error"] = f"{type(exc).__name__}: {exc}"

    if step.timeout is None:
        target()
    else:
        # A Python function cannot be killed; the step times out and the thread is left to finish.
        worker = threading.Thread(target=target, daemon=True, name=f"bcm-call-{step.id}")
        worker.start()
        worker.join(step.timeout.total_seconds())
        if worker.is_alive():
            return StepOutcome("timed_out", error=f"{step.call} timed out after {step.timeout.total_seconds():g}s")
    if "error" in result:
        return StepOutcome("failed", error=result["error"])
    return StepOutcome("succeeded", output=_jsonable(result.get("value")))


KIND = StepKindDef(
    name="call",
    model=None,
    describe=describe,
    default_exercise="simulate",
    templates=(("with", "**"),),
    execute=execute,
)
