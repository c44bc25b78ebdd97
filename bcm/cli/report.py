"""``bcm report``: reports written from the store (the after-action report; next, the continuity report)."""

from __future__ import annotations

import typer

from bcm.cli import report_aar

group = typer.Typer(
    help="Reports from bcm's records: after-action reports.", no_args_is_help=True, rich_markup_mode=None
)

group.command("aar")(report_aar.aar_cmd)
