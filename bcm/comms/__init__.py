"""Stakeholder communication: messages, the durable outbox, Slack and the local transcript."""

from __future__ import annotations

from bcm.comms.notifier import EXERCISE_PREFIX, Message, Notifier, RecordingNotifier, exercise_text
from bcm.comms.outbox import FlushReport, OutboxNotifier
from bcm.comms.transport import DeliveryError, TranscriptTransport, Transport
from bcm.config import Settings
from bcm.spec.loader import Catalog
from bcm.store import Store


def make_transport(settings: Settings) -> Transport:
    """Slack when ``SLACK_BOT_TOKEN`` is set, otherwise the local transcript."""
    if settings.slack_bot_token:
        from bcm.comms.slack import SlackTransport

        return SlackTransport(settings.slack_bot_token, base_url=settings.slack_api_url)
    return TranscriptTransport(settings.transcript_path)


def make_notifier(settings: Settings, store: Store, catalog: Catalog | None = None) -> OutboxNotifier:
    """The notifier for this configuration: the durable outbox over Slack or the transcript."""
    return OutboxNotifier(
        store,
        make_transport(settings),
        catalog=catalog,
        exercise_channel=settings.slack_exercise_channel,
        incidents_channel=settings.slack_incidents_channel,
    )


__all__ = [
    "EXERCISE_PREFIX",
    "DeliveryError",
    "FlushReport",
    "Message",
    "Notifier",
    "OutboxNotifier",
    "RecordingNotifier",
    "TranscriptTransport",
    "Transport",
    "exercise_text",
    "make_notifier",
    "make_transport",
]
