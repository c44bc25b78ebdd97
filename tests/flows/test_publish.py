"""Publishing a finished run: table and markdown artifacts and events, read back from the Prefect test server."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.filters import EventFilter, EventResourceFilter

from bcm.durations import format_duration
from bcm.reports.run_summary import artifact_key
from tests.engine.conftest import BcmEnv, engine_runbook

pytestmark = pytest.mark.prefect

RTO_BREACH = """\
version: 1
id: rto-breach
title: DNS resolvers down
owner: network_ops
severity: sev1
services: [dns]
targets: {rto: 1s}
phases:
  communication:
    - id: declare
      notify: {to: [exec], message: "DNS resolvers down"}
      marks: declared
  recovery:
    - id: restore
      wait: 2s
      marks: recovered
"""


def _artifact(key: str) -> Any:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert len(found) == 1, key
    return found[0]


def _events(run_id: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """The run's events, once the server has stored ``expected`` of them (it stores them asynchronously)."""
    wanted = EventFilter(resource=EventResourceFilter(id=[f"bcm.run.{run_id}"]))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=wanted, limit=50).events
        if len(events) >= expected or time.monotonic() > deadline:
            return sorted(events, key=lambda e: e.event)
        time.sleep(0.5)


def test_rto_breach_publishes_artifacts_and_events(bcm_env_both: BcmEnv, tmp_path: Path) -> None:
    """A run that recovers after its RTO publishes the timeline table, a 'MISSED' summary and bcm.rto.breached."""
    runbook = tmp_path / "rto-breach.yaml"
    runbook.write_text(RTO_BREACH, encoding="utf-8")
    _, run_id = bcm_env_both.run(str(runbook), mode="real", triggered_by="alice")
    marks = bcm_env_both.marks(run_id)
    ttr = marks["recovered"].at - marks["declared"].at
    short = run_id[:8]

    table = _artifact(f"bcm-run-{short}")
    assert table.type == "table"
    rows = json.loads(table.data)
    assert [(r["kind"], r["name"]) for r in rows] == [
        ("milestone", "declared"),
        ("milestone", "recovered"),
        ("step", "declare"),
        ("step", "restore"),
        ("figure", "time to detect"),
        ("figure", "time to acknowledge"),
        ("figure", "time to mitigate"),
        ("figure", "time to recover"),
        ("figure", "time to resolve"),
        ("target", "RTO"),
        ("target", "MTPD"),
    ]
    assert rows[0]["at"] == marks["declared"].at.isoformat(timespec="seconds")
    assert rows[4]["detail"] == "unknown: no 'impact_started' or 'detected' milestone recorded"
    assert rows[7]["duration"] == format_duration(ttr)
    assert rows[9]["detail"] == (
        f"RTO 1s MISSED by {format_duration(ttr - timedelta(seconds=1))}: recovered in {format_duration(ttr)}"
    )
    assert rows[10]["detail"] == "MTPD 2h not breached"

    summary = _artifact(f"bcm-run-{short}-summary")
    assert summary.type == "markdown"
    assert summary.data.splitlines()[:5] == [
        f"# DNS resolvers down: run {short} (real, succeeded)",
        "",
        rows[9]["detail"].join(["**", "**"]),
        "",
        "**MTPD 2h not breached**",
    ]

    events = _events(run_id, expected=4)
    assert [e.event for e in events] == [
        "bcm.milestone.declared",
        "bcm.milestone.recovered",
        "bcm.rto.breached",
        "bcm.run.completed",
    ]
    completed = events[3]
    assert completed.resource.id == f"bcm.run.{run_id}"
    assert completed.resource["bcm.mode"] == "real"
    assert completed.resource["bcm.runbook"] == "rto-breach"
    # Prefect adds the flow run, flow and their tags as related resources; bcm's come first.
    assert [(r.id, r.role) for r in completed.related if r.id.startswith("bcm.")] == [
        ("bcm.service.dns", "service"),
        ("bcm.runbook.rto-breach", "runbook"),
        ("bcm.mode.real", "mode"),
    ]
    assert completed.payload["rto_s"] == 1.0
    assert completed.payload["rto_attained"] is False
    assert completed.payload["time_to_recover_s"] == ttr.total_seconds()
    assert completed.payload["time_to_recover_from"] == "declared"
    assert events[1].occurred == marks["recovered"].at
    assert "flow-run" in {r.role for r in completed.related}


def test_exercise_without_targets_says_rto_not_known(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """An exercise of a runbook without services or targets: no bcm.rto.breached, RTO 'not known'."""
    _, run_id = bcm_env.run(
        engine_runbook("exercise"), parameters={"out": str(tmp_path / "x")}, mode="exercise", auto_approve=True
    )
    summary = _artifact(artifact_key(run_id, "summary"))
    assert summary.data.splitlines()[2] == "**RTO -: not known (no RTO set)**"
    events = _events(run_id, expected=5)
    assert [e.event for e in events] == [
        "bcm.milestone.acknowledged",
        "bcm.milestone.declared",
        "bcm.milestone.mitigated",
        "bcm.milestone.recovered",
        "bcm.run.completed",
    ]
    assert events[4].payload["rto_attained"] is None
    assert [(r.id, r.role) for r in events[4].related if r.id.startswith("bcm.")] == [
        ("bcm.runbook.exercise", "runbook"),
        ("bcm.mode.exercise", "mode"),
    ]


def test_artifact_key_is_lowercase_letters_digits_and_dashes() -> None:
    """Artifact keys use the run's short id: Prefect accepts only lowercase letters, digits and dashes."""
    assert artifact_key("0A1B2C3D4E5F40718293A4B5C6D7E8F9") == "bcm-run-0a1b2c3d"
    assert artifact_key("0a1b2c3d4e5f", "summary") == "bcm-run-0a1b2c3d-summary"


def test_shipped_automation_is_a_valid_prefect_automation() -> None:
    """automations/rto-breached.yaml parses as a Prefect automation reacting to bcm.rto.breached."""
    import yaml
    from prefect.events.schemas.automations import AutomationCore

    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "automations" / "rto-breached.yaml").read_text(encoding="utf-8"))
    automation = AutomationCore.model_validate(data)
    assert automation.name == "bcm RTO breached"
    assert automation.trigger.expect == {"bcm.rto.breached"}  # type: ignore[union-attr]
    assert [action.type for action in automation.actions] == ["send-notification"]
