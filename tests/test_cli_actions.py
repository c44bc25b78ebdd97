"""`bcm actions list|add|update|close` (and a run's actions in `bcm status`) as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bcm.store import ExerciseRunRecord, Store
from tests.conftest import ROOT
from tests.incident_fixtures import make_library

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
REAL_RUN = "3f2a9c1e" + "0" * 24
EXERCISE_RUN = "7b1d4e2f" + "1" * 24
EXERCISE = """\
version: 1
id: dns-tabletop
title: DNS tabletop
runbook: dns-outage
type: tabletop
scope: The DNS service and network operations.
scenario: The resolvers stop answering at 09:00.
sponsor: exec
participants: [network_ops, incident_commander]
evaluators: [incident_commander]
objectives:
  - id: restore-within-rto
    title: DNS answers again within the RTO
    capability: infrastructure-systems
    measure: {target: rto}
  - id: updates-on-cadence
    title: Stakeholders hear from us every 30 minutes
    capability: public-information-and-warning
    measure: {cadence: kept}
"""


class Bcm:
    """Runs `python -m bcm` against one state folder, store and library (with a DNS exercise and two runs)."""

    def __init__(self, root: Path, db_url: str) -> None:
        library = make_library(root)
        (library / "exercises").mkdir()
        (library / "exercises" / "dns-tabletop.yaml").write_text(EXERCISE, encoding="utf-8")
        self.env = {
            **os.environ,
            "BCM_HOME": str(root / "home"),
            "BCM_DATABASE_URL": db_url,
            "BCM_RUNBOOKS": str(library),
        }
        self.db_url = db_url
        self.catalog = library / "catalog" / "stakeholders.yaml"
        with Store.open(db_url) as store:
            for run_id, mode in ((REAL_RUN, "real"), (EXERCISE_RUN, "exercise")):
                store.create_run(
                    run_id=run_id,
                    runbook_id="dns-outage",
                    runbook_title="DNS outage",
                    runbook_hash="ab" * 32,
                    runbook_path=str(library / "dns-outage.yaml"),
                    mode=mode,
                    parameters={},
                    triggered_by="Ada Lovelace",
                    services=["dns"],
                    severity="sev2",
                    started_at=T0,
                    status="succeeded",
                )
            store.start_exercise(
                ExerciseRunRecord(
                    run_id=EXERCISE_RUN,
                    exercise_id="dns-tabletop",
                    exercise_title="DNS tabletop",
                    exercise_hash="cd" * 32,
                    exercise_path=str(library / "exercises" / "dns-tabletop.yaml"),
                    speed=1.0,
                    auto_respond=False,
                    startex_at=T0,
                    endex_at=None,
                    ended_by=None,
                )
            )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout

    def add(
        self,
        *extra: str,
        due: str = "2099-06-30",
        owner: str = "network_ops",
        finding: str = "Resolver failover was manual",
        action: str = "Automate resolver failover",
    ) -> str:
        return self.ok(
            "actions", "add", "--finding", finding, "--action", action, "--owner", owner, "--due", due,
            "--by", "Edsger Dijkstra", *extra,
        )  # fmt: skip

    def audit(self) -> list[dict[str, object]]:
        """The audit entries about corrective actions: kind and data."""
        lines = self.ok("audit", "export").splitlines()
        entries = [json.loads(line) for line in lines]
        return [{"kind": e["kind"], "data": e["data"]} for e in entries if str(e["kind"]).startswith("action.")]


@pytest.fixture
def bcm(tmp_path: Path) -> Bcm:
    """The bcm command on a SQLite store with a real run and an exercise run of dns-tabletop."""
    return Bcm(tmp_path, f"sqlite:///{tmp_path / 'state' / 'bcm.db'}")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Bcm:
    """One store for the refusals (which change nothing): CA-1 in progress, CA-2 done, CA-3 verified."""
    root = tmp_path_factory.mktemp("refusals")
    bcm = Bcm(root, f"sqlite:///{root / 'state' / 'bcm.db'}")
    for _ in range(3):
        bcm.add()
    bcm.ok("actions", "update", "CA-1", "--status", "in_progress", "--by", "Edsger Dijkstra")
    bcm.ok("actions", "close", "CA-2", "--evidence", "Runbook updated", "--by", "Edsger Dijkstra")
    bcm.ok("actions", "close", "CA-3", "--evidence", "Runbook updated", "--by", "Edsger Dijkstra")
    bcm.ok("actions", "close", "CA-3", "--verified", "--evidence", "Drill passed", "--by", "Ada Lovelace")
    return bcm


def today() -> date:
    return datetime.now(UTC).date()


def table(*rows: str) -> str:
    """The table `bcm actions list` prints: its title with today's date, then ``rows``."""
    return f"Corrective actions by due date (today {today().isoformat()}, UTC)\n" + "\n".join(rows) + "\n"


