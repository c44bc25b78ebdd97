"""`bcm metrics`, `bcm incident record|import` and `bcm audit verify|export` as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bcm.metrics import EXERCISE_TIME_NOTE
from bcm.store import ExerciseRunRecord, RunTargets, Store
from bcm.store.engine import normalise_url
from tests.conftest import ROOT
from tests.incident_fixtures import make_library

CSV = """\
service,impact_started,detected,acknowledged,recovered,runbook
dns,2026-02-01T10:00:00Z,2026-02-01T10:05:00Z,2026-02-01T10:06:00Z,2026-02-01T10:08:00Z,dns-outage
dns,2026-02-02T10:00:00Z,2026-02-02T10:10:00Z,,2026-02-02T10:20:00Z,dns-outage
voice-core;dns,2026-02-03T10:00:00+01:00,2026-02-03T10:30:00+01:00,,2026-02-03T13:00:00+01:00,
"""


class Bcm:
    """Runs `python -m bcm` against one state folder, store and library."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.env = {
            **os.environ,
            "BCM_HOME": str(tmp_path / "home"),
            "BCM_DATABASE_URL": db_url,
            "BCM_RUNBOOKS": str(make_library(tmp_path)),
            "BCM_TIMEZONE": "Europe/London",
        }
        self.db_url = db_url
        self.tmp_path = tmp_path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120
        )

    def sql(self, statement: str) -> None:
        engine = create_engine(normalise_url(self.db_url))
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def imported(self) -> list[str]:
        path = self.tmp_path / "past.csv"
        path.write_text(CSV, encoding="utf-8")
        result = self("incident", "import", str(path), "--by", "carol", "--json")
        assert result.returncode == 0, result.stderr
        return [run["id"] for run in json.loads(result.stdout)["imported"]]


@pytest.fixture
def bcm(tmp_path: Path, db_url: str) -> Bcm:
    """The bcm command on each store backend, with the small test library and Europe/London times."""
    return Bcm(tmp_path, db_url)


WINDOW = ("--since", "2026-01-01", "--until", "2026-03-01")


