"""Timestamps go in as UTC and come out timezone-aware UTC on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from bcm.store import Store

from .conftest import MakeRun

PLUS_TWO = timezone(timedelta(hours=2))


def test_offset_time_comes_back_as_the_same_instant_in_utc(store: Store, make_run: MakeRun) -> None:
    """10:00+02:00 is read back as 08:00 with tzinfo UTC, in runs, steps, marks and approvals."""
    local = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=PLUS_TWO)
    expected = datetime(2026, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    run = make_run(started_at=local)
    store.update_run(run.id, ended_at=local)
    store.upsert_step(run.id, "s", phase="response", kind="run", status="running", started_at=local)
    store.add_mark(run.id, "detected", local, "cli")
    store.record_approval(run.id, "s", by="bob", decision="approved", note=None, waited_s=1.0, at=local)
    store.record_check(runbook_id="r", step_id="s", ok=True, output="", at=local)

    got_run = store.get_run(run.id)
    step = store.get_step(run.id, "s")
    approval = store.get_approval(run.id, "s")
    assert step is not None and approval is not None
    values = [
        got_run.started_at,
        got_run.ended_at,
        step.started_at,
        store.get_marks(run.id)[0].at,
        approval.at,
        store.list_checks()[0].at,
    ]
    assert values == [expected] * 6
    assert {value.tzinfo for value in values if value is not None} == {UTC}


def test_sqlite_stores_utc_text(tmp_path: Path) -> None:
    """On SQLite the stored text is the UTC wall time, so text order is time order."""
    url = f"sqlite:///{tmp_path}/bcm.db"
    with Store.open(url) as store:
        store.create_run(
            run_id="ab" * 16,
            runbook_id="r",
            runbook_title="R",
            runbook_hash="h",
            runbook_path="r.yaml",
            mode="real",
            parameters={},
            triggered_by="t",
            services=[],
            severity="sev2",
            started_at=datetime(2026, 5, 1, 10, 0, tzinfo=PLUS_TWO),
        )
        with store.engine.connect() as conn:
            stored = conn.execute(text("SELECT started_at FROM runs")).scalar_one()
    assert stored == "2026-05-01 08:00:00.000000"


def test_naive_time_is_refused(store: Store, make_run: MakeRun) -> None:
    """A naive datetime is a ValueError, not silently taken as local or UTC time."""
    with pytest.raises(ValueError, match=r"^time 2026-05-01T09:00:00 has no UTC offset$"):
        make_run(started_at=datetime(2026, 5, 1, 9, 0))
    assert store.list_runs() == []


def test_since_filter_compares_instants(store: Store, make_run: MakeRun) -> None:
    """list_runs(since=...) with an offset time compares instants, not wall clocks."""
    make_run(started_at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    assert len(store.list_runs(since=datetime(2026, 5, 1, 11, 0, tzinfo=PLUS_TWO))) == 1
    assert store.list_runs(since=datetime(2026, 5, 1, 11, 1, tzinfo=PLUS_TWO)) == []
