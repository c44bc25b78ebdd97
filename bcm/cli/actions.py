"""Scaffold: the helper building this module replaces it."""

import typer

group = typer.Typer(help="Corrective actions.", no_args_is_help=True, rich_markup_mode=None)