def test_add_update_close_round_trip(tmp_path: Path, db_url: str) -> None:
    """Add, update, close and list, with exact output, on SQLite and PostgreSQL."""
    bcm = Bcm(tmp_path, db_url)
    assert bcm.add("--start", "2099-01-01", "--element", "equipment", finding="Manual", action="Automate") == (
        "CA-1 added by Edsger Dijkstra: network_ops owns it, due 2099-06-30\n"
    )
    assert bcm.add(due="2099-03-31", owner="voice_ops") == (
        "CA-2 added by Edsger Dijkstra: voice_ops owns it, due 2099-03-31\n"
    )
    assert bcm.ok("actions", "update", "CA-1", "--status", "in-progress", "--due", "2099-07-31", "--by", "Ada") == (
        "CA-1 updated by Ada: status open → in_progress; due_on 2099-06-30 → 2099-07-31\n"
    )
    assert bcm.ok("actions", "update", "1", "--evidence", "PR 42", "--by", "Ada") == (
        "CA-1 updated by Ada: evidence set\n"
    )
    assert bcm.ok("actions", "update", "1", "--status", "in_progress", "--by", "Ada") == (
        "CA-1 unchanged: it already has those values\n"
    )
    assert bcm.ok("actions", "close", "CA-2", "--evidence", "Failover runbook v3", "--by", "Alan Turing") == (
        "CA-2 done (was open) by Alan Turing, with evidence\n"
    )
    assert bcm.ok("actions", "list") == table(
        "┏━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━┓",
        "┃ ref  ┃ due        ┃ status      ┃ owner       ┃ element   ┃ action   ┃ finding ┃ run ┃",
        "┡━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━┩",
        "│ CA-1 │ 2099-07-31 │ in_progress │ network_ops │ equipment │ Automate │ Manual  │ -   │",
        "└──────┴────────────┴─────────────┴─────────────┴───────────┴──────────┴─────────┴─────┘",
    ) + "1 open, 0 overdue\n"  # fmt: skip
    doc = json.loads(bcm.ok("actions", "list", "--all", "--json"))
    assert [(a["ref"], a["status"], a["owner"], a["due_on"], a["evidence"], a["action"]) for a in doc["actions"]] == [
        ("CA-2", "done", "voice_ops", "2099-03-31", "Failover runbook v3", "Automate resolver failover"),
        ("CA-1", "in_progress", "network_ops", "2099-07-31", "PR 42", "Automate"),
    ]
    assert doc["summary"] == {"listed": 2, "open": 1, "overdue": 0}
    assert doc["actions"][0]["closed_at"] is not None
    assert doc["actions"][1]["closed_at"] is None


