"""The run context: who, what and when of a run, and the template context built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bcm.durations import to_duration_string
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.spec.models import Runbook
from bcm.spec.summary import effective_targets


@dataclass(frozen=True)
class RunInfo:
    """Identity of a run, as templates see it under ``run``."""

    id: str
    mode: str
    started_at: datetime
    triggered_by: str

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id: what people type."""
        return self.id[:8]


@dataclass
class StepState:
    """What templates see of a step: ``steps['id'].status`` and ``.output``."""

    status: str = "pending"
    output: Any = None


@dataclass
class RunContext:
    """Everything a step needs to render its templates and act."""

    loaded: LoadedRunbook
    catalog: Catalog
    run: RunInfo
    params: dict[str, object]
    steps: dict[str, StepState] = field(default_factory=dict)

    @property
    def runbook(self) -> Runbook:
        """The validated runbook."""
        return self.loaded.runbook

    @property
    def exercise(self) -> bool:
        """True in exercise mode."""
        return self.run.mode == "exercise"

    def template_context(self, *, escape: Callable[[str], str] | None = None) -> dict[str, object]:
        """The names templates may use: params, runbook, run, steps, targets, services.

        Args:
            escape: applied to every string that comes from outside the runbook (parameters,
                step output, who triggered the run) — :func:`bcm.templates.escape_mrkdwn` for text
                bound for Slack, so a value cannot inject ``<!channel>`` or a link.
        """
        rb = self.runbook
        targets = effective_targets(rb, self.catalog)
        outside: Callable[[Any], Any] = (lambda v: _escape_tree(v, escape)) if escape else (lambda v: v)
        return {
            "params": outside(dict(self.params)),
            "runbook": {"id": rb.id, "title": rb.title, "owner": rb.owner, "severity": rb.severity},
            "run": {
                "id": self.run.id,
                "short_id": self.run.short_id,
                "mode": self.run.mode,
                "started_at": self.run.started_at.isoformat(),
                "triggered_by": outside(self.run.triggered_by),
            },
            "steps": {sid: {"status": s.status, "output": outside(s.output)} for sid, s in self.steps.items()},
            "targets": {
                "rto": to_duration_string(targets.rto) if targets.rto else None,
                "rpo": to_duration_string(targets.rpo) if targets.rpo else None,
            },
            "services": [
                {
                    "id": s.id,
                    "name": s.name,
                    "tier": s.tier,
                    "owner": s.owner,
                    "rto": to_duration_string(s.rto),
                    "rpo": to_duration_string(s.rpo),
                    "mtpd": to_duration_string(s.mtpd),
                    "mbco": s.mbco,
                }
                for s in (self.catalog.services[i] for i in rb.services if i in self.catalog.services)
            ],
        }


def _escape_tree(value: Any, escape: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: _escape_tree(v, escape) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_tree(v, escape) for v in value]
    return value
