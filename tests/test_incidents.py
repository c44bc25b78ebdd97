"""Recording disruptions handled outside bcm: one at a time or from CSV, all or nothing, exact messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bcm.errors import DisruptionError
from bcm.incidents import import_csv, parse_time, record_disruption
from bcm.spec import load_library
from bcm.spec.loader import Library
from bcm.store import RunTargets, Store
from tests.incident_fixtures import make_library

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HEADER = "service,impact_started,detected,acknowledged,recovered,runbook,data_loss,reference\n"


@pytest.fixture
def library(tmp_path: Path) -> Library:
    """The small test library (catalog: voice-core, dns; runbook dns-outage)."""
    return load_library(make_library(tmp_path))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store on each backend whose clock says NOW."""
    with Store.open(db_url, clock=lambda: NOW) as opened:
        yield opened


def _csv(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "past.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def test_record_stores_a_real_run_with_utc_marks_and_bia_targets(store: Store, library: Library) -> None:
    """A recorded disruption is a real 'external' run, marks in UTC, targets from the service's BIA, audited."""
    run = record_disruption(
        store,
        library,
        {
            "service": "voice-core",
            "impact_started": "2026-03-29T00:30:00+00:00",
            "detected": "2026-03-29T02:40:00+01:00",
            "recovered": "2026-03-29T03:45:00+01:00",
        },
        by="alice",
        clock=lambda: NOW,
    )
    stored = store.get_run(run.id)
    assert (stored.mode, stored.runbook_id, stored.status, stored.source, stored.triggered_by) == (
        "real",
        "external",
        "recorded",
        "record",
        "alice",
    )
    assert stored.started_at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert stored.ended_at == datetime(2026, 3, 29, 2, 45, tzinfo=UTC)
    assert stored.targets == RunTargets(rto=timedelta(hours=2), rpo=timedelta(minutes=15), mtpd=timedelta(hours=8))
    assert [(m.milestone, m.at, m.source) for m in store.get_marks(run.id)] == [
        ("impact_started", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "record"),
        ("detected", datetime(2026, 3, 29, 1, 40, tzinfo=UTC), "record"),
        ("recovered", datetime(2026, 3, 29, 2, 45, tzinfo=UTC), "record"),
    ]
    entry = store.export_audit(run_id=run.id)[0]
    assert entry["kind"] == "incident.recorded"
    assert entry["data"]["marks"] == {  # type: ignore[index]
        "impact_started": "2026-03-29T00:30:00.000000+00:00",
        "detected": "2026-03-29T01:40:00.000000+00:00",
        "recovered": "2026-03-29T02:45:00.000000+00:00",
    }
    assert store.verify_audit().ok


def test_dst_offsets_are_compared_as_instants(store: Store, library: Library) -> None:
    """00:30+00:00 and 02:30+01:00 on the night clocks go forward are two hours apart, not one."""
    run = record_disruption(
        store,
        library,
        {"service": "dns", "impact_started": "2026-03-29T00:30:00+00:00", "recovered": "2026-03-29T02:30:00+01:00"},
        by="alice",
        clock=lambda: NOW,
    )
    marks = {m.milestone: m.at for m in store.get_marks(run.id)}
    assert marks["recovered"] - marks["impact_started"] == timedelta(hours=1)
    assert marks["recovered"] == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_record_reports_every_problem_by_option(store: Store, library: Library) -> None:
    """Bad input to `incident record`: every problem named by its option; nothing stored."""
    with pytest.raises(DisruptionError) as caught:
        record_disruption(
            store,
            library,
            {
                "service": "dnss",
                "impact_started": "2026-03-29T00:30:00",
                "detected": "yesterday",
                "severity": "critical",
                "data_loss": "5 minutes",
            },
            by="alice",
            clock=lambda: NOW,
        )
    assert str(caught.value).splitlines() == [
        "--service: unknown service 'dnss' (did you mean 'dns'?) (known: dns, voice-core)",
        "--impact-started: '2026-03-29T00:30:00' has no UTC offset, so it is ambiguous: add one, like "
        "2026-03-29T00:30:00+01:00, or 2026-03-29T00:30:00Z for UTC",
        "--detected: 'yesterday' is not an ISO 8601 time: write it like 2026-03-29T02:30:00+01:00 or "
        "2026-03-29T01:30:00Z",
        "--severity: 'critical' is not a severity: use sev1, sev2, sev3, sev4",
        "--data-loss: '5 minutes' is not a duration: write a whole number and a unit, such as 90s, 15m, 4h or 2d",
    ]
    assert store.list_runs() == []


def test_import_is_atomic_and_names_every_bad_row_by_line(store: Store, library: Library, tmp_path: Path) -> None:
    """One bad row among good ones: every problem reported as FILE:LINE: column: message; nothing imported."""
    path = _csv(
        tmp_path,
        "dns,2026-02-01T10:00:00Z,2026-02-01T10:05:00Z,,2026-02-01T10:20:00Z,,,INC-1\n"
        '"voice-core;dns",2026-02-02T10:00:00Z,,,2026-02-02T09:00:00Z,,,"INC-2\n(two lines)"\n'
        "\n"
        "voice-core,2026-02-03T10:00:00Z,2026-02-03T09:59:00Z,2026-02-03T09:58:00Z,,dns-outag,1h,INC-3\n"
        "voice-core,2026-06-03T10:00:00Z,,,,,,INC-4\n"
        "dns,2026-02-01T10:00:00+00:00,,,,,,INC-5\n"
        "dns,2026-02-01\n",
    )
    with pytest.raises(DisruptionError) as caught:
        import_csv(store, library, path, by="alice", clock=lambda: NOW)
    name = str(path)
    assert str(caught.value).splitlines() == [
        f"{name}:3: recovered: recovered (2026-02-02T09:00:00Z) is before impact_started (2026-02-02T10:00:00Z): "
        "the times are out of order",
        f"{name}:6: runbook: unknown runbook 'dns-outag' (did you mean 'dns-outage'?) (known: dns-outage)",
        f"{name}:6: detected: detected (2026-02-03T09:59:00Z) is before impact_started (2026-02-03T10:00:00Z): "
        "the times are out of order",
        f"{name}:6: acknowledged: acknowledged (2026-02-03T09:58:00Z) is before impact_started "
        "(2026-02-03T10:00:00Z): the times are out of order",
        f"{name}:6: acknowledged: acknowledged (2026-02-03T09:58:00Z) is before detected (2026-02-03T09:59:00Z): "
        "the times are out of order",
        f"{name}:7: impact_started: 2026-06-03T10:00:00Z is in the future",
        f"{name}:9: the row has 2 fields, the header 8",
        f"{name}:8: impact_started: the same disruption as line 2 (same services and start)",
        f"{name}: 8 problems; nothing was imported",
    ]
    assert store.list_runs() == []
    assert store.verify_audit().checked == 0


def test_import_writes_every_row_with_targets_and_refuses_a_second_import(
    store: Store, library: Library, tmp_path: Path
) -> None:
    """A good file: one audited run per row (runbook targets when given); importing it again is refused."""
    path = _csv(
        tmp_path,
        "dns,2026-02-01T10:00:00Z,2026-02-01T10:05:00Z,,2026-02-01T10:20:00Z,dns-outage,5m,INC-1\n"
        "voice-core,2026-02-02T10:00:00+01:00,,,2026-02-02T12:00:00+01:00,,,\n",
    )
    runs = import_csv(store, library, path, by="alice", clock=lambda: NOW)
    assert [(r.runbook_id, r.services, r.started_at, r.source) for r in runs] == [
        ("dns-outage", ("dns",), datetime(2026, 2, 1, 10, 0, tzinfo=UTC), "import"),
        ("external", ("voice-core",), datetime(2026, 2, 2, 9, 0, tzinfo=UTC), "import"),
    ]
    assert runs[0].targets == RunTargets(
        rto=timedelta(minutes=10),
        rpo=timedelta(hours=1),
        mtpd=timedelta(hours=2),
        data_loss=timedelta(minutes=5),
        cadence=timedelta(minutes=30),
    )
    assert runs[0].parameters == {"reference": "INC-1"}
    entries = store.export_audit()
    assert [(e["kind"], e["run_id"], e["data"]["line"]) for e in entries] == [  # type: ignore[index]
        ("incident.imported", runs[0].id, 2),
        ("incident.imported", runs[1].id, 3),
    ]
    with pytest.raises(DisruptionError) as caught:
        import_csv(store, library, path, by="alice", clock=lambda: NOW)
    assert str(caught.value).splitlines() == [
        f"{path}:2: impact_started: already recorded as run {runs[0].short_id} (same services and start): "
        "nothing to add",
        f"{path}:3: impact_started: already recorded as run {runs[1].short_id} (same services and start): "
        "nothing to add",
        f"{path}: 2 problems; nothing was imported",
    ]
    assert len(store.list_runs()) == 2


def test_header_problems_stop_before_the_rows(store: Store, library: Library, tmp_path: Path) -> None:
    """Unknown or repeated columns, and no start column, are reported against line 1."""
    path = _csv(tmp_path, "dns,x,y\n", header="service,recoverd,service\n")
    with pytest.raises(DisruptionError) as caught:
        import_csv(store, library, path, by="alice", clock=lambda: NOW)
    assert str(caught.value).splitlines() == [
        f"{path}:1: recoverd: unknown column 'recoverd' (did you mean 'recovered'?) (known: acknowledged, aware, "
        "classified_major, data_loss, declared, detected, impact_started, materiality_determined, mitigated, "
        "received, recovered, reference, resolved, runbook, service, severity, stood_down, title)",
        f"{path}:1: service: the column appears more than once",
        f"{path}:1: impact_started: the impact_started (or declared) column is missing",
        f"{path}: nothing was imported",
    ]


def test_parse_time_keeps_the_offset_it_was_given() -> None:
    """Offsets and Z are accepted and kept; the instant is what counts."""
    assert parse_time("2026-03-29T02:30:00+01:00") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parse_time(" 2026-03-29T01:30:00Z ") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
