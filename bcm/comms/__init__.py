"""Stakeholder communication: messages, the durable outbox, Slack and the local transcript."""

from __future__ import annotations

from bcm.comms.notifier import EXERCISE_PREFIX, Message, Notifier, RecordingNotifier, exercise_text
from bcm.comms.outbox import FlushReport, OutboxNotifier, is_superseded, message_counts
from bcm.comms.transport import FLUSH_POLICY, RUN_POLICY, DeliveryPolicy, TranscriptTransport, Transport
from bcm.config import Settings
from bcm.spec.loader import Catalog
from bcm.store import Store


def make_transport(settings: Settings, *, policy: DeliveryPolicy = RUN_POLICY) -> Transport:
    """Slack when ``SLACK_BOT_TOKEN`` is set, otherwise the local transcript."""
    if settings.slack_bot_token:
        from bcm.comms.slack import SlackTransport

        return SlackTransport(settings.slack_bot_token, base_url=settings.slack_api_url, policy=policy)
    return TranscriptTransport(settings.transcript_path)


def make_notifier(
    settings: Settings, store: Store, catalog: Catalog | None = None, *, policy: DeliveryPolicy = RUN_POLICY
) -> OutboxNotifier:
    """The notifier for this configuration: the durable outbox over Slack or the transcript.

    ``policy`` is how hard a delivery tries: :data:`RUN_POLICY` (quick; what is left waits in the
    outbox) inside runs and the Slack app, :data:`FLUSH_POLICY` (patient) for `bcm outbox flush`.
    """
    return OutboxNotifier(
        store,
        make_transport(settings, policy=policy),
        catalog=catalog,
        exercise_channel=settings.slack_exercise_channel,
        incidents_channel=settings.slack_incidents_channel,
        policy=policy,
    )


__all__ = [
    "EXERCISE_PREFIX",
    "FLUSH_POLICY",
    "RUN_POLICY",
    "DeliveryPolicy",
    "FlushReport",
    "Message",
    "Notifier",
    "OutboxNotifier",
    "RecordingNotifier",
    "TranscriptTransport",
    "Transport",
    "exercise_text",
    "is_superseded",
    "make_notifier",
    "make_transport",
    "message_counts",
]
