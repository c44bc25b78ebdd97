"""Problems found in runbook and catalog files (carried by ``bcm.errors.SpecError``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bcm.spec.yamlsource import SourceMap

Path_ = tuple[str | int, ...]
"""Where a node is in a document: ``("phases", "response", 1, "needs")``."""


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


@dataclass
class Findings:
    """The problems of one document as checks find them, each placed by its node path.

    Attributes:
        file: the file as the user named it.
        source: where each node of the document was written.
        reported: node paths whose value the model already refused; a later check says nothing
            at or below them, so one mistake is one problem (a role that does not match the
            role pattern is not also an unknown role).
        problems: what the checks found.
    """

    file: str
    source: SourceMap
    reported: frozenset[Path_] = frozenset()
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: Path_, message: str) -> None:
        """Record a problem at the node ``path`` (or its nearest ancestor the source map knows)."""
        line, col = self.source.locate(path)
        self.add_at(path, line, col, message)

    def add_at(self, path: Path_, line: int, column: int, message: str) -> None:
        """Record a problem about the node ``path`` at a given line and column."""
        if not self.was_reported(path):
            self.problems.append(Problem(self.file, line, column, dotted(path), message))

    def was_reported(self, path: Path_) -> bool:
        """Whether the model already refused the value at ``path`` or one that holds it."""
        return bool(self.reported) and any(path[:n] in self.reported for n in range(len(path) + 1))

    def check_role(self, path: Path_, role: str, roles: Collection[str]) -> None:
        """Record a problem when ``role`` is not one of the stakeholder ``roles``."""
        if role not in roles:
            self.add(path, unknown("role", role, roles) + " in stakeholders.yaml")


def dotted(path: Path_) -> str:
    """Render a node path as ``phases.response[1].needs``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown role 'execs' (did you mean 'exec'?)``."""
    return f"unknown {what} '{name}'{did_you_mean(name, known)}"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``known``, or an empty string."""
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
