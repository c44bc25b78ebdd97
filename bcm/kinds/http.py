"""``http: {method, url, headers?, json?, expect_status}``: an HTTP call."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import httpx
from pydantic import Field

from bcm.kinds.base import ActionEnv, Model, StepKindDef, StepOutcome, clip
from bcm.templates import render, render_value

if TYPE_CHECKING:
    from bcm.engine.context import RunContext
    from bcm.spec.models import Step

DEFAULT_HTTP_TIMEOUT = timedelta(seconds=30)


class HttpAction(Model):
    """An HTTP call; the step fails when the status is not one of ``expect_status``."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])


def describe(step: Step) -> str:
    """``http METHOD URL``."""
    assert step.http is not None
    return f"http {step.http.method} {step.http.url}"


def execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    """Make the request (templates rendered); fail on a status not in ``expect_status``."""
    assert step.http is not None
    spec = step.http
    tctx = ctx.template_context()
    url = render(spec.url, tctx)
    headers = {k: render(v, tctx) for k, v in spec.headers.items()}
    body = render_value(spec.json_body, tctx) if spec.json_body is not None else None
    timeout = (step.timeout or DEFAULT_HTTP_TIMEOUT).total_seconds()
    try:
        response = httpx.request(spec.method, url, headers=headers, json=body, timeout=timeout)
    except httpx.TimeoutException:
        return StepOutcome("timed_out", error=f"{spec.method} {url} timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return StepOutcome("failed", error=f"{spec.method} {url} failed: {exc}")
    output: dict[str, Any] = {"status": response.status_code, "body": clip(response.text)}
    if response.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(ValueError):
            output["json"] = response.json()
    if response.status_code not in spec.expect_status:
        expected = ", ".join(str(s) for s in spec.expect_status)
        return StepOutcome(
            "failed", output=output, error=f"{spec.method} {url} answered {response.status_code}, expected {expected}"
        )
    return StepOutcome("succeeded", output=output)


KIND = StepKindDef(
    name="http",
    model=HttpAction,
    describe=describe,
    default_exercise="simulate",
    templates=(("http", "url"), ("http", "headers", "*"), ("http", "json", "**")),
    execute=execute,
)
