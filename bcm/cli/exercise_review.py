"""Scaffold: the helper building this module replaces it."""

from bcm.cli.output import fail


def observe_cmd() -> None:
    fail("not built yet")


def hotwash_cmd() -> None:
    fail("not built yet")
