"""Scaffold: the helper building this module replaces it."""

from bcm.cli.output import fail


def run_cmd() -> None:
    fail("not built yet")


def end_cmd() -> None:
    fail("not built yet")