def test_metrics_json_per_service_exact_figures(bcm: Bcm) -> None:
    """Per-service figures: counts, median and p90 (nearest rank) of each 'time to ...', RTO attainment."""
    bcm.imported()
    result = bcm("metrics", *WINDOW, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["window"] == {"since": "2026-01-01T00:00:00+00:00", "until": "2026-03-01T00:00:00+00:00"}
    assert doc["figures"]["time_to_recover"]["from_to"] == "impact_started (else declared) → recovered (MBCO reached)"
    assert doc["groups"] == [
        {
            "key": "dns",
            "mode": "real",
            "runs": 3,
            "time_to_recover": {"count": 3, "median_s": 1200.0, "p90_s": 10800.0, "max_s": 10800.0},
            "time_to_detect": {"count": 3, "median_s": 600.0, "p90_s": 1800.0, "max_s": 1800.0},
            "time_to_acknowledge": {"count": 1, "median_s": 60.0, "p90_s": 60.0, "max_s": 60.0},
            "time_to_mitigate": {"count": 0, "median_s": None, "p90_s": None, "max_s": None},
            "within_rto": 1,
            "rto_known": 3,
            "share_within_rto": 1 / 3,
            "mtpd_breaches": 1,
            "time_to_recover_unknown": 0,
            "runs_at_speed": 0,
        },
        {
            "key": "voice-core",
            "mode": "real",
            "runs": 1,
            "time_to_recover": {"count": 1, "median_s": 10800.0, "p90_s": 10800.0, "max_s": 10800.0},
            "time_to_detect": {"count": 1, "median_s": 1800.0, "p90_s": 1800.0, "max_s": 1800.0},
            "time_to_acknowledge": {"count": 0, "median_s": None, "p90_s": None, "max_s": None},
            "time_to_mitigate": {"count": 0, "median_s": None, "p90_s": None, "max_s": None},
            "within_rto": 0,
            "rto_known": 1,
            "share_within_rto": 0.0,
            "mtpd_breaches": 1,
            "time_to_recover_unknown": 0,
            "runs_at_speed": 0,
        },
    ]
    assert doc["notes"] == []


def test_metrics_csv_and_filters(bcm: Bcm) -> None:
    """--csv prints one row per group; --runbook and --mode exercise narrow the runs."""
    bcm.imported()
    result = bcm("metrics", *WINDOW, "--runbook", "dns-outage", "--csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(",")[:7] == [
        "key",
        "mode",
        "runs",
        "time_to_recover_count",
        "time_to_recover_median_s",
        "time_to_recover_p90_s",
        "time_to_recover_max_s",
    ]
    assert lines[1:] == ["dns,real,2,2,840,1200,1200,2,450,600,600,1,60,60,60,0,,,,1,2,0.5000,0,0"]
    exercises = bcm("metrics", *WINDOW, "--mode", "exercise", "--csv")
    assert exercises.stdout.splitlines()[1:] == []


def test_metrics_table_names_its_figures_and_keeps_modes_apart(bcm: Bcm) -> None:
    """The rich table is titled 'Real disruptions', shows times in the user's zone and says what each figure is."""
    bcm.imported()
    result = bcm("metrics", "--since", "2026-01-01", "--until", "2026-07-01", "--tz", "Europe/London")
    assert result.returncode == 0, result.stderr
    assert "Real disruptions by service, 2026-01-01T00:00:00+00:00 to 2026-07-01T00:00:00+01:00" in result.stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line]
    assert rows == [
        ["dns", "3", "20m / 3h", "3h", "1/3 (33%)", "1", "10m / 30m", "1m / 1m", "-"],
        ["voice-core", "1", "3h / 3h", "3h", "0/1 (0%)", "1", "30m / 30m", "-", "-"],
    ]
    assert "Exercises" not in result.stdout
    assert "MTTR" not in result.stdout
    assert "time to recover: impact started (else declared) → recovered (MBCO reached)" in result.stdout


def _power_runs(db_url: str) -> None:
    """Two exercises of dc-power-loss (RTO 1h) at speeds 1 and 60 and one real run, in February 2026."""
    start = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    plays = (
        ("1" * 32, "exercise", 1.0, (600, 3000)),  # 10m to detect, 50m to recover
        ("6" * 32, "exercise", 60.0, (20, 94)),  # 20 s and 94 s of play: 20m and 1h 34m
        ("9" * 32, "real", None, (300, 2400)),  # 5m and 40m
    )
    with Store.open(db_url) as store:
        for n, (run_id, mode, speed, (detected, recovered)) in enumerate(plays):
            started = start + timedelta(days=n)
            store.create_run(
                run_id=run_id,
                runbook_id="dc-power-loss",
                runbook_title="Data centre power loss",
                runbook_hash="ab" * 32,
                runbook_path="runbooks/dc-power-loss.yaml",
                mode=mode,
                parameters={},
                triggered_by="alice",
                services=["voice-core"],
                severity="sev1",
                started_at=started,
                targets=RunTargets(rto=timedelta(hours=1), mtpd=timedelta(hours=4)),
            )
            if speed is not None:
                store.start_exercise(
                    ExerciseRunRecord(
                        run_id=run_id,
                        exercise_id="dc-power-drill",
                        exercise_title="Power drill",
                        exercise_hash="cd" * 32,
                        exercise_path="exercises/dc-power-drill.yaml",
                        speed=speed,
                        auto_respond=True,
                        startex_at=started,
                        endex_at=None,
                        ended_by=None,
                    )
                )
            for milestone, seconds in (("impact_started", 0), ("detected", detected), ("recovered", recovered)):
                store.add_mark(run_id, milestone, started + timedelta(seconds=seconds), "test")


