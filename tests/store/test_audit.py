"""The hash-chained audit log: what is appended, verification, tampering, concurrent writers."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from bcm.errors import AlreadyDecided
from bcm.store import AuditRecord, AuditVerification, Store

from .conftest import T0, MakeRun


def _kinds(store: Store) -> list[str]:
    return [str(entry["kind"]) for entry in store.export_audit()]


def _tamper(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def _five_entries(store: Store) -> None:
    for n in range(1, 6):
        store.append_audit("note", {"n": n})


def test_first_entry_hash_is_sha256_of_genesis_and_canonical_json(store: Store) -> None:
    """Entry 1 links to 64 zeros and hashes prev_hash + canonical JSON of seq, at, kind, run_id, data."""
    entry = store.append_audit("note", {"b": 2, "a": "é"}, at=T0)
    body = '{"at":"2026-05-01T09:00:00.000000+00:00","data":{"a":"é","b":2},"kind":"note","run_id":null,"seq":1}'
    expected = hashlib.sha256(("0" * 64 + body).encode()).hexdigest()
    assert entry == AuditRecord(
        seq=1, at=T0, kind="note", run_id=None, data={"a": "é", "b": 2}, prev_hash="0" * 64, hash=expected
    )


def test_every_state_change_is_audited(store: Store, make_run: MakeRun) -> None:
    """Creating a run, finishing a step, a mark, an approval, a check and a status change each append once."""
    run = make_run()
    store.update_run(run.id, flow_run_id="flow-1")
    store.upsert_step(run.id, "drain", phase="response", kind="http", status="running", started_at=T0)
    store.upsert_step(run.id, "drain", phase="response", kind="http", status="succeeded", output={"status": 202})
    store.upsert_step(run.id, "drain", phase="response", kind="http", status="succeeded", attempts=1)
    store.add_mark(run.id, "mitigated", T0, "step:drain")
    store.add_mark(run.id, "mitigated", T0, "step:drain")
    store.record_approval(run.id, "ok", by="bob", decision="approved", note=None, waited_s=3.0, at=T0)
    store.record_check(runbook_id="dc-power-loss", step_id="fuel", ok=True, output="82%", at=T0, run_id=run.id)
    store.update_run(run.id, status="succeeded", ended_at=T0 + timedelta(hours=1))
    store.update_run(run.id, status="succeeded")
    assert _kinds(store) == [
        "run.created",
        "step.finished",
        "mark.added",
        "approval.recorded",
        "check.recorded",
        "run.status_changed",
    ]
    exported = store.export_audit(run_id=run.id)
    assert exported[5]["data"] == {
        "from": "running",
        "to": "succeeded",
        "ended_at": "2026-05-01T10:00:00.000000+00:00",
        "error": None,
    }
    assert exported[1]["data"] == {
        "step_id": "drain",
        "phase": "response",
        "kind": "http",
        "status": "succeeded",
        "attempts": 0,
        "started_at": "2026-05-01T09:00:00.000000+00:00",
        "ended_at": None,
        "output_sha256": hashlib.sha256(b'{"status":202}').hexdigest(),
        "error": None,
        "actor": None,
        "reason": None,
    }
    assert store.verify_audit() == AuditVerification(
        ok=True, checked=6, first_broken_seq=None, reason=None, head_hash=str(exported[5]["hash"])
    )


def test_failed_change_leaves_no_audit_entry(store: Store, make_run: MakeRun) -> None:
    """A refused approval (AlreadyDecided) rolls back with its transaction: no entry is appended."""
    run = make_run()
    store.record_approval(run.id, "ok", by="bob", decision="approved", note=None, waited_s=3.0, at=T0)
    with pytest.raises(AlreadyDecided):
        store.record_approval(run.id, "ok", by="eve", decision="rejected", note=None, waited_s=4.0, at=T0)
    assert _kinds(store) == ["run.created", "approval.recorded"]


def test_export_is_json_with_hashes_in_chain_order(store: Store, make_run: MakeRun) -> None:
    """export_audit rows are JSON-serialisable, carry both hashes, and link to each other."""
    run = make_run()
    store.append_audit("note", {"text": "unrelated"})
    store.add_mark(run.id, "detected", T0, "cli")
    everything = store.export_audit()
    assert [row["seq"] for row in everything] == [1, 2, 3]
    assert [row["prev_hash"] for row in everything[1:]] == [row["hash"] for row in everything[:-1]]
    assert [row["seq"] for row in store.export_audit(run_id=run.id)] == [1, 3]
    assert json.loads(json.dumps(everything)) == everything
    assert everything[1] == {
        "seq": 2,
        "at": "2026-05-01T09:00:00.000000+00:00",
        "kind": "note",
        "run_id": None,
        "data": {"text": "unrelated"},
        "prev_hash": everything[0]["hash"],
        "hash": everything[1]["hash"],
    }


def test_empty_chain_verifies(store: Store) -> None:
    """A store with no audit entries verifies ok with nothing checked and no head."""
    assert store.verify_audit() == AuditVerification(
        ok=True, checked=0, first_broken_seq=None, reason=None, head_hash=None
    )


def test_edited_data_is_detected(store: Store) -> None:
    """Rewriting an entry's data by SQL UPDATE makes verify fail at that entry."""
    _five_entries(store)
    _tamper(store, "UPDATE audit SET data = :data WHERE seq = 3", data='{"n":30}')
    assert store.verify_audit() == AuditVerification(
        ok=False,
        checked=3,
        first_broken_seq=3,
        reason="entry 3 does not match its hash: it was changed after it was written",
        head_hash=None,
    )


