"""Configuration from the environment (see the README's configuration table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where bcm keeps its state and finds its runbooks."""

    home: Path
    database_url: str
    runbooks: Path
    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_api_url: str | None
    slack_exercise_channel: str
    slack_incidents_channel: str

    @property
    def transcript_path(self) -> Path:
        """The local transcript that stands in for Slack when no token is set."""
        return self.home / "transcript.jsonl"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("BCM_HOME") or ".bcm").absolute()
    database_url = env.get("BCM_DATABASE_URL") or f"sqlite:///{home / 'bcm.db'}"
    return Settings(
        home=home,
        database_url=database_url,
        runbooks=Path(env.get("BCM_RUNBOOKS") or "runbooks"),
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_api_url=env.get("BCM_SLACK_API_URL") or None,
        slack_exercise_channel=env.get("BCM_SLACK_EXERCISE_CHANNEL") or "bcm-exercises",
        slack_incidents_channel=env.get("BCM_SLACK_INCIDENTS_CHANNEL") or "bcm-incidents",
    )