def test_metrics_exercises_at_speed_in_exercise_time(bcm: Bcm) -> None:
    """--mode exercise --json: runs at speeds 1 and 60 in exercise time, with the note; real runs unchanged."""
    _power_runs(bcm.db_url)
    result = bcm("metrics", *WINDOW, "--runbook", "dc-power-loss", "--mode", "exercise", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["groups"] == [
        {
            "key": "voice-core",
            "mode": "exercise",
            "runs": 2,
            "time_to_recover": {"count": 2, "median_s": 4320.0, "p90_s": 5640.0, "max_s": 5640.0},
            "time_to_detect": {"count": 2, "median_s": 900.0, "p90_s": 1200.0, "max_s": 1200.0},
            "time_to_acknowledge": {"count": 0, "median_s": None, "p90_s": None, "max_s": None},
            "time_to_mitigate": {"count": 0, "median_s": None, "p90_s": None, "max_s": None},
            "within_rto": 1,
            "rto_known": 2,
            "share_within_rto": 0.5,
            "mtpd_breaches": 0,
            "time_to_recover_unknown": 0,
            "runs_at_speed": 1,
        }
    ]
    assert doc["notes"] == [
        "exercise figures are in exercise time (runs played at --speed N count N times their wall-clock durations)"
    ]
    real = json.loads(bcm("metrics", *WINDOW, "--mode", "real", "--json").stdout)
    assert [(g["key"], g["time_to_recover"]["median_s"], g["share_within_rto"]) for g in real["groups"]] == [
        ("voice-core", 2400.0, 1.0)
    ]
    assert real["notes"] == []


def test_metrics_table_says_exercise_figures_are_in_exercise_time(bcm: Bcm) -> None:
    """The note line follows the exercise table when a run in the window was played at a speed other than 1."""
    _power_runs(bcm.db_url)
    result = bcm("metrics", *WINDOW, "--by", "runbook")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if "│" in line]
    assert rows[-2:] == [
        ["dc-power-loss", "1", "40m / 40m", "40m", "1/1 (100%)", "0", "5m / 5m", "-", "-"],
        ["dc-power-loss", "2", "1h 12m / 1h 34m", "1h 34m", "1/2 (50%)", "0", "15m / 20m", "-", "-"],
    ]
    title = lines.index("Exercises by runbook, 2026-01-01T00:00:00+00:00 to 2026-03-01T00:00:00+00:00")
    note = lines.index(EXERCISE_TIME_NOTE)
    assert title < note
    assert lines[note - 1].startswith("└")  # right under the exercise table
    real_only = bcm("metrics", *WINDOW, "--by", "runbook", "--mode", "real")
    assert real_only.returncode == 0, real_only.stderr
    assert EXERCISE_TIME_NOTE not in real_only.stdout


def test_metrics_bad_input_exits_2(bcm: Bcm) -> None:
    """Bad options: exit 2 with a message naming the option."""
    assert bcm("metrics", "--mode", "drill").stderr == "--mode drill: use real or exercise\n"
    result = bcm("metrics", "--since", "last week")
    assert (result.returncode, result.stderr) == (
        2,
        "--since last week: not a date or time: write 2026-01-31 or 2026-01-31T09:00:00+00:00\n",
    )
    result = bcm("metrics", "--tz", "Mars/Olympus")
    assert (result.returncode, result.stderr) == (
        2,
        "--tz Mars/Olympus: unknown time zone: use an IANA name such as Europe/London or UTC\n",
    )