def test_overdue_flagged_in_table_json_and_csv(bcm: Bcm) -> None:
    """An open action past its due date: OVERDUE n days in the table, overdue true in JSON and CSV."""
    bcm.add("--start", "2026-01-01", due="2026-01-31")
    bcm.add(due="2099-01-01", owner="exec")
    days = (today() - date(2026, 1, 31)).days
    due = f"2026-01-31 OVERDUE {days} days"
    lines = bcm.ok("actions", "list").splitlines()
    assert lines[4].startswith(f"│ CA-1 │ {due} │ open   │ network_ops │")
    assert lines[5].startswith(f"│ CA-2 │ {'2099-01-01':{len(due)}} │ open   │ exec        │")
    assert lines[-1] == "2 open, 1 overdue"
    doc = json.loads(bcm.ok("actions", "list", "--json"))
    assert [(a["ref"], a["overdue"], a["days_overdue"]) for a in doc["actions"]] == [
        ("CA-1", True, days),
        ("CA-2", False, 0),
    ]
    assert doc["summary"] == {"listed": 2, "open": 2, "overdue": 1}
    result = bcm("actions", "list", "--overdue", "--csv")
    assert (result.returncode, result.stderr) == (0, "1 open, 1 overdue\n")
    header, row = result.stdout.splitlines()
    assert header == (
        "ref,status,owner,element,start_on,due_on,overdue,days_overdue,finding,action,root_cause,evidence,"
        "run_id,objective_id,created_at,updated_at,closed_at"
    )
    assert row.startswith(
        f"CA-1,open,network_ops,planning,2026-01-01,2026-01-31,true,{days},Resolver failover was manual,"
        "Automate resolver failover,,,,,"
    )
    bcm.ok("actions", "close", "CA-1", "--evidence", "Done late", "--by", "Edsger Dijkstra")
    assert json.loads(bcm.ok("actions", "list", "--all", "--json"))["summary"] == {"listed": 2, "open": 1, "overdue": 0}


def test_list_filters_and_summary(bcm: Bcm) -> None:
    """--status, --all, --owner, --run (short id) and --overdue filter; the summary counts what is listed."""
    bcm.add("--run", REAL_RUN[:8])
    bcm.add(owner="exec")
    bcm.ok("actions", "close", "CA-2", "--evidence", "Call tree fixed", "--by", "Barbara Liskov")

    def refs(*args: str) -> list[str]:
        return [a["ref"] for a in json.loads(bcm.ok("actions", "list", *args, "--json"))["actions"]]

    assert refs() == ["CA-1"]
    assert refs("--all") == ["CA-1", "CA-2"]
    assert refs("--status", "done", "--status", "verified") == ["CA-2"]
    assert refs("--all", "--owner", "exec") == ["CA-2"]
    assert refs("--run", REAL_RUN[:8]) == ["CA-1"]
    assert refs("--overdue") == []
    assert bcm.ok("actions", "list", "--all").splitlines()[-1] == "1 open, 0 overdue, 1 done"
    assert bcm.ok("actions", "list", "--owner", "voice_ops") == (
        "no corrective actions match (only open and in-progress ones are listed: --all lists every status)\n"
    )


def test_audit_records_who_changed_what(bcm: Bcm) -> None:
    """The audit trail holds who added each action, and every change with its old and new values and who."""
    bcm.add("--start", "2099-01-01", "--run", EXERCISE_RUN[:8], "--objective", "restore-within-rto")
    bcm.ok("actions", "update", "CA-1", "--owner", "incident_commander", "--by", "Ada Lovelace")
    bcm.ok("actions", "close", "CA-1", "--evidence", "Failover automated", "--by", "Edsger Dijkstra")
    bcm.ok("actions", "update", "CA-1", "--status", "open", "--note", "Failed in the March drill", "--by", "Ada")
    assert bcm.audit() == [
        {
            "kind": "action.created",
            "data": {
                "id": 1,
                "by": "Edsger Dijkstra",
                "finding": "Resolver failover was manual",
                "action": "Automate resolver failover",
                "owner": "network_ops",
                "element": "planning",
                "status": "open",
                "start_on": "2099-01-01",
                "due_on": "2099-06-30",
                "evidence": None,
                "root_cause": None,
                "run_id": EXERCISE_RUN,
                "objective_id": "restore-within-rto",
            },
        },
        {
            "kind": "action.updated",
            "data": {
                "id": 1,
                "by": "Ada Lovelace",
                "changes": {"owner": {"from": "network_ops", "to": "incident_commander"}},
            },
        },
        {
            "kind": "action.updated",
            "data": {
                "id": 1,
                "by": "Edsger Dijkstra",
                "changes": {
                    "status": {"from": "open", "to": "done"},
                    "evidence": {"from": None, "to": "Failover automated"},
                },
            },
        },
        {
            "kind": "action.updated",
            "data": {
                "id": 1,
                "by": "Ada",
                "changes": {"status": {"from": "done", "to": "open"}},
                "note": "Failed in the March drill",
            },
        },
    ]  # fmt: skip
    exported = bcm.ok("audit", "export", "--run", EXERCISE_RUN[:8]).splitlines()
    assert [k for k in (json.loads(line)["kind"] for line in exported) if k.startswith("action.")] == [
        "action.created", "action.updated", "action.updated", "action.updated",
    ]  # fmt: skip


