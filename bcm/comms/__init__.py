"""Stakeholder communication: the Notifier interface and how bcm picks one."""

from bcm.comms.notifier import EXERCISE_PREFIX, Message, Notifier, RecordingNotifier, TranscriptNotifier
from bcm.config import Settings


def make_notifier(settings: Settings) -> Notifier:
    """The notifier for this configuration: the local transcript when no Slack token is set."""
    return TranscriptNotifier(settings.transcript_path)


__all__ = ["EXERCISE_PREFIX", "Message", "Notifier", "RecordingNotifier", "TranscriptNotifier", "make_notifier"]