def test_incident_record_json_and_human(bcm: Bcm) -> None:
    """`incident record` stores the disruption and reports its figures against the BIA RTO."""
    result = bcm(
        "incident",
        "record",
        "--service",
        "voice-core",
        "--impact-started",
        "2026-03-29T00:30:00+00:00",
        "--detected",
        "2026-03-29T02:40:00+01:00",
        "--recovered",
        "2026-03-29T03:45:00+01:00",
        "--reference",
        "INC-7",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("recorded disruption ")
    assert lines[0].endswith(" (external, unknown) of voice-core")
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines() if "│" in line]
    assert rows == [
        ["impact_started", "2026-03-29T00:30:00+00:00"],
        ["detected", "2026-03-29T02:40:00+01:00"],
        ["recovered", "2026-03-29T03:45:00+01:00"],
    ]
    assert lines[-1] == (
        "time to detect 1h 10m; time to acknowledge -; time to mitigate -; time to recover 2h 15m; RTO 2h missed by 15m"
    )
    again = bcm("incident", "record", "--service", "voice-core", "--impact-started", "2026-03-29T01:30:00+01:00")
    assert again.returncode == 2
    assert again.stderr.startswith("--impact-started: already recorded as run ")


def test_incident_import_bad_rows_exit_2_and_import_nothing(bcm: Bcm) -> None:
    """A bad CSV: exit 2, every bad row named FILE:LINE: column: message, and no run stored."""
    path = bcm.tmp_path / "bad.csv"
    path.write_text(
        "service,impact_started,recovered\ndns,2026-02-01T10:00:00Z,2026-02-01T10:20:00Z\nfoo,2026-02-01,\n",
        encoding="utf-8",
    )
    result = bcm("incident", "import", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:3: service: unknown service 'foo' (known: dns, voice-core)",
        f"{path}:3: impact_started: '2026-02-01' has no UTC offset, so it is ambiguous: add one, like "
        "2026-02-01T00:00:00+01:00, or 2026-02-01T00:00:00Z for UTC",
        f"{path}: 2 problems; nothing was imported",
    ]
    assert json.loads(bcm("metrics", *WINDOW, "--json").stdout)["groups"] == []


def test_audit_verify_ok_then_tampered_by_update_exits_1(bcm: Bcm) -> None:
    """Editing an audit row in the database makes `audit verify` exit 1 naming the entry."""
    bcm.imported()
    ok = bcm("audit", "verify", "--json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["checked"] == 3
    bcm.sql("UPDATE audit SET data = replace(data, 'carol', 'mallory') WHERE seq = 2")
    broken = bcm("audit", "verify")
    assert (broken.returncode, broken.stderr) == (
        1,
        "audit chain broken at entry 2: entry 2 does not match its hash: it was changed after it was written\n",
    )


def test_audit_verify_detects_a_deleted_row(bcm: Bcm) -> None:
    """Deleting an audit row makes `audit verify` exit 1 naming the missing entry."""
    bcm.imported()
    bcm.sql("DELETE FROM audit WHERE seq = 2")
    broken = bcm("audit", "verify", "--json")
    assert broken.returncode == 1
    assert json.loads(broken.stdout) == {
        "ok": False,
        "checked": 2,
        "first_broken_seq": 2,
        "reason": "entry 2 missing: the chain jumps from 1 to 3",
        "head_hash": None,
    }


def test_audit_export_run_as_json_lines(bcm: Bcm) -> None:
    """`audit export --run` writes that run's entries, one JSON document a line, to stdout or --out."""
    run_ids = bcm.imported()
    result = bcm("audit", "export", "--run", run_ids[1][:8])
    assert result.returncode == 0, result.stderr
    [entry] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (entry["seq"], entry["kind"], entry["run_id"]) == (2, "incident.imported", run_ids[1])
    assert entry["data"]["marks"] == {
        "impact_started": "2026-02-02T10:00:00.000000+00:00",
        "detected": "2026-02-02T10:10:00.000000+00:00",
        "recovered": "2026-02-02T10:20:00.000000+00:00",
    }
    out = bcm.tmp_path / "evidence.jsonl"
    written = bcm("audit", "export", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert [json.loads(line)["seq"] for line in out.read_text(encoding="utf-8").splitlines()] == [1, 2, 3]
    assert bcm("audit", "export", "--run", "ffffffff").returncode == 2
