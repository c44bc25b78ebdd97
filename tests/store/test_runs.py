"""Runs: creation, lookup by id or short prefix, listing and updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bcm.errors import AmbiguousRun, RunNotFound
from bcm.store import RunRecord, Store

from .conftest import T0, MakeRun

RUN_A = "aaaa1111" + "0" * 24
RUN_B = "aaaa2222" + "0" * 24
RUN_C = "bbbb3333" + "0" * 24


def test_created_run_reads_back_whole(store: Store, make_run: MakeRun) -> None:
    """create_run returns the record it stored, and get_run by full id returns an equal one."""
    created = make_run()
    assert created == RunRecord(
        id="0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        runbook_id="dc-power-loss",
        runbook_title="Data centre power loss",
        runbook_hash="ab" * 32,
        runbook_path="runbooks/dc-power-loss.yaml",
        mode="exercise",
        parameters={"site": "lon1"},
        triggered_by="alice",
        services=("voice-core",),
        severity="sev1",
        status="running",
        flow_run_id=None,
        error=None,
        started_at=T0,
        ended_at=None,
    )
    assert store.get_run("0a1b2c3d4e5f40718293a4b5c6d7e8f9") == created
    assert created.short_id == "0a1b2c3d"


def test_run_found_by_short_id(store: Store, make_run: MakeRun) -> None:
    """The 8-character short id (any case) finds the run whose id it starts."""
    make_run(run_id=RUN_A)
    make_run(run_id=RUN_C)
    assert store.get_run("aaaa1111").id == RUN_A
    assert store.get_run("BBBB").id == RUN_C


def test_ambiguous_prefix_lists_the_candidates(store: Store, make_run: MakeRun) -> None:
    """A prefix shared by two runs raises AmbiguousRun naming both, newest first."""
    make_run(run_id=RUN_A, started_at=T0)
    make_run(run_id=RUN_B, runbook_id="dns-outage", started_at=T0 + timedelta(hours=1))
    with pytest.raises(AmbiguousRun) as caught:
        store.get_run("aaaa")
    assert str(caught.value) == (
        "'aaaa' matches 2 runs: aaaa2222 (dns-outage, started 2026-05-01T10:00:00+00:00), "
        "aaaa1111 (dc-power-loss, started 2026-05-01T09:00:00+00:00); type more characters of the run id"
    )


def test_ambiguous_prefix_with_many_runs_says_more(store: Store, make_run: MakeRun) -> None:
    """When more than five runs match, five are listed and the message says there are more."""
    for n in range(7):
        make_run(run_id=f"cc{n}" + "0" * 29, started_at=T0 + timedelta(minutes=n))
    with pytest.raises(AmbiguousRun) as caught:
        store.get_run("cc")
    assert [c[0] for c in caught.value.candidates] == ["cc600000", "cc500000", "cc400000", "cc300000", "cc200000"]
    assert caught.value.more is True
    assert str(caught.value).startswith("'cc' matches more than 5 runs: ")


def test_unknown_run_is_not_found(store: Store, make_run: MakeRun) -> None:
    """A prefix no run id starts with raises RunNotFound with a hint about short ids."""
    make_run(run_id=RUN_A)
    with pytest.raises(RunNotFound) as caught:
        store.get_run("deadbeef")
    assert str(caught.value) == (
        "no run has an id starting with 'deadbeef': give the run id, or its first 8 characters "
        "as printed when the run started"
    )


@pytest.mark.parametrize("ref", ["", "  ", "aaaa%", "aaaa_"])
def test_empty_or_wildcard_ref_matches_nothing(store: Store, make_run: MakeRun, ref: str) -> None:
    """Blank refs and SQL LIKE wildcards never match a run."""
    make_run(run_id=RUN_A)
    with pytest.raises(RunNotFound):
        store.get_run(ref)


def test_unknown_mode_is_refused(store: Store, make_run: MakeRun) -> None:
    """create_run refuses a mode other than real, exercise and dry-run."""
    with pytest.raises(ValueError, match=r"^run mode 'drill' is not one of dry-run, exercise, real$"):
        make_run(mode="drill")


def test_list_runs_filters_and_orders_newest_first(store: Store, make_run: MakeRun) -> None:
    """list_runs filters by runbook, mode and [since, until), newest first, and honours limit."""
    make_run(run_id="01" * 16, runbook_id="dc-power-loss", mode="real", started_at=T0)
    make_run(run_id="02" * 16, runbook_id="dc-power-loss", mode="exercise", started_at=T0 + timedelta(days=1))
    make_run(run_id="03" * 16, runbook_id="dns-outage", mode="real", started_at=T0 + timedelta(days=2))

    def ids(runs: list[RunRecord]) -> list[str]:
        return [r.id[:2] for r in runs]

    assert ids(store.list_runs()) == ["03", "02", "01"]
    assert ids(store.list_runs(runbook_id="dc-power-loss")) == ["02", "01"]
    assert ids(store.list_runs(mode="real")) == ["03", "01"]
    assert ids(store.list_runs(since=T0 + timedelta(days=1))) == ["03", "02"]
    assert ids(store.list_runs(until=T0 + timedelta(days=1))) == ["01"]
    assert ids(store.list_runs(since=T0, until=T0 + timedelta(days=2))) == ["02", "01"]
    assert ids(store.list_runs(limit=1)) == ["03"]
    assert ids(store.list_runs(runbook_id="no-such-runbook")) == []


def test_update_run_changes_only_given_fields(store: Store, make_run: MakeRun) -> None:
    """update_run sets the fields passed and leaves the others as they were."""
    run = make_run()
    store.update_run(run.id, flow_run_id="flow-1")
    store.update_run(run.id, status="failed", ended_at=T0 + timedelta(minutes=5), error="step drain-traffic failed")
    store.update_run(run.id)
    got = store.get_run(run.id)
    assert (got.status, got.flow_run_id, got.error, got.ended_at) == (
        "failed",
        "flow-1",
        "step drain-traffic failed",
        datetime(2026, 5, 1, 9, 5, tzinfo=UTC),
    )


def test_update_unknown_run_raises(store: Store) -> None:
    """update_run on an id no run has raises RunNotFound."""
    with pytest.raises(RunNotFound):
        store.update_run("ff" * 16, status="succeeded")


def test_list_runs_filters_by_status(store: Store, make_run: MakeRun) -> None:
    """list_runs with statuses keeps only runs in one of them; an empty collection keeps none."""
    make_run(run_id="01" * 16, status="running", started_at=T0)
    make_run(run_id="02" * 16, status="waiting", started_at=T0 + timedelta(hours=1))
    make_run(run_id="03" * 16, status="succeeded", started_at=T0 + timedelta(hours=2))
    assert [r.id[:2] for r in store.list_runs(statuses={"running", "waiting"})] == ["02", "01"]
    assert store.list_runs(statuses=()) == []


def test_clear_error_forgets_the_error_and_audits_no_status_change(store: Store, make_run: MakeRun) -> None:
    """clear_error empties the run's error; a status change audits from, to, end time and the error given."""
    run = make_run()
    store.update_run(run.id, status="failed", error="step drain-traffic failed")
    store.update_run(run.id, clear_error=True)
    assert store.get_run(run.id).error is None
    store.update_run(run.id, status="running", clear_error=True)
    assert [(e["kind"], e["data"]) for e in store.export_audit(run_id=run.id)][1:] == [
        (
            "run.status_changed",
            {"from": "running", "to": "failed", "ended_at": None, "error": "step drain-traffic failed"},
        ),
        ("run.status_changed", {"from": "failed", "to": "running", "ended_at": None, "error": None}),
    ]


