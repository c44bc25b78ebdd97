"""Every runbook in the library, run end to end as an exercise with auto-approve, inside a sandbox."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bcm.spec import load_one
from bcm.spec.models import Step
from tests.conftest import ROOT
from tests.engine.conftest import BcmEnv

pytestmark = pytest.mark.prefect

LIBRARY = ROOT / "runbooks"
SCRIPTS = LIBRARY / "scripts"
PHASES = ("communication", "response", "recovery")
NON_SYSTEM_KINDS = frozenset({"notify", "approve", "manual", "wait"})
HEADLINE_MILESTONES = ("declared", "acknowledged", "mitigated", "recovered")
LIFECYCLE = {"declared", "detected", "acknowledged", "mitigated", "recovered", "resolved", "stood_down"}
EXERCISE_PREFIX = "[EXERCISE] "

# Trigger-time parameters a commander would give in each exercise (required ones at least).
EXERCISE_PARAMETERS: dict[str, dict[str, str]] = {
    "ai-incident": {"harm": "privacy-leak", "high_risk": "true", "people_affected": "120"},
    "dc-power-loss": {"site": "lon-dc1", "on_generators": "false"},
    "ddos": {"prefix": "203.0.113.0/24", "attack_type": "volumetric", "peak_gbps": "140"},
    "fibre-cut": {"link": "lon-man-1", "customer_impact": "true"},
    "insider-threat": {
        "subject_ref": "IT-2026-014",
        "account": "svc-adm-0042",
        "indicator": "data-exfiltration",
        "immediate_risk": "true",
        "personal_data": "true",
    },
    "le-emergency-disclosure": {
        "request_ref": "EDR-2026-0311",
        "agency": "Metropolitan Police, kidnap unit",
        "emergency": "kidnapping",
        "data_requested": "cell-location",
    },
    "pandemic": {"absence_pct": "35", "offices_closed": "true"},
    "ransomware": {
        "segment": "corp-servers-lon",
        "first_host": "lon-fs-07",
        "personal_data_involved": "true",
        "financial_entity": "true",
        "sec_registrant": "true",
    },
    "supplier-failure": {
        "supplier": "payment-gateway-primary",
        "service": "payments",
        "alternate": "payment-gateway-secondary",
        "expected_outage_h": "36",
    },
    "vuln-disclosure": {"report_id": "BB-2026-0107", "product": "customer-portal", "rating": "critical"},
}

# What the read-only checks an exercise really runs (`exercise: run`) find in the sandbox state.
SCRIPT_STATE = {
    "check_ups": "ok: on line, batteries 100%",
    "check_fuel": "72",
    "check_protection_path": "ok: protection path up, route-diverse",
    "check_vpn_capacity": "1200",
}
EXPECTED_CHECK_OUTPUT = {
    (
        "dc-power-loss",
        "ups-status",
    ): "check_ups lon-dc1: ok (UPS on line, batteries healthy): ok: on line, batteries 100%\n",
    ("dc-power-loss", "fuel-status"): "check_fuel lon-dc1: ok (generator fuel 72 hours >= 24)\n",
    ("fibre-cut", "protection-state"): (
        "check_protection_path lon-man-1: ok (protection path up and diverse): ok: protection path up, route-diverse\n"
    ),
    ("pandemic", "remote-capacity-now"): (
        "check_vpn_capacity vpn-lon: ok (remote-access seats 1200 seats >= 850)\n"
        "check_vpn_capacity vpn-man: ok (remote-access seats 1200 seats >= 850)\n"
    ),
}

# The steps each exercise skips: `exercise: skip` timers and branches whose `when` is false.
EXPECTED_SKIPPED = {
    "ai-incident": {"rollback"},
    "dc-power-loss": {"fuel-callout", "stability-soak"},
    "ddos": {"application-edge", "attack-quiet"},
    "fibre-cut": {"reroute", "restore-link", "soak"},
    "insider-threat": {"ciso-privileged"},
    "le-emergency-disclosure": {"refuse"},
    "pandemic": {"on-site-safety"},
    "ransomware": set(),
    "supplier-failure": {"legal-position"},
    "vuln-disclosure": {"close-invalid"},
}

# The milestones deadline clocks start at, marked by the steps each exercise runs (the parameters
# above take every regulatory path).
EXPECTED_CLOCK_MARKS = {
    "ai-incident": {"aware"},
    "dc-power-loss": set(),
    "ddos": {"aware"},
    "fibre-cut": {"aware"},
    "insider-threat": {"aware"},
    "le-emergency-disclosure": {"received"},
    "pandemic": set(),
    "ransomware": {"aware", "classified_major", "materiality_determined"},
    "supplier-failure": set(),
    "vuln-disclosure": {"received"},
}

RUNBOOK_IDS = sorted(path.stem for path in LIBRARY.glob("*.yaml"))


def incident_steps(runbook_id: str) -> dict[str, Step]:
    """The steps an incident or exercise run executes, by id."""
    loaded, _ = load_one(str(LIBRARY / f"{runbook_id}.yaml"), library_root=LIBRARY)
    return {step.id: step for phase in PHASES for step in getattr(loaded.runbook.phases, phase)}


def tree_fingerprint() -> tuple[str, list[str], dict[str, int]]:
    """`git status` of runbooks/, the repository's top-level entries and the mtime of every file in runbooks/."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", "runbooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    top_level = sorted(os.listdir(ROOT))
    mtimes = {str(path.relative_to(ROOT)): path.stat().st_mtime_ns for path in sorted(LIBRARY.rglob("*"))}
    return status, top_level, mtimes


