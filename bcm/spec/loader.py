"""Loading and checking runbooks and the catalog: every problem at once, each with its place."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bcm.durations import format_duration
from bcm.errors import InputError, SpecError
from bcm.spec.graph import dependencies, find_cycle
from bcm.spec.models import Role, Runbook, Service, Services, Stakeholders, Step
from bcm.spec.problems import Problem, display_path
from bcm.spec.validation import model_problems
from bcm.spec.yamlsource import Path_, SourceMap, YamlDocument, dotted, load_yaml
from bcm.templates import check_template
from bcm.vocabulary import PHASES

M = TypeVar("M", bound=BaseModel)
CATALOG_DIR = "catalog"
# Folders of a library that hold other kinds of YAML than runbooks.
NON_RUNBOOK_DIRS = frozenset({CATALOG_DIR, "exercises", "scripts"})


@dataclass(frozen=True)
class Catalog:
    """Services (with their BIA) and stakeholder roles."""

    services: dict[str, Service]
    roles: dict[str, Role]
    directory: Path


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
        if candidate.suffix in (".yaml", ".yml") or candidate.exists():
            resolved = candidate.resolve()
            for loaded in self.runbooks.values():
                if loaded.path.resolve() == resolved:
                    return loaded
        close = get_close_matches(ref, list(self.runbooks), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(f"no runbook '{ref}' in {display_path(self.root)}{hint}: `bcm list` shows the runbooks")


# --------------------------------------------------------------------------- files


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
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"{shown}: not a YAML file (expected .yaml or .yml)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot be read ({exc.strerror})") from None


def _parse(model: type[M], doc: YamlDocument, file: str) -> tuple[M | None, list[Problem]]:
    if not isinstance(doc.data, dict):
        return None, [Problem(file, 1, 1, "", "expected a mapping of keys at the top of the file")]
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        return None, model_problems(exc, model, doc.source, file)


# --------------------------------------------------------------------------- catalog


def find_catalog(start: Path, fallback: Path | None = None) -> Path:
    """The catalog folder for runbooks in ``start``: the nearest ``catalog/`` at or above it."""
    for folder in [start, *start.parents]:
        if (folder / CATALOG_DIR / "services.yaml").exists():
            return folder / CATALOG_DIR
    if fallback is not None and (fallback / CATALOG_DIR).exists():
        return fallback / CATALOG_DIR
    return start / CATALOG_DIR


def load_catalog(directory: Path) -> tuple[Catalog | None, list[Problem]]:
    """Load ``services.yaml`` and ``stakeholders.yaml`` from ``directory`` and check them together."""
    problems: list[Problem] = []
    services_path = directory / "services.yaml"
    roles_path = directory / "stakeholders.yaml"
    parsed: dict[str, Any] = {}
    sources: dict[str, tuple[str, SourceMap]] = {}
    for key, path, model in (("services", services_path, Services), ("roles", roles_path, Stakeholders)):
        file = display_path(path)
        try:
            text = read_text(path)
        except InputError as exc:
            problems.append(Problem(file, 0, 0, "", f"{str(exc).split(': ', 1)[1]}: the catalog needs it"))
            continue
        doc, found = load_yaml(text, file)
        problems += found
        if doc is None:
            continue
        value, found = _parse(model, doc, file)
        problems += found
        if value is not None:
            parsed[key] = value
            sources[key] = (file, doc.source)
    if "services" not in parsed or "roles" not in parsed:
        return None, problems
    roles: dict[str, Role] = dict(parsed["roles"].roles)
    services: dict[str, Service] = {}
    file, source = sources["services"]
    service_list: list[Service] = parsed["services"].services
    for i, service in enumerate(service_list):
        base: Path_ = ("services", i)
        if service.id in services:
            problems.append(_problem(file, source, base + ("id",), f"duplicate service id '{service.id}'"))
        services[service.id] = service
    for i, service in enumerate(service_list):
        base = ("services", i)
        problems += _role_problems(file, source, base + ("owner",), service.owner, roles)
        if service.bia is not None:
            problems += _role_problems(file, source, base + ("bia", "approved_by"), service.bia.approved_by, roles)
        if service.rto >= service.mtpd:
            problems.append(
                _problem(
                    file,
                    source,
                    base + ("rto",),
                    f"RTO {format_duration(service.rto)} must be below the MTPD "
                    f"{format_duration(service.mtpd)} (the maximum tolerable period of disruption)",
                )
            )
        for j, dep in enumerate(service.dependencies.services):
            if dep not in services:
                problems.append(
                    _problem(
                        file,
                        source,
                        base + ("dependencies", "services", j),
                        _unknown("service", dep, services),
                    )
                )
            elif dep == service.id:
                problems.append(
                    _problem(
                        file,
                        source,
                        base + ("dependencies", "services", j),
                        "a service cannot depend on itself",
                    )
                )
    if problems:
        return None, problems
    return Catalog(services=services, roles=roles, directory=directory), problems


# --------------------------------------------------------------------------- runbooks


def load_runbook(path: Path, catalog: Catalog) -> tuple[LoadedRunbook | None, list[Problem]]:
    """Load one runbook file and check it against ``catalog``.

    Returns:
        The loaded runbook (None when there are problems) and every problem found.
    """
    file = display_path(path)
    try:
        text = read_text(path)
    except InputError as exc:
        return None, [Problem(file, 0, 0, "", str(exc).split(": ", 1)[1])]
    return load_runbook_text(text, file, catalog, path=path)


def load_runbook_text(
    text: str, file: str, catalog: Catalog, *, path: Path | None = None
) -> tuple[LoadedRunbook | None, list[Problem]]:
    """Load a runbook from ``text``; ``file`` names it in problems (tests use in-memory YAML)."""
    doc, problems = load_yaml(text, file)
    if doc is None:
        return None, problems
    if isinstance(doc.data, dict) and doc.data.get("version", 1) != 1:
        line, col = doc.source.locate(("version",))
        version = doc.data.get("version")
        return None, [
            *problems,
            Problem(
                file,
                line,
                col,
                "version",
                f"unsupported version {version!r}: this bcm reads runbook format version 1",
            ),
        ]
    runbook, found = _parse(Runbook, doc, file)
    problems += found
    if runbook is None:
        return None, problems
    problems += check_runbook(runbook, doc.source, file, catalog, text.splitlines())
    if problems:
        return None, problems
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return LoadedRunbook(runbook=runbook, path=(path or Path(file)).absolute(), sha256=digest), problems


def check_runbook(
    runbook: Runbook, source: SourceMap, file: str, catalog: Catalog, lines: Sequence[str]
) -> list[Problem]:
    """Cross-reference checks that need the whole runbook and the catalog."""
    problems: list[Problem] = []

    def at(path: Path_, message: str) -> None:
        problems.append(_problem(file, source, path, message))

    # Roles and services.
    problems += _role_problems(file, source, ("owner",), runbook.owner, catalog.roles)
    if runbook.review and runbook.review.approved_by:
        problems += _role_problems(file, source, ("review", "approved_by"), runbook.review.approved_by, catalog.roles)
    for i, service_id in enumerate(runbook.services):
        if service_id not in catalog.services:
            at(("services", i), _unknown("service", service_id, catalog.services))
    known_services = [catalog.services[s] for s in runbook.services if s in catalog.services]
    for name in ("rto", "rpo"):
        target = getattr(runbook.targets, name)
        if target is None:
            continue
        for service in known_services:
            if name == "rto" and target > service.mtpd:
                at(
                    ("targets", "rto"),
                    f"RTO {format_duration(target)} exceeds the MTPD of service '{service.id}' "
                    f"({format_duration(service.mtpd)}): recovery must come before the disruption "
                    "becomes intolerable",
                )
            elif target > getattr(service, name):
                at(
                    ("targets", name),
                    f"{name.upper()} {format_duration(target)} is looser than the BIA of service '{service.id}' "
                    f"({format_duration(getattr(service, name))}): a runbook may tighten a target, not loosen it",
                )

    # Steps: ids, needs, roles, cycles.
    positions: dict[str, Path_] = {}
    step_phase: dict[str, str] = {}
    for phase in PHASES:
        for i, step in enumerate(getattr(runbook.phases, phase)):
            path: Path_ = ("phases", phase, i)
            if step.id in positions:
                first_line = source.locate(positions[step.id] + ("id",))[0]
                at(path + ("id",), f"duplicate step id '{step.id}' (first used on line {first_line})")
                continue
            positions[step.id] = path
            step_phase[step.id] = phase
    for phase in PHASES:
        for i, step in enumerate(getattr(runbook.phases, phase)):
            path = ("phases", phase, i)
            for j, need in enumerate(step.needs):
                if need not in step_phase:
                    hint = _hint(need, step_phase)
                    known = ", ".join(step_phase) or "none"
                    at(path + ("needs", j), f"unknown step '{need}'{hint} (known: {known})")
                elif need == step.id:
                    at(path + ("needs", j), f"step '{step.id}' cannot need itself")
                elif not _may_need(phase, step_phase[need]):
                    at(
                        path + ("needs", j),
                        f"step '{need}' is in phase {step_phase[need]}, which does not run before {phase}: "
                        f"{_phase_rule(phase)}",
                    )
            for key, role in _step_roles(step):
                problems += _role_problems(file, source, path + key, role, catalog.roles)
    for phases in (("prevention",), ("communication", "response", "recovery")):
        cycle = find_cycle(dependencies(runbook, phases=phases))
        if cycle:
            first = positions.get(cycle[0], ("phases",))
            at(
                first + ("needs",),
                f"dependency cycle: {' → '.join(cycle)} (a step without needs follows the one written before it)",
            )

    # Templates.
    params = frozenset(runbook.parameters)
    steps = frozenset(step_phase)
    if runbook.communication.channel:
        problems += _template_problems(
            file, source, lines, ("communication", "channel"), runbook.communication.channel, params, steps
        )
    for phase in PHASES:
        for i, step in enumerate(getattr(runbook.phases, phase)):
            base: Path_ = ("phases", phase, i)
            for rel, text in _step_templates(step):
                problems += _template_problems(file, source, lines, base + rel, text, params, steps)
            if step.when is not None:
                problems += _template_problems(
                    file, source, lines, base + ("when",), step.when, params, steps, expression=True
                )
    return problems


def _may_need(phase: str, needed_phase: str) -> bool:
    if phase == "prevention" or needed_phase == "prevention":
        return phase == needed_phase
    if phase == "recovery":
        return True
    return needed_phase in ("communication", "response")


def _phase_rule(phase: str) -> str:
    if phase == "prevention":
        return "prevention steps run as readiness checks and can only need other prevention steps"
    return "communication and response run together; recovery runs after response"


def _step_roles(step: Step) -> Iterable[tuple[Path_, str]]:
    if step.notify:
        for j, role in enumerate(step.notify.to):
            yield ("notify", "to", j), role
    if step.approve:
        yield ("approve", "by"), step.approve.by
    if step.manual:
        yield ("manual", "by"), step.manual.by


def _step_templates(step: Step) -> Iterable[tuple[Path_, str]]:
    if step.title:
        yield ("title",), step.title
    if step.run:
        for j, arg in enumerate(step.run):
            yield ("run", j), arg
    if step.http:
        yield ("http", "url"), step.http.url
        for name, value in step.http.headers.items():
            yield ("http", "headers", name), value
        yield from _nested_strings(step.http.json_body, ("http", "json"))
    if step.with_:
        yield from _nested_strings(step.with_, ("with",))
    if step.notify:
        yield ("notify", "message"), step.notify.message
    if step.approve:
        yield ("approve", "prompt"), step.approve.prompt
    if step.manual:
        yield ("manual", "instructions"), step.manual.instructions


def _nested_strings(value: object, path: Path_) -> Iterable[tuple[Path_, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nested_strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nested_strings(v, path + (i,))


def _template_problems(
    file: str,
    source: SourceMap,
    lines: Sequence[str],
    path: Path_,
    text: str,
    params: frozenset[str],
    steps: frozenset[str],
    *,
    expression: bool = False,
) -> list[Problem]:
    issues = check_template(text, params=params, steps=steps, expression=expression)
    out = []
    line, col = source.locate(path)
    block = path in source.block_scalars
    for issue in issues:
        if block:
            # A block scalar's text starts on the line after its `|` or `>` indicator.
            at_line = line + issue.line
            content = lines[at_line - 1] if at_line - 1 < len(lines) else ""
            at_col = len(content) - len(content.lstrip()) + 1
        else:
            at_line, at_col = line + issue.line - 1, col if issue.line == 1 else 1
        out.append(Problem(file, at_line, at_col, dotted(path), issue.message))
    return out


def _role_problems(file: str, source: SourceMap, path: Path_, role: str, roles: dict[str, Role]) -> list[Problem]:
    if role in roles:
        return []
    return [_problem(file, source, path, _unknown("role", role, roles) + " in stakeholders.yaml")]


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    names = list(known)
    return f"unknown {what} '{name}'{_hint(name, names)}"


def _hint(name: str, known: Iterable[str]) -> str:
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _problem(file: str, source: SourceMap, path: Path_, message: str) -> Problem:
    line, col = source.locate(path)
    return Problem(file, line, col, dotted(path), message)


# --------------------------------------------------------------------------- library


def runbook_files(root: Path) -> list[Path]:
    """The runbook files of a library folder (catalog, exercises and scripts excluded)."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
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
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{display_path(path)}: no such file or folder")
        if path.is_dir():
            files += runbook_files(path)
        else:
            read_text(path)  # a one-line refusal for non-YAML files, before anything else
            files.append(path)
    problems: list[Problem] = []
    catalogs: dict[Path, Catalog | None] = {}
    loaded: list[LoadedRunbook] = []
    seen_ids: dict[str, tuple[str, int, int]] = {}
    for file in dict.fromkeys(f.resolve() for f in files):
        catalog_dir = find_catalog(file.parent, library_root)
        if catalog_dir not in catalogs:
            catalog, found = load_catalog(catalog_dir)
            catalogs[catalog_dir] = catalog
            problems += found
        catalog = catalogs[catalog_dir]
        if catalog is None:
            problems.append(
                Problem(
                    display_path(file),
                    0,
                    0,
                    "",
                    f"not checked: the catalog in {display_path(catalog_dir)} has problems",
                )
            )
            continue
        item, found = load_runbook(file, catalog)
        problems += found
        if item is None:
            continue
        shown = display_path(file)
        if item.runbook.id in seen_ids:
            other, line, col = seen_ids[item.runbook.id]
            problems.append(
                Problem(
                    shown,
                    2,
                    1,
                    "id",
                    f"runbook id '{item.runbook.id}' is also used by {other}:{line}:{col}: ids must be unique",
                )
            )
            continue
        seen_ids[item.runbook.id] = (shown, 2, 1)
        loaded.append(item)
    return loaded, problems


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
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        loaded, problems = validate([candidate], library_root=library_root)
        if problems:
            raise SpecError(problems)
        catalog, _ = load_catalog(find_catalog(candidate.resolve().parent, library_root))
        assert catalog is not None
        return loaded[0], catalog
    library = load_library(library_root)
    return library.get(ref), library.catalog
