"""Problems found in runbook and catalog files (carried by ``bcm.errors.SpecError``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
