"""Flow fixtures: the engine's bcm environments on the Prefect test server."""

from tests.engine.conftest import bcm_env, bcm_env_both  # noqa: F401