def test_run_and_objective_checks(bcm: Bcm) -> None:
    """--run takes a short id; --objective needs --run and, for an exercise run, one of its exercise's objectives."""
    assert bcm.add("--run", EXERCISE_RUN[:8], "--objective", "updates-on-cadence").startswith("CA-1 added")
    assert bcm.add("--run", REAL_RUN[:8], "--objective", "customer-comms").startswith("CA-2 added")
    doc = json.loads(bcm.ok("actions", "list", "--json"))
    assert [(a["run_id"], a["objective_id"]) for a in doc["actions"]] == [
        (EXERCISE_RUN, "updates-on-cadence"),
        (REAL_RUN, "customer-comms"),
    ]
    cases = {
        ("--objective", "updates-on-cadence"): (
            "--objective updates-on-cadence needs --run RUN: an objective belongs to the exercise a run played"
        ),
        ("--run", EXERCISE_RUN[:8], "--objective", "restore-in-rto"): (
            "--objective restore-in-rto: not an objective of exercise dns-tabletop, which run 7b1d4e2f played "
            "(did you mean 'restore-within-rto'?): its objectives are restore-within-rto, updates-on-cadence"
        ),
        ("--run", "ffff"): (
            "no run has an id starting with 'ffff': give the run id, or its first 8 characters as printed when the "
            "run started"
        ),
    }
    for extra, message in cases.items():
        result = bcm(
            "actions", "add", "--finding", "f", "--action", "a", "--owner", "exec", "--due", "2099-01-01",
            "--by", "x", *extra,
        )  # fmt: skip
        assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")


def test_status_shows_the_runs_actions(bcm: Bcm) -> None:
    """`bcm status RUN` lists the run's corrective actions, overdue ones flagged, and --json carries them."""
    bcm.add("--run", REAL_RUN[:8], "--start", "2026-01-01", due="2026-01-31")
    bcm.add(due="2099-01-01")
    days = (today() - date(2026, 1, 31)).days
    lines = bcm.ok("status", REAL_RUN[:8]).splitlines()
    assert lines[-1] == f"CA-1 open, network_ops, due 2026-01-31 OVERDUE {days} days: Automate resolver failover"
    doc = json.loads(bcm.ok("status", REAL_RUN[:8], "--json"))
    assert [(a["ref"], a["overdue"], a["days_overdue"]) for a in doc["corrective_actions"]] == [("CA-1", True, days)]


