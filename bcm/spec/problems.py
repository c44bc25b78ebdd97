"""Problems found in runbook and catalog files, and the error that carries them.

Exception hierarchy (each builds its own message)::

    BcmError
     ├── SpecError          one or more Problems in runbook/catalog files (bcm validate, bcm run)
     └── InputError         a bad command-line input: a missing file, a bad parameter value
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class BcmError(Exception):
    """Base class of bcm's own errors; the message is complete and meant for people."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem, located in a file.

    Attributes:
        file: the file as the user named it.
        line: 1-based line, 0 when the problem is about the whole file.
        column: 1-based column.
        where: the dotted path inside the document (``phases.response[1].needs``), may be empty.
        message: what is wrong and, where possible, what to do.
    """

    file: str
    line: int
    column: int
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


class SpecError(BcmError):
    """Raised when runbook or catalog files have problems; holds every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found:\n{lines}")


class InputError(BcmError):
    """A bad input given on the command line (a path, a parameter, a run id)."""


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
