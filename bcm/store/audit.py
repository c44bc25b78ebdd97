"""The tamper-evident audit chain: how an entry is hashed and how a chain is checked.

Entry ``n`` stores ``hash = sha256(prev_hash + canonical JSON of {seq, at, kind, run_id, data})``
where ``prev_hash`` is entry ``n - 1``'s hash (64 zeros for the first). Editing any stored field
breaks that entry's hash; rewriting the hash too breaks the next entry's link; deleting an entry
leaves a gap in ``seq``. Deleting entries from the end is only visible against a head hash kept
elsewhere, which is why ``AuditVerification`` reports it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from bcm.clock import as_utc
from bcm.store.records import AuditRecord, AuditVerification
from bcm.store.types import canonical_json

GENESIS_HASH = "0" * 64

RUN_CREATED = "run.created"
RUN_STATUS_CHANGED = "run.status_changed"
STEP_FINISHED = "step.finished"
APPROVAL_RECORDED = "approval.recorded"
MARK_ADDED = "mark.added"
CHECK_RECORDED = "check.recorded"
MESSAGE_SENT = "message.sent"
MESSAGE_FAILED = "message.failed"


def format_at(at: datetime) -> str:
    """The one text form of an entry's time that goes into its hash."""
    return as_utc(at).isoformat(timespec="microseconds")


def entry_hash(prev_hash: str, *, seq: int, at: datetime, kind: str, run_id: str | None, data: object) -> str:
    """Hash of one entry chained to ``prev_hash``."""
    body = canonical_json({"seq": seq, "at": format_at(at), "kind": kind, "run_id": run_id, "data": data})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def verify_chain(rows: Iterable[tuple[int, datetime, str, str | None, str, str, str]]) -> AuditVerification:
    """Recompute the chain over stored rows and report the first entry that does not hold.

    Args:
        rows: ``(seq, at, kind, run_id, data text, prev_hash, hash)`` in ``seq`` order.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0

    def broken(seq: int, reason: str) -> AuditVerification:
        return AuditVerification(ok=False, checked=checked, first_broken_seq=seq, reason=reason, head_hash=None)

    for seq, at, kind, run_id, data_text, stored_prev, stored_hash in rows:
        checked += 1
        if seq != expected_seq:
            missing = f"entry {expected_seq}" if seq == expected_seq + 1 else f"entries {expected_seq}-{seq - 1}"
            return broken(expected_seq, f"{missing} missing: the chain jumps from {expected_seq - 1} to {seq}")
        if stored_prev != prev_hash:
            return broken(seq, f"entry {seq} does not link to entry {seq - 1} (prev_hash differs)")
        try:
            data = json.loads(data_text)
        except ValueError:
            return broken(seq, f"entry {seq} has data that is not JSON")
        if canonical_json(data) != data_text:
            return broken(seq, f"entry {seq} has data that was rewritten (not in canonical form)")
        if entry_hash(prev_hash, seq=seq, at=at, kind=kind, run_id=run_id, data=data) != stored_hash:
            return broken(seq, f"entry {seq} does not match its hash: it was changed after it was written")
        prev_hash = stored_hash
        expected_seq += 1
    return AuditVerification(
        ok=True,
        checked=checked,
        first_broken_seq=None,
        reason=None,
        head_hash=None if checked == 0 else prev_hash,
    )


def to_record(row: tuple[int, datetime, str, str | None, str, str, str]) -> AuditRecord:
    """Build a record from a stored row."""
    seq, at, kind, run_id, data_text, prev_hash, hash_ = row
    data = json.loads(data_text)
    return AuditRecord(seq=seq, at=at, kind=kind, run_id=run_id, data=data, prev_hash=prev_hash, hash=hash_)