@pytest.fixture
def sandbox(bcm_env: BcmEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BcmEnv:
    """The shipped library, with HOME, TMPDIR and script state inside tmp_path and actions never live."""
    state = tmp_path / "script-state"
    state.mkdir()
    for check, line in SCRIPT_STATE.items():
        (state / check).write_text(line + "\n")
    for name in ("home", "tmp"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("BCM_RUNBOOKS", str(LIBRARY))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("BCM_SCRIPTS_STATE", str(state))
    monkeypatch.delenv("BCM_SCRIPTS_LIVE", raising=False)
    monkeypatch.delenv("BCM_SCRIPTS_HOOKS", raising=False)
    return bcm_env


def test_every_runbook_has_exercise_parameters() -> None:
    """The exercise table covers exactly the runbooks in the library, so a new runbook cannot go untested."""
    assert sorted(EXERCISE_PARAMETERS) == RUNBOOK_IDS
    assert sorted(EXPECTED_SKIPPED) == RUNBOOK_IDS
    assert sorted(EXPECTED_CLOCK_MARKS) == RUNBOOK_IDS
    assert len(RUNBOOK_IDS) == 10


@pytest.mark.parametrize("runbook_id", RUNBOOK_IDS)
def test_long_waits_are_skipped_in_exercises(runbook_id: str) -> None:
    """Every `wait` step in the library is `exercise: skip`: an exercise never sits out a soak timer."""
    waits = {sid: step.exercise_behaviour for sid, step in incident_steps(runbook_id).items() if step.kind == "wait"}
    assert waits == {sid: "skip" for sid in waits}


@pytest.mark.parametrize("runbook_id", RUNBOOK_IDS)
def test_runbook_exercise_end_to_end(sandbox: BcmEnv, runbook_id: str) -> None:
    """Exercise + auto-approve succeeds, records every milestone its executed steps mark and touches nothing real."""
    steps = incident_steps(runbook_id)
    before = tree_fingerprint()

    state, run_id = sandbox.run(
        runbook_id, parameters=EXERCISE_PARAMETERS[runbook_id], mode="exercise", auto_approve=True
    )

    assert state.is_completed(), state.message
    with sandbox.store() as store:
        record = store.get_run(run_id)
    assert (record.status, record.mode, record.error) == ("succeeded", "exercise", None)
    records = sandbox.steps(run_id)
    assert sorted(records) == sorted(steps)
    assert {s.status for s in records.values()} <= {"succeeded", "skipped"}

    # Milestones: exactly those marked by the steps that ran, with the headline ones present.
    executed = {sid for sid, s in records.items() if s.status == "succeeded"}
    expected_marks = {steps[sid].marks for sid in executed if steps[sid].marks}
    assert set(sandbox.marks(run_id)) == expected_marks
    marked_anywhere = {step.marks for step in steps.values() if step.marks}
    headline = {m for m in HEADLINE_MILESTONES if m in marked_anywhere}
    assert headline <= expected_marks
    assert expected_marks == LIFECYCLE | EXPECTED_CLOCK_MARKS[runbook_id]

    # Skips happen only for the exercise convention or a `when` that was false.
    assert {sid for sid, s in records.items() if s.status == "skipped"} == EXPECTED_SKIPPED[runbook_id]
    for sid, s in records.items():
        if s.status == "skipped":
            wanted = (
                "exercise: skip" if steps[sid].exercise_behaviour == "skip" else f"when {steps[sid].when} was false"
            )
            assert (sid, s.reason) == (sid, wanted)

    # Nothing real: people and messages only, simulated systems, and read-only checks from runbooks/scripts.
    for sid in sorted(executed):
        step, output = steps[sid], records[sid].output
        if step.kind in NON_SYSTEM_KINDS:
            continue
        if step.kind in ("http", "call"):
            assert (sid, output["simulated"]) == (sid, True)
            continue
        assert step.kind == "run"
        if step.exercise_behaviour == "simulate":
            assert (sid, output["simulated"]) == (sid, True)
            continue
        assert step.run is not None
        script = (LIBRARY / step.run[0]).resolve()
        assert (script.parent, script.name.startswith("check_")) == (SCRIPTS, True), sid
        assert (sid, output["exit_code"], output["stdout"]) == (
            sid,
            0,
            EXPECTED_CHECK_OUTPUT[(runbook_id, sid)],
        )
    really_ran = {sid for sid in executed if steps[sid].kind == "run" and steps[sid].exercise_behaviour == "run"}
    assert really_ran == {sid for rb, sid in EXPECTED_CHECK_OUTPUT if rb == runbook_id}

    # Every stakeholder message (a transcript line with text: a post, an update) says it is an exercise.
    transcript = (sandbox.home / "transcript.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [record["text"] for record in map(json.loads, filter(None, transcript)) if "text" in record]
    assert texts
    assert [text for text in texts if not text.startswith(EXERCISE_PREFIX)] == []

    assert tree_fingerprint() == before
    assert os.listdir(Path(os.environ["HOME"])) == []
