"""Delivering the outbox on a schedule: messages Slack could not take are sent when it answers again."""

from __future__ import annotations

from typing import Any

from prefect import flow

from bcm.comms import FLUSH_POLICY, make_notifier
from bcm.config import load_settings
from bcm.store import Store


@flow(name="flush-outbox", persist_result=False)
def flush_outbox() -> dict[str, Any]:
    """Deliver undelivered messages in order, each once; report what is left."""
    settings = load_settings()
    with Store.open(settings.database_url) as store:
        # A scheduled flush has time to be patient with Slack; a run does not.
        report = make_notifier(settings, store, policy=FLUSH_POLICY).flush()
    return {"delivered": report.delivered, "failed": report.failed, "pending": report.pending, "error": report.error}
