"""The disruption's known times at trigger, milestones by hand, the list of runs, and a store that
cannot be used — as people meet them at the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bcm.cli.output import who
from tests.conftest import ROOT
from tests.engine.conftest import BcmEnv, engine_runbook
from tests.engine.test_cli_run import bcm, bcm_process_env

pytestmark = pytest.mark.prefect


def exercise(env: BcmEnv, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return bcm(
        env, "run", engine_runbook("exercise"), "-p", f"out={tmp_path / 'x'}", "--mode", "exercise",
        "--auto-approve", "--json", *extra,
    )  # fmt: skip


def test_trigger_times_are_milestones_with_source_trigger(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """--impact-started and --detected (any offset) are recorded in UTC as milestones from the trigger."""
    result = exercise(
        bcm_env, tmp_path, "--impact-started", "2026-03-29T02:30:00+01:00", "--detected", "2026-03-29T01:41:00Z"
    )
    assert result.returncode == 0, result.stderr
    marks = {m["milestone"]: (m["at"], m["source"]) for m in json.loads(result.stdout)["milestones"]}
    assert marks["impact_started"] == ("2026-03-29T01:30:00+00:00", "trigger")
    assert marks["detected"] == ("2026-03-29T01:41:00+00:00", "trigger")
    with bcm_env.store() as store:
        entries = [e for e in store.export_audit() if e["kind"] == "mark.added"]
    by_mark = {e["data"]["milestone"]: e["data"] for e in entries}  # type: ignore[index]
    assert by_mark["detected"]["note"] == "given by " + who(None) + " at trigger"  # no --by: the login name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--detected", "2026-03-29T01:41:00"],
            "--detected 2026-03-29T01:41:00: '2026-03-29T01:41:00' has no UTC offset, so it is ambiguous: add one, "
            "like 2026-03-29T01:41:00+01:00, or 2026-03-29T01:41:00Z for UTC",
        ),
        (
            ["--impact-started", "2026-03-29T02:00:00Z", "--detected", "2026-03-29T01:00:00Z"],
            "--detected 2026-03-29T01:00:00Z is before --impact-started 2026-03-29T02:00:00Z: a disruption is "
            "detected after it starts",
        ),
        (
            ["--impact-started", "2999-01-01T00:00:00Z"],
            "--impact-started 2999-01-01T00:00:00Z: is in the future; give the time it happened",
        ),
    ],
)
def test_bad_trigger_times_exit_2_before_the_run(
    bcm_env: BcmEnv, tmp_path: Path, args: list[str], message: str
) -> None:
    """A trigger time without an offset, out of order or in the future is refused, naming the option."""
    result = exercise(bcm_env, tmp_path, *args)
    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, message, "")
    assert not (bcm_env.home / "bcm.db").exists() or not json.loads(bcm(bcm_env, "runs", "--json").stdout)["runs"]


def test_mark_records_a_milestone_by_hand_role_checked_and_audited(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """`bcm mark` records a milestone at --at with the person as source and the note in the audit;
    a person without a marking role, a future time, an unknown milestone and a second record are refused."""
    run_id = json.loads(exercise(bcm_env, tmp_path).stdout)["run"]["id"]
    short = run_id[:8]
    done = bcm(bcm_env, "mark", short, "impact_started", "--at", "2026-05-01T08:55:00+02:00", "--by", "U01ADA",
               "--note", "first alarm in the NOC log")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"impact_started at 2026-05-01 06:55:00 UTC recorded on run {short} (manual:Ada Lovelace)"
    )
    with bcm_env.store() as store:
        mark = {m.milestone: m for m in store.get_marks(run_id)}["impact_started"]
        audit = [e for e in store.export_audit(run_id=run_id) if e["kind"] == "mark.added"][-1]
    assert (mark.at, mark.source) == (datetime(2026, 5, 1, 6, 55, tzinfo=UTC), "manual:Ada Lovelace")
    assert audit["data"] == {  # type: ignore[comparison-overlap]
        "milestone": "impact_started",
        "at": "2026-05-01T06:55:00.000000+00:00",
        "source": "manual:Ada Lovelace",
        "note": "first alarm in the NOC log",
    }
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    refusals = {
        "wrong person": bcm(bcm_env, "mark", short, "resolved", "--by", "Edsger Dijkstra"),
        "future": bcm(bcm_env, "mark", short, "resolved", "--by", "Ada Lovelace", "--at", future),
        "unknown": bcm(bcm_env, "mark", short, "fixed", "--by", "Ada Lovelace"),
        "twice": bcm(bcm_env, "mark", short, "impact_started", "--by", "Ada Lovelace"),
        "no offset": bcm(bcm_env, "mark", short, "resolved", "--by", "Ada Lovelace", "--at", "2026-05-01T09:00"),
    }
    assert {k: r.returncode for k, r in refusals.items()} == dict.fromkeys(refusals, 2)
    assert refusals["wrong person"].stderr.strip() == (
        f"Edsger Dijkstra holds none of the roles that may record milestones on run {short}: "
        "incident_commander, voice_ops"
    )
    assert refusals["future"].stderr.strip() == (
        f"--at {future} is in the future: give the time the milestone was reached"
    )
    assert refusals["unknown"].stderr.startswith("unknown milestone 'fixed' (known: impact_started, detected, ")
    assert refusals["twice"].stderr.strip() == (
        f"run {short} already has impact_started at 2026-05-01 06:55:00 UTC (from manual:Ada Lovelace); "
        "the first record of a milestone stands"
    )
    assert refusals["no offset"].stderr.strip().startswith("--at 2026-05-01T09:00: '2026-05-01T09:00' has no UTC")


def test_runs_lists_recent_runs_with_filters(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """`bcm runs` lists runs newest first and filters by runbook, mode, start time and activity."""
    first = json.loads(exercise(bcm_env, tmp_path).stdout)["run"]["id"]
    failed = bcm(bcm_env, "run", engine_runbook("fails-then-fixed"), "-p", f"gate={tmp_path / 'no'}", "--json")
    second = json.loads(failed.stdout)["run"]["id"]
    listed = json.loads(bcm(bcm_env, "runs", "--json").stdout)["runs"]
    assert [(r["id"], r["runbook"], r["mode"], r["status"]) for r in listed] == [
        (second, "fails-then-fixed", "real", "failed"),
        (first, "exercise", "exercise", "succeeded"),
    ]
    assert [r["id"] for r in json.loads(bcm(bcm_env, "runs", "--mode", "exercise", "--json").stdout)["runs"]] == [first]
    by_runbook = json.loads(bcm(bcm_env, "runs", "--runbook", "fails-then-fixed", "--json").stdout)["runs"]
    assert [r["id"] for r in by_runbook] == [second]
    assert json.loads(bcm(bcm_env, "runs", "--active", "--json").stdout)["runs"] == []
    assert json.loads(bcm(bcm_env, "runs", "--since", "2999-01-01", "--json").stdout)["runs"] == []
    table = bcm(bcm_env, "runs")
    assert table.returncode == 0
    assert second[:8] in table.stdout and first[:8] in table.stdout
    bad = bcm(bcm_env, "runs", "--since", "yesterday")
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "--since yesterday: not a date or time: write 2026-01-31 or 2026-01-31T09:00:00+00:00",
    )


@pytest.mark.parametrize("command", [["run", engine_runbook("crash-decide")], ["check", engine_runbook("readiness")]])
def test_dead_database_is_one_line_and_exit_2_before_any_run(bcm_env: BcmEnv, command: list[str]) -> None:
    """`bcm run`/`bcm check` with BCM_DATABASE_URL on a server nobody runs: one line, exit 2, no run id
    announced, no traceback, the password hidden."""
    env = {**bcm_process_env(bcm_env), "BCM_DATABASE_URL": "postgresql+psycopg://bcm:pw-42@127.0.0.1:1/bcm"}
    result = subprocess.run(
        [sys.executable, "-m", "bcm", *command], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cannot use the bcm store at postgresql+psycopg://bcm:***@127.0.0.1:1/bcm: ")
    assert lines[0].endswith("and that the database server is running and accepts connections.")
    assert "pw-42" not in result.stderr + result.stdout


def test_read_only_bcm_home_is_one_line_and_exit_2(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """A BCM_HOME on a read-only file system (holding a store made earlier): `bcm run` says what and
    what to do in one line and exits 2 before announcing a run."""
    home = tmp_path / "ro-home"
    home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(home)], capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only file system needs root (mount -t tmpfs)")
    try:
        env = {**bcm_process_env(bcm_env), "BCM_HOME": str(home), "BCM_DATABASE_URL": ""}
        env.pop("BCM_DATABASE_URL")
        made = subprocess.run([sys.executable, "-m", "bcm", "runs"], capture_output=True, text=True, env=env, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        result = subprocess.run(
            [sys.executable, "-m", "bcm", "run", engine_runbook("crash-decide")],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        subprocess.run(["umount", str(home)], check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cannot use the bcm store at sqlite:///{home}/bcm.db: unable to open database file. bcm must be able to "
        "create and write the database file and the files beside it: make its folder writable, or set BCM_HOME "
        "(or BCM_DATABASE_URL) to a writable place."
    ]


def test_mark_keeps_the_timeline_in_order_and_exercise_milestones_in_exercises(bcm_env: BcmEnv, tmp_path: Path) -> None:
    """`bcm mark` refuses a time before a milestone that must come first (or after one that must come
    later), and an exercise-only milestone on a real run."""
    failed = bcm(bcm_env, "run", engine_runbook("fails-then-fixed"), "-p", f"gate={tmp_path / 'no'}", "--json",
                 "--impact-started", "2026-12-01T07:00:00Z", "--detected", "2026-12-01T07:20:00Z")  # fmt: skip
    short = json.loads(failed.stdout)["run"]["short_id"]
    early = bcm(bcm_env, "mark", short, "acknowledged", "--by", "Ada Lovelace", "--at", "2026-12-01T06:00:00Z")
    assert (early.returncode, early.stderr.strip()) == (
        2,
        "acknowledged at 2026-12-01 06:00:00 UTC would be before impact_started (2026-12-01 07:00:00 UTC, from "
        "trigger): impact_started comes before acknowledged",
    )
    late = bcm(bcm_env, "mark", short, "declared", "--by", "Ada Lovelace", "--at", "2026-12-01T06:50:00Z")
    assert late.returncode == 0, late.stderr  # declared may come before impact (a pre-emptive declaration)
    exercise_only = bcm(bcm_env, "mark", short, "startex", "--by", "Ada Lovelace")
    assert (exercise_only.returncode, exercise_only.stderr.strip()) == (
        2,
        f"startex is an exercise milestone; run {short} is a real run",
    )
