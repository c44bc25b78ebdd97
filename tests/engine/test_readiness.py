"""Readiness checks: independent unless `needs` says so, and a failed script names what is not ready."""

from __future__ import annotations

from pathlib import Path

from bcm.comms import RecordingNotifier
from bcm.engine.readiness import run_checks
from bcm.spec import load_catalog, load_runbook
from bcm.store import Store
from tests.conftest import FIXTURES


def test_checks_are_independent_and_failures_name_the_subject(tmp_path: Path) -> None:
    """One failed check does not hide the next; a check needing a failed one is not run (unless that one
    says on_failure: continue); the detail of a failed script is the line of the subject not ready."""
    catalog, _ = load_catalog(FIXTURES / "catalog")
    assert catalog is not None
    loaded, problems = load_runbook(FIXTURES / "engine" / "readiness.yaml", catalog)
    assert problems == [] and loaded is not None
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        results = run_checks(loaded, catalog, {}, store=store, notifier=RecordingNotifier())
        recorded = [(c.step_id, c.ok) for c in reversed(store.list_checks(runbook_id="readiness"))]
    assert [(r.step_id, r.ok, r.detail) for r in results] == [
        ("ups", False, "exit code 1: ups man: NOT READY: battery 2 degraded"),
        ("generators", True, "generators: ok"),
        ("fuel", False, "exit code 2"),
        ("load-test", False, "not checked: ups failed first"),
        ("fuel-contract", True, "contract: ok"),
    ]
    assert recorded == [
        ("ups", False),
        ("generators", True),
        ("fuel", False),
        ("load-test", False),
        ("fuel-contract", True),
    ]
