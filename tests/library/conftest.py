"""Library fixtures: the engine's bcm environment, pointed at the shipped runbook library by each test."""

from tests.engine.conftest import bcm_env  # noqa: F401
