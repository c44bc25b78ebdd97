"""Runbook libraries: finding runbook files, loading them against their catalog, unique ids.

A library is a folder of runbooks (``*.yaml``, sub-folders included) with its catalog in
``catalog/``; ``exercises/`` and ``scripts/`` hold other files. Everything is validated
together and every problem is reported at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

from bcm.errors import InputError, SpecError
from bcm.spec.catalog import CATALOG_DIR, Catalog, find_catalog, load_catalog
from bcm.spec.checks import inspect_runbook
from bcm.spec.models import Runbook
from bcm.spec.problems import Problem, display_path
from bcm.spec.reading import YAML_SUFFIXES, ReadFile, read_file, read_string, read_text

# Folders of a library that hold other kinds of YAML than runbooks.
NON_RUNBOOK_DIRS = frozenset({CATALOG_DIR, "exercises", "scripts"})


@dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook and where it came from."""

    runbook: Runbook
    path: Path
    sha256: str

    @property
    def directory(self) -> Path:
        """The folder the runbook lives in: ``run`` steps' relative paths start here."""
        return self.path.parent


@dataclass(frozen=True)
class Library:
    """The runbooks of a library, validated together, and their catalog."""

    root: Path
    catalog: Catalog
    runbooks: dict[str, LoadedRunbook] = field(default_factory=dict)

    def get(self, ref: str) -> LoadedRunbook:
        """A runbook by id, or by path to its YAML file.

        Raises:
            InputError: when there is no such runbook (the nearest id is suggested).
        """
        if ref in self.runbooks:
            return self.runbooks[ref]
        candidate = Path(ref)
        if candidate.suffix in YAML_SUFFIXES or candidate.exists():
            resolved = candidate.resolve()
            for loaded in self.runbooks.values():
                if loaded.path.resolve() == resolved:
                    return loaded
        close = get_close_matches(ref, list(self.runbooks), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(f"no runbook '{ref}' in {display_path(self.root)}{hint}: `bcm list` shows the runbooks")


# --------------------------------------------------------------------------- one runbook


@dataclass(frozen=True)
class _Loaded:
    """A runbook file as loaded: the runbook when valid, its problems, where its ``id`` key is."""

    item: LoadedRunbook | None
    problems: list[Problem]
    id_at: tuple[int, int] = (1, 1)


def load_runbook(path: Path, catalog: Catalog) -> tuple[LoadedRunbook | None, list[Problem]]:
    """Load one runbook file and check it against ``catalog``.

    Returns:
        The loaded runbook (None when there are problems) and every problem found.
    """
    loaded = _load(read_file(path), catalog, path)
    return loaded.item, loaded.problems


def load_runbook_text(
    text: str, file: str, catalog: Catalog, *, path: Path | None = None
) -> tuple[LoadedRunbook | None, list[Problem]]:
    """Load a runbook from ``text``; ``file`` names it in problems (tests use in-memory YAML)."""
    loaded = _load(read_string(text, file), catalog, path)
    return loaded.item, loaded.problems


def _load(read: ReadFile, catalog: Catalog, path: Path | None) -> _Loaded:
    if read.text is None or read.document is None:
        return _Loaded(None, read.problems)
    inspection = inspect_runbook(read.document, read.file, catalog, read.text.splitlines())
    problems = [*read.problems, *inspection.problems]
    if problems or inspection.runbook is None:
        return _Loaded(None, problems)
    digest = hashlib.sha256(read.text.encode("utf-8")).hexdigest()
    item = LoadedRunbook(runbook=inspection.runbook, path=(path or Path(read.file)).absolute(), sha256=digest)
    return _Loaded(item, problems, read.document.source.locate(("id",), key=True))


# --------------------------------------------------------------------------- libraries


def runbook_files(root: Path) -> list[Path]:
    """The runbook files of a library folder (catalog, exercises and scripts excluded)."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in YAML_SUFFIXES or not path.is_file():
            continue
        if any(part in NON_RUNBOOK_DIRS or part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue
        files.append(path)
    return files


def validate(paths: Sequence[Path], *, library_root: Path) -> tuple[list[LoadedRunbook], list[Problem]]:
    """Validate runbook files and folders, each against its catalog.

    Args:
        paths: files or folders; folders are searched for runbooks.
        library_root: the configured library, whose catalog is used for files outside any folder
            that has a ``catalog/`` of its own.

    Returns:
        The runbooks that are valid and every problem found (catalog problems included).

    Raises:
        InputError: when a path does not exist or is not a YAML file or folder.
    """
    problems: list[Problem] = []
    catalogs: dict[Path, Catalog | None] = {}
    loaded: list[LoadedRunbook] = []
    first_with_id: dict[str, str] = {}  # runbook id -> file:line:col of its id
    for path in _runbook_paths(paths):
        catalog_dir = find_catalog(path.parent, library_root)
        if catalog_dir not in catalogs:
            catalogs[catalog_dir], found = load_catalog(catalog_dir)
            problems += found
        catalog = catalogs[catalog_dir]
        if catalog is None:
            reason = f"not checked: the catalog in {display_path(catalog_dir)} has problems"
            problems.append(Problem(display_path(path), 0, 0, "", reason))
            continue
        result = _load(read_file(path), catalog, path)
        problems += result.problems
        if result.item is None:
            continue
        runbook_id = result.item.runbook.id
        line, col = result.id_at
        shown = display_path(path)
        if runbook_id in first_with_id:
            problems.append(
                Problem(
                    shown,
                    line,
                    col,
                    "id",
                    f"runbook id '{runbook_id}' is also used by {first_with_id[runbook_id]}: ids must be unique",
                )
            )
            continue
        first_with_id[runbook_id] = f"{shown}:{line}:{col}"
        loaded.append(result.item)
    return loaded, problems


def _runbook_paths(paths: Sequence[Path]) -> list[Path]:
    """The runbook files named by ``paths`` (folders searched), resolved, each once.

    Raises:
        InputError: when a path does not exist or is not a YAML file or folder.
    """
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{display_path(path)}: no such file or folder")
        if path.is_dir():
            files += runbook_files(path)
        else:
            read_text(path)  # a one-line refusal for non-YAML files, before anything else
            files.append(path)
    return list(dict.fromkeys(f.resolve() for f in files))


def load_library(root: Path) -> Library:
    """Load and validate the whole library in ``root``.

    Raises:
        InputError: when ``root`` does not exist.
        SpecError: with every problem when anything in the library is invalid.
    """
    if not root.is_dir():
        raise InputError(
            f"{display_path(root)}: no runbook library here; run bcm from the project folder or set BCM_RUNBOOKS"
        )
    loaded, problems = validate([root], library_root=root)
    if problems:
        raise SpecError(problems)
    catalog, _ = load_catalog(find_catalog(root, root))
    assert catalog is not None  # validate() reported its problems otherwise
    return Library(root=root, catalog=catalog, runbooks={item.runbook.id: item for item in loaded})


def load_one(ref: str, *, library_root: Path) -> tuple[LoadedRunbook, Catalog]:
    """A runbook by id from the library, or by path to any YAML file, validated.

    Raises:
        InputError: when there is no such runbook.
        SpecError: when it (or its catalog) is invalid.
    """
    candidate = Path(ref)
    if candidate.suffix in YAML_SUFFIXES or candidate.is_file():
        loaded, problems = validate([candidate], library_root=library_root)
        if problems:
            raise SpecError(problems)
        catalog, _ = load_catalog(find_catalog(candidate.resolve().parent, library_root))
        assert catalog is not None
        return loaded[0], catalog
    library = load_library(library_root)
    return library.get(ref), library.catalog
