"""Trigger-time parameters are checked against the runbook's declared types."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcm.spec import load_catalog, load_runbook
from bcm.spec.params import resolve_parameters

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def runbook():  # type: ignore[no-untyped-def]
    catalog, problems = load_catalog(FIXTURES / "catalog")
    assert problems == [] and catalog is not None
    loaded, problems = load_runbook(FIXTURES / "valid" / "voice-outage.yaml", catalog)
    assert problems == [] and loaded is not None
    return loaded.runbook


def test_values_are_typed_and_defaults_filled(runbook) -> None:  # type: ignore[no-untyped-def]
    """Strings from the command line become the declared types; defaults fill the rest."""
    values, problems = resolve_parameters(runbook, {"site": "lon-dc1", "capacity_pct": "75"})
    assert problems == []
    assert values == {"site": "lon-dc1", "capacity_pct": 75}
    values, _ = resolve_parameters(runbook, {"site": "man-dc2"})
    assert values == {"site": "man-dc2", "capacity_pct": 50}


def test_every_parameter_problem_is_reported(runbook) -> None:  # type: ignore[no-untyped-def]
    """Missing, mistyped, out-of-enum and unknown parameters are all reported together."""
    _, problems = resolve_parameters(runbook, {"capacity_pct": "lots", "sight": "x"})
    assert problems == [
        "unknown parameter 'sight' (this runbook takes: capacity_pct, site)",
        "missing required parameter 'site' (Affected site): give it with -p site=VALUE",
        "parameter 'capacity_pct': expected an integer, got 'lots'",
    ]
    _, problems = resolve_parameters(runbook, {"site": "paris"})
    assert problems == ["parameter 'site': expected one of lon-dc1, man-dc2, got 'paris'"]
