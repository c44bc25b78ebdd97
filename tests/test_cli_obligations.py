"""`bcm obligations` and `bcm obligations fulfil` as separate processes, on a seeded ddos run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bcm.store import Store
from tests.conftest import ROOT

RUN = "5e6f7a8b" + "0" * 24
NOW = datetime.now(UTC).replace(microsecond=0)
AWARE = NOW - timedelta(hours=30)


class Bcm:
    def __init__(self, root: Path, db_url: str) -> None:
        self.env = {
            **os.environ,
            "BCM_HOME": str(root / "home"),
            "BCM_DATABASE_URL": db_url,
            "BCM_RUNBOOKS": str(ROOT / "runbooks"),
        }
        self.db_url = db_url
        with Store.open(db_url) as store:
            store.create_run(
                run_id=RUN,
                runbook_id="ddos",
                runbook_title="DDoS",
                runbook_hash="ab" * 32,
                runbook_path=str(ROOT / "runbooks" / "ddos.yaml"),
                mode="real",
                parameters={"significant": True, "prefix": "192.0.2.0/24"},
                triggered_by="Ada Lovelace",
                services=[],
                severity="sev1",
                started_at=AWARE - timedelta(minutes=5),
            )
            # recorded by hand while nothing ran: the clocks start at its time
            store.add_mark(RUN, "aware", AWARE, "manual:Ada Lovelace")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout

    def refused(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        return result.stderr.strip()


@pytest.fixture
def bcm(tmp_path: Path, db_url: str) -> Bcm:
    return Bcm(tmp_path, db_url)


def _by_id(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    clocks = doc["clocks"]
    assert isinstance(clocks, list)
    return {c["obligation"]: c for c in clocks}


def test_lists_clocks_as_json_with_offsets(bcm: Bcm) -> None:
    doc = json.loads(bcm.ok("obligations", "--json"))
    clocks = _by_id(doc)
    assert list(clocks) == ["nis2-early-warning", "nis2-notification", "nis2-final"]
    early, notification, final = clocks.values()
    assert early["started"] == AWARE.isoformat()
    assert early["due"] == (AWARE + timedelta(hours=24)).isoformat()
    assert (early["status"], early["overdue"], early["run"]) == ("missed", True, RUN[:8])
    assert notification["due"] == (AWARE + timedelta(hours=72)).isoformat()
    assert notification["status"] == "open"
    assert (final["status"], final["started"]) == (None, None)
    assert doc["summary"] == {"listed": 3, "open": 1, "met": 0, "missed": 1, "overdue": 1}
    assert [c["obligation"] for c in json.loads(bcm.ok("obligations", "--open", "--json"))["clocks"]] == [
        "nis2-notification"
    ]


def test_table_in_the_readers_zone_flags_overdue(bcm: Bcm) -> None:
    text = bcm.ok("obligations", "--run", RUN[:8], "--tz", "Asia/Tokyo")
    assert "nis2-early-warning" in text and "OVERDUE" in text
    due = (AWARE + timedelta(hours=24)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert due.strftime("%Y-%m-%d %H:%M JST") in text


def test_fulfil_by_hand_meets_the_clock_and_starts_the_chained_one(bcm: Bcm) -> None:
    at = (NOW - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Brussels"))
    line = bcm.ok(
        "obligations",
        "fulfil",
        RUN[:8],
        "nis2-notification",
        "--by",
        "Whitfield Diffie",
        "--note",
        "ref CSIRT-42",
        "--at",
        at.isoformat(),
    )
    assert line.strip() == f"nis2-notification fulfilled on run {RUN[:8]} at {at.isoformat()} by Whitfield Diffie"
    clocks = _by_id(json.loads(bcm.ok("obligations", "--json")))
    assert clocks["nis2-notification"]["status"] == "met"
    assert clocks["nis2-notification"]["fulfilled_at"] == at.astimezone(UTC).isoformat()
    assert clocks["nis2-notification"]["fulfilled_source"] == "hand"
    assert clocks["nis2-final"]["started"] == at.astimezone(UTC).isoformat()
    assert clocks["nis2-final"]["status"] == "open"
    with Store.open(bcm.db_url) as store:
        [row] = store.get_fulfilments(RUN)
        assert (row.by, row.evidence, row.source) == ("Whitfield Diffie", "ref CSIRT-42", "hand")
        entries = [e for e in store.export_audit(run_id=RUN) if e["kind"] == "obligation.fulfilled"]
        assert len(entries) == 1
    assert "the first record stands" in bcm.refused(
        "obligations", "fulfil", RUN, "nis2-notification", "--by", "Ada Lovelace"
    )


def test_fulfil_refusals_are_one_line_and_exit_2(bcm: Bcm) -> None:
    assert "does not list obligation 'gdpr-art33'" in bcm.refused(
        "obligations", "fulfil", RUN, "gdpr-art33", "--by", "Ada Lovelace"
    )
    assert "holds none of the roles that may fulfil nis2-final: ciso, incident_commander" in bcm.refused(
        "obligations", "fulfil", RUN, "nis2-final", "--by", "Mallory"
    )
    future = (NOW + timedelta(hours=2)).isoformat()
    assert "is in the future" in bcm.refused(
        "obligations", "fulfil", RUN, "nis2-final", "--by", "Ada Lovelace", "--at", future
    )
    assert "no UTC offset" in bcm.refused(
        "obligations", "fulfil", RUN, "nis2-final", "--by", "Ada Lovelace", "--at", "2026-01-01T09:00:00"
    )
    assert "missing --by" in bcm.refused("obligations", "fulfil", RUN, "nis2-final")
    bcm.refused("obligations", "--run", "ffffffff")


def test_store_first_fulfilment_wins_and_is_audited_once(bcm: Bcm) -> None:
    with Store.open(bcm.db_url) as store:
        assert store.record_fulfilment(RUN, "nis2-early-warning", at=NOW, by="Ada Lovelace", source="step:x")
        assert not store.record_fulfilment(RUN, "nis2-early-warning", at=NOW, by="Someone", source="hand")
        [row] = store.get_fulfilments(RUN)
        assert (row.at, row.by, row.evidence, row.source) == (NOW, "Ada Lovelace", None, "step:x")
        kinds = [e["kind"] for e in store.export_audit(run_id=RUN)]
        assert kinds.count("obligation.fulfilled") == 1
