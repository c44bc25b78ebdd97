"""Reading runbook and catalog files: text, then a YAML document with its source map.

The problems of a file as a whole (missing, a folder, not YAML, not UTF-8) are found here; the
YAML itself is read by :mod:`bcm.spec.yamlsource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bcm.errors import InputError
from bcm.spec.problems import Problem, display_path
from bcm.spec.yamlsource import YamlDocument, load_yaml

YAML_SUFFIXES = (".yaml", ".yml")


def read_text(path: Path) -> str:
    """Read a YAML file as text.

    Raises:
        InputError: when the file is missing, a folder, unreadable or not text.
    """
    shown = display_path(path)
    if not path.exists():
        raise InputError(f"{shown}: no such file or folder")
    if path.is_dir():
        raise InputError(f"{shown}: is a folder, expected a YAML file")
    if path.suffix not in YAML_SUFFIXES:
        raise InputError(f"{shown}: not a YAML file (expected .yaml or .yml)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class ReadFile:
    """What reading a file gave.

    Attributes:
        file: the file as problems name it.
        text: its text; None when it could not be read.
        document: its YAML document; None when it could not be read or parsed.
        problems: why it could not be read, YAML syntax errors, duplicate keys.
    """

    file: str
    text: str | None
    document: YamlDocument | None
    problems: list[Problem]


def read_file(path: Path, *, needed_by: str = "") -> ReadFile:
    """Read ``path`` into a YAML document; a file that cannot be read is one problem, not an error.

    Args:
        path: the file.
        needed_by: said after why the file cannot be read (``": the catalog needs it"``).
    """
    file = display_path(path)
    try:
        text = read_text(path)
    except InputError as exc:
        reason = str(exc).split(": ", 1)[1]
        return ReadFile(file, None, None, [Problem(file, 0, 0, "", f"{reason}{needed_by}")])
    return read_string(text, file)


def read_string(text: str, file: str) -> ReadFile:
    """Read YAML ``text``; ``file`` names it in problems (tests use in-memory YAML)."""
    document, problems = load_yaml(text, file)
    return ReadFile(file, text, document, problems)
