"""The durable outbox: stored once per key, delivered in order, failures recorded and audited."""

from __future__ import annotations

from datetime import timedelta

from bcm.store import Store
from tests.store.conftest import T0, MakeRun


def test_enqueue_is_idempotent_by_key(store: Store, make_run: MakeRun) -> None:
    """The same key queued twice is one row; the second call says it was not new."""
    run = make_run()
    first, new = store.enqueue_message("r/declare/notify", kind="notify", payload={"text": "a"}, run_id=run.id)
    again, new_again = store.enqueue_message("r/declare/notify", kind="notify", payload={"text": "b"}, run_id=run.id)
    assert (new, new_again) == (True, False)
    assert again == first
    assert again.payload == {"text": "a"}
    assert [m.key for m in store.list_messages()] == ["r/declare/notify"]


def test_pending_messages_keep_queue_order_and_count_attempts(store: Store) -> None:
    """Pending rows come back in queue order; a transient failure keeps them pending with the error."""
    for key in ("m1", "m2", "m3"):
        store.enqueue_message(key, kind="notify", payload={"n": key})
    store.mark_message_attempt("m1", error="ratelimited", permanent=False)
    store.mark_message_delivered("m2", result={"channel": "C1", "ts": "1.0"})
    pending = store.list_messages(status="pending")
    assert [(m.key, m.attempts, m.last_error) for m in pending] == [("m1", 1, "ratelimited"), ("m3", 0, None)]
    delivered = store.get_message("m2")
    assert delivered is not None and (delivered.status, delivered.result) == (
        "delivered",
        {"channel": "C1", "ts": "1.0"},
    )


def test_permanent_failure_is_final_and_audited(store: Store) -> None:
    """A permanent error marks the message failed; delivered and failed messages are in the audit chain."""
    store.enqueue_message("bad", kind="notify", payload={})
    store.enqueue_message("good", kind="notify", payload={})
    store.mark_message_attempt("bad", error="channel_not_found", permanent=True)
    store.mark_message_attempt("bad", error="later", permanent=False)  # ignored: it is final
    store.mark_message_delivered("good", result={"ts": "2.0"})
    store.mark_message_delivered("good", result={"ts": "3.0"})  # ignored: delivered once
    bad = store.get_message("bad")
    assert bad is not None and (bad.status, bad.attempts, bad.last_error) == ("failed", 1, "channel_not_found")
    kinds = [(e["kind"], e["data"]["key"]) for e in store.export_audit() if e["kind"].startswith("message.")]
    assert kinds == [("message.failed", "bad"), ("message.sent", "good")]
    assert store.verify_audit().ok


def test_a_claim_is_exclusive_until_it_goes_stale(db_url: str) -> None:
    """claim_message takes a pending message once; a claim older than stale_after_s is taken over."""
    clock = [T0]
    with Store.open(db_url, clock=lambda: clock[0]) as store:
        store.enqueue_message("m1", kind="notify", payload={})
        assert store.claim_message("m1") is True
        assert store.claim_message("m1") is False
        assert [m.key for m in store.list_messages(status="undelivered")] == ["m1"]
        assert store.list_messages(status="pending") == []
        clock[0] = T0 + timedelta(seconds=301)
        assert store.claim_message("m1", stale_after_s=300.0) is True
        store.mark_message_delivered("m1", result={"ts": "1.0"})
        assert store.claim_message("m1", stale_after_s=0.0) is False
        assert store.list_messages(status="undelivered") == []
