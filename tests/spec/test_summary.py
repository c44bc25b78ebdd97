"""What people see of a runbook: the arrows of its step graph and where its targets come from."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from bcm.spec import Catalog, load_catalog
from bcm.spec.models import Runbook
from bcm.spec.summary import TargetSource, drawn_dependencies, target_sources
from tests.conftest import FIXTURES


def _catalog() -> Catalog:
    catalog, problems = load_catalog(FIXTURES / "catalog")
    assert problems == [] and catalog is not None
    return catalog


def _runbook(phases: dict[str, Any], **top: Any) -> Runbook:
    return Runbook.model_validate(
        {"version": 1, "id": "r", "title": "R", "owner": "voice_ops", "severity": "sev2", "phases": phases, **top}
    )


def test_recovery_is_drawn_after_the_ends_of_response_not_after_every_response_step() -> None:
    """Every recovery step waits for all of response; drawn: from the response steps nothing else waits for."""
    runbook = _runbook(
        {
            "communication": [{"id": "declare", "wait": "1s"}],
            "response": [
                {"id": "a", "wait": "1s"},
                {"id": "b", "wait": "1s"},  # follows a
                {"id": "c", "wait": "1s", "needs": ["declare"]},  # runs beside a and b
            ],
            "recovery": [
                {"id": "x", "wait": "1s"},
                {"id": "y", "wait": "1s"},  # follows x, which already waited for response
                {"id": "z", "wait": "1s", "needs": ["a", "declare"]},  # both implied by the response barrier
            ],
        }
    )
    assert drawn_dependencies(runbook) == {
        "declare": (),
        "a": (),
        "b": ("a",),
        "c": ("declare",),
        "x": ("b", "c"),
        "y": ("x",),
        "z": ("b", "c"),
    }


def test_prevention_checks_stand_alone_unless_they_need_another() -> None:
    """Readiness checks are drawn without arrows, except the ones their `needs` names."""
    runbook = _runbook(
        {
            "prevention": [
                {"id": "p1", "wait": "1s"},
                {"id": "p2", "wait": "1s"},
                {"id": "p3", "wait": "1s", "needs": ["p1"]},
            ],
            "response": [{"id": "r", "wait": "1s"}],
        }
    )
    assert drawn_dependencies(runbook) == {"p1": (), "p2": (), "p3": ("p1",), "r": ()}


def test_targets_name_their_source_runbook_or_the_tightest_bia() -> None:
    """A runbook target is its own; otherwise the tightest BIA value, naming every service that has it."""
    catalog = _catalog()
    dns = catalog.services["dns"]
    tied = replace(catalog, services={**catalog.services, "dns": dns.model_copy(update={"mtpd": timedelta(hours=8)})})
    runbook = _runbook({"response": [{"id": "r", "wait": "1s"}]}, services=["voice-core", "dns"], targets={"rpo": "5m"})
    assert target_sources(runbook, tied) == (
        TargetSource("RTO", timedelta(minutes=15), "bia", ("dns",)),
        TargetSource("RPO", timedelta(minutes=5), "runbook"),
        TargetSource("MTPD", timedelta(hours=8), "bia", ("voice-core", "dns")),
    )
    assert [s.describe() for s in target_sources(runbook, tied)] == [
        "the BIA of dns",
        "the runbook",
        "the BIA of voice-core, dns",
    ]


def test_targets_without_services_or_runbook_values_are_not_set() -> None:
    """No services and no runbook targets: each target says it is not set."""
    sources = target_sources(_runbook({"response": [{"id": "r", "wait": "1s"}]}), _catalog())
    assert [(s.name, s.value, s.describe()) for s in sources] == [
        (name, None, "not set: no runbook target and no service with a BIA") for name in ("RTO", "RPO", "MTPD")
    ]