def test_edited_hash_is_detected(store: Store) -> None:
    """Rewriting an entry's hash by SQL UPDATE makes verify fail at that entry."""
    _five_entries(store)
    _tamper(store, "UPDATE audit SET hash = :hash WHERE seq = 2", hash="f" * 64)
    result = store.verify_audit()
    assert (result.ok, result.first_broken_seq, result.reason) == (
        False,
        2,
        "entry 2 does not match its hash: it was changed after it was written",
    )


def test_rehashed_entry_breaks_the_next_link(store: Store) -> None:
    """An entry edited with a correctly recomputed hash is caught by the next entry's prev_hash."""
    _five_entries(store)
    forged = store.export_audit()[1]
    body = json.dumps(
        {"at": forged["at"], "data": {"n": 20}, "kind": "note", "run_id": None, "seq": 2},
        sort_keys=True,
        separators=(",", ":"),
    )
    new_hash = hashlib.sha256((str(forged["prev_hash"]) + body).encode()).hexdigest()
    _tamper(store, "UPDATE audit SET data = :data, hash = :hash WHERE seq = 2", data='{"n":20}', hash=new_hash)
    result = store.verify_audit()
    assert (result.ok, result.first_broken_seq, result.reason) == (
        False,
        3,
        "entry 3 does not link to entry 2 (prev_hash differs)",
    )


def test_reformatted_data_is_detected(store: Store) -> None:
    """Data rewritten to equal JSON in another layout is still reported, since it is not what was written."""
    _five_entries(store)
    _tamper(store, "UPDATE audit SET data = :data WHERE seq = 4", data='{"n": 4}')
    result = store.verify_audit()
    assert (result.first_broken_seq, result.reason) == (
        4,
        "entry 4 has data that was rewritten (not in canonical form)",
    )


def test_deleted_entry_is_detected(store: Store) -> None:
    """Deleting an entry by SQL DELETE makes verify name the missing seq."""
    _five_entries(store)
    _tamper(store, "DELETE FROM audit WHERE seq = 3")
    assert store.verify_audit() == AuditVerification(
        ok=False,
        checked=3,
        first_broken_seq=3,
        reason="entry 3 missing: the chain jumps from 2 to 4",
        head_hash=None,
    )


def test_deleted_first_entries_are_detected(store: Store) -> None:
    """Deleting the first two entries is reported as a gap starting at seq 1."""
    _five_entries(store)
    _tamper(store, "DELETE FROM audit WHERE seq <= 2")
    result = store.verify_audit()
    assert (result.first_broken_seq, result.reason) == (1, "entries 1-2 missing: the chain jumps from 0 to 3")


def test_concurrent_writers_keep_one_chain(db_url: str) -> None:
    """Two stores appending from two threads at once produce seq 1..N with no fork, and verify ok."""
    per_thread = 40
    stores = [Store.open(db_url), Store.open(db_url)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(store: Store, name: str) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                store.append_audit("note", {"writer": name, "n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        exported = stores[0].export_audit()
        assert [row["seq"] for row in exported] == list(range(1, 2 * per_thread + 1))
        assert sorted(str(row["data"]["writer"]) for row in exported) == ["w0"] * per_thread + ["w1"] * per_thread  # type: ignore[index]
        result = stores[1].verify_audit()
        assert (result.ok, result.checked) == (True, 2 * per_thread)
    finally:
        for store in stores:
            store.close()