REFUSALS: dict[tuple[str, ...], str] = {
    ("add", "--finding", "f", "--action", "a", "--owner", "network-ops", "--due", "2099-01-01", "--by", "x"): (
        "--owner network-ops: unknown role 'network-ops' (did you mean 'network_ops'?): an owner is a role id "
        "from {catalog}"
    ),
    ("add", "--finding", "f", "--action", "a", "--owner", "exec", "--due", "2099-02-30", "--by", "x"): (
        "--due 2099-02-30: not a date: write YYYY-MM-DD, e.g. 2026-03-31"
    ),
    ("add", "--finding", "f", "--action", "a", "--owner", "exec", "--due", "31/01/2099", "--by", "x"): (
        "--due 31/01/2099: not a date: write YYYY-MM-DD, e.g. 2026-03-31"
    ),
    ("add", "--finding", "f", "--action", "a", "--owner", "exec", "--start", "2099-02-01", "--due", "2099-01-01",
     "--by", "x"): (
        "--due 2099-01-01 is before the start date 2099-02-01: give a due date on or after the start "
        "(or an earlier --start)"
    ),
    ("add", "--finding", "f", "--action", "a", "--owner", "exec", "--due", "2099-01-01", "--element", "trainig",
     "--by", "x"): (
        "--element trainig: unknown capability element (did you mean 'training'?): use one of planning, "
        "organisation, equipment, training, exercises"
    ),
    ("add", "--finding", "f", "--owner", "exec"): "missing --action, --due, --by: give them (see --help)",
    ("update", "CA-1", "--status", "closed", "--by", "x"): (
        "--status closed: unknown status: use one of open, in_progress, done, verified"
    ),
    ("update", "CA-1", "--status", "open", "--by", "x"): (
        "CA-1 is in_progress and cannot go back to open: statuses move open → in_progress → done → verified, "
        "and a done action may be reopened with --note"
    ),
    ("update", "CA-1", "--status", "done", "--by", "x"): (
        "CA-1 cannot be done without evidence: give --evidence (what shows it was done), or use "
        "`bcm actions close CA-1 --evidence TEXT --by WHO`"
    ),
    ("update", "CA-2", "--status", "in_progress", "--by", "x"): (
        "reopening CA-2 (done → in_progress) needs --note saying why it is not done after all"
    ),
    ("update", "CA-3", "--due", "2099-12-31", "--by", "x"): (
        "CA-3 is verified (an effectiveness review confirmed it) and stays closed: if the problem is back, "
        "add a new action with `bcm actions add`"
    ),
    ("update", "CA-1", "--due", "2000-01-01", "--by", "x"): (
        "--due 2000-01-01 is before the start date {start}: give a due date on or after the start"
    ),
    ("update", "CA-1", "--by", "x"): (
        "nothing to change: give --status, --due, --owner, --evidence, --action or --root-cause"
    ),
    ("update", "CA-1", "--status", "done"): "missing --by: give it (see --help)",
    ("update", "CA-9", "--status", "done", "--by", "x"): "no corrective action CA-9: `bcm actions list` shows them",
    ("update", "CA-x", "--status", "done", "--by", "x"): (
        "CA-x: not a corrective action: write CA-7 or 7 (`bcm actions list` shows them)"
    ),
    ("close", "CA-1", "--by", "x"): "missing --evidence: give it (see --help)",
    ("close", "CA-1", "--verified", "--evidence", "e", "--by", "x"): (
        "CA-1 is in_progress: verifying is the effectiveness review of a done action; close it first "
        "(`bcm actions close CA-1 --evidence TEXT --by WHO`), then `close --verified`"
    ),
    ("close", "CA-2", "--evidence", "e", "--by", "x"): (
        "CA-2 is already done: after the effectiveness review, "
        "`bcm actions close CA-2 --verified --evidence TEXT --by WHO`"
    ),
    ("close", "CA-3", "--evidence", "e", "--by", "x"): (
        "CA-3 is verified (an effectiveness review confirmed it) and stays closed: if the problem is back, "
        "add a new action with `bcm actions add`"
    ),
    ("list", "--owner", "voice_op"): (
        "--owner voice_op: unknown role 'voice_op' (did you mean 'voice_ops'?): an owner is a role id from {catalog}"
    ),
    ("list", "--all", "--status", "done"): "--all lists every status: give --all or --status, not both",
    ("list", "--json", "--csv"): "--json and --csv: give one of them",
}  # fmt: skip


@pytest.mark.parametrize("args", list(REFUSALS), ids=[" ".join(a[:4]) for a in REFUSALS])
def test_refusals_are_one_line_and_exit_2(seeded: Bcm, args: tuple[str, ...]) -> None:
    """Bad owner, date, element, status, transition or reference: one line saying what to do, exit 2."""
    message = REFUSALS[args].format(catalog=seeded.catalog, start=today().isoformat())
    result = seeded("actions", *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")


def test_refusals_change_nothing(seeded: Bcm) -> None:
    """After every refusal the plan is as seeded: CA-1 in progress, CA-2 done, CA-3 verified."""
    doc = json.loads(seeded.ok("actions", "list", "--all", "--json"))
    assert [(a["ref"], a["status"], a["due_on"]) for a in doc["actions"]] == [
        ("CA-1", "in_progress", "2099-06-30"),
        ("CA-2", "done", "2099-06-30"),
        ("CA-3", "verified", "2099-06-30"),
    ]
