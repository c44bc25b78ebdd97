"""Scaffold: the helper building this module replaces it."""

from bcm.cli.output import fail


def serve_cmd() -> None:
    fail("not built yet")