def test_claim_runner_is_audited_and_heartbeat_is_not(store: Store, make_run: MakeRun) -> None:
    """claim_runner stores the runner and its first heartbeat (audited); heartbeat moves the time only."""
    run = make_run()
    store.claim_runner(run.id, runner="host-a/4242/99", at=T0 + timedelta(seconds=1))
    store.heartbeat(run.id, at=T0 + timedelta(seconds=6))
    got = store.get_run(run.id)
    assert (got.runner, got.heartbeat_at) == ("host-a/4242/99", T0 + timedelta(seconds=6))
    entries = store.export_audit(run_id=run.id)
    assert [e["kind"] for e in entries] == ["run.created", "run.runner"]
    assert entries[1]["data"] == {"runner": "host-a/4242/99"}
    with pytest.raises(RunNotFound):
        store.claim_runner("ff" * 16, runner="host-a/1/1", at=T0)


def test_naive_times_are_refused_before_writing(store: Store, make_run: MakeRun) -> None:
    """A time without an offset raises ValueError and writes nothing, audit included."""
    run = make_run()
    naive = datetime(2026, 5, 1, 9, 0)
    with pytest.raises(ValueError, match=r"^time 2026-05-01T09:00:00 has no UTC offset$"):
        store.update_run(run.id, status="succeeded", ended_at=naive)
    with pytest.raises(ValueError, match=r"^time 2026-05-01T09:00:00 has no UTC offset$"):
        make_run(run_id="ee" * 16, started_at=naive)
    assert store.get_run(run.id).status == "running"
    assert [r.id for r in store.list_runs()] == [run.id]
    assert [e["kind"] for e in store.export_audit()] == ["run.created"]


def test_writable_store_passes_the_check(store: Store) -> None:
    """check_writable returns quietly on a writable database and leaves no trace in the audit chain."""
    store.check_writable()
    assert store.export_audit() == []
