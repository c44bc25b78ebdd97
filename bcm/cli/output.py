"""What the ``bcm`` command prints, and how: the consoles, JSON and CSV on stdout, exit codes.

Every command module prints through this one, so the conventions hold everywhere:

- ``--json`` prints one JSON document on stdout (:func:`print_json`), ``--csv`` one CSV table
  (:func:`print_csv`); people get rich tables and trees on stdout, and progress, counts and
  errors on stderr.
- Piped output (CI logs, files) gets a wide console, so tables and trees are not cropped at 80
  columns.
- Data is printed as written: no emoji codes (a path's ":100:" is not 💯), no highlighting, and
  data put into a markup string goes in escaped (:func:`escape`) or as a :class:`Text`, so a
  "[bold]" in a runbook title is not markup. :func:`echo` prints a line literally.
- Times are shown in the user's zone (``--tz``, else ``$BCM_TIMEZONE``, else the machine's);
  durations in JSON are seconds.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from bcm.errors import InputError

__all__ = [
    "BAD_INPUT",
    "FAILED",
    "INTERRUPTED",
    "OK",
    "JsonOption",
    "Text",
    "TzOption",
    "echo",
    "err",
    "escape",
    "fail",
    "out",
    "print_csv",
    "print_json",
    "resolve_timezone",
    "seconds",
    "shown_time",
]

# Exit codes: the command-line contract.
OK: Final = 0
#: The run or check failed, files are invalid (``validate``), the audit chain is broken.
FAILED: Final = 1
#: Bad input: the message says what and where.
BAD_INPUT: Final = 2
#: Ctrl-C.
INTERRUPTED: Final = 130

out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone to show times in, e.g. Europe/London (default: $BCM_TIMEZONE or local)."),
]


def echo(text: str, *, stderr: bool = False) -> None:
    """Print ``text`` exactly as written: on stdout, or on stderr (progress, what happens next, errors)."""
    (err if stderr else out).print(text, markup=False)


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (default: bad input)."""
    echo(message, stderr=True)
    raise typer.Exit(code)


def print_json(doc: object, *, default: Callable[[Any], Any] | None = None) -> None:
    """Print ``doc`` on stdout as one indented JSON document (``default`` as for ``json.dumps``)."""
    sys.stdout.write(json.dumps(doc, indent=2, default=default) + "\n")


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a CSV table on stdout: a header row, then ``rows``, lines ending in ``\\n``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    sys.stdout.write(buffer.getvalue())


def seconds(value: timedelta | None) -> float | None:
    """A duration as JSON shows it: seconds, or None when unknown."""
    return None if value is None else value.total_seconds()


def resolve_timezone(name: str | None) -> tzinfo:
    """The zone to show times in: ``name``, else ``$BCM_TIMEZONE``, else the machine's local zone.

    Raises:
        InputError: ``name`` (or ``$BCM_TIMEZONE``) is not an IANA zone name.
    """
    chosen = name or os.environ.get("BCM_TIMEZONE") or None
    if chosen is None:
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC
    if chosen.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        where = "--tz" if name else "BCM_TIMEZONE"
        raise InputError(
            f"{where} {chosen}: unknown time zone: use an IANA name such as Europe/London or UTC"
        ) from None


def shown_time(at: datetime | None, tz: tzinfo) -> str:
    """``at`` in ``tz`` to the second, ISO 8601 with its offset; ``-`` when unknown."""
    return "-" if at is None else at.astimezone(tz).isoformat(timespec="seconds")


def who(by: str | None) -> str:
    """Who does it: ``--by``, else the login name (``$USER``, else the account's), else ``unknown``."""
    if by:
        return by
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        return "unknown"
