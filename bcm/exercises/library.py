"""Exercise files (``runbooks/exercises/*.yaml``): read, checked against the library, every problem at once.

The model (:mod:`bcm.exercises.models`) checks shape and types; this module checks what needs the
library: the runbook exists and takes the parameters given, the steps named exist (and a scripted
response answers a person step, by someone who holds its role), the roles are in the stakeholders
file, objective ids and inject numbers are unique and referenced correctly, the runbook has what a
measure needs (an RTO, a communication cadence), and the inject messages are templates that can
render. Problems are located (file:line:col) like the runbooks'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

from bcm.errors import InputError, SpecError
from bcm.exercises.models import CadenceMeasure, Exercise, Happened, StepMeasure, TargetMeasure
from bcm.spec.catalog import Catalog
from bcm.spec.library import Library, LoadedRunbook, load_library
from bcm.spec.params import resolve_parameters
from bcm.spec.problems import Findings, Path_, Problem, display_path, unknown
from bcm.spec.reading import YAML_SUFFIXES, read_file
from bcm.spec.targets import runbook_targets
from bcm.spec.validation import check_model
from bcm.templates import check_template

EXERCISES_DIR = "exercises"
#: The names an inject message may use: ``exercise.id``/``title``, ``run.short_id``, ``params``,
#: ``inject.number``/``to``; ``steps`` is there for the runbook's step outputs.
INJECT_CONTEXT_HINT = "exercise, run, inject, params, steps"


@dataclass(frozen=True)
class LoadedExercise:
    """A validated exercise, where it came from, and the runbook it tests."""

    exercise: Exercise
    path: Path
    sha256: str
    runbook: LoadedRunbook
    catalog: Catalog


@dataclass(frozen=True)
class ExerciseLibrary:
    """The exercises of a library, validated together."""

    root: Path
    exercises: dict[str, LoadedExercise] = field(default_factory=dict)

    def get(self, ref: str) -> LoadedExercise:
        """An exercise by id, or by path to its YAML file.

        Raises:
            InputError: there is no such exercise (the nearest id is suggested).
        """
        if ref in self.exercises:
            return self.exercises[ref]
        candidate = Path(ref)
        if candidate.suffix in YAML_SUFFIXES or candidate.exists():
            resolved = candidate.resolve()
            for loaded in self.exercises.values():
                if loaded.path.resolve() == resolved:
                    return loaded
        close = get_close_matches(ref, list(self.exercises), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(
            f"no exercise '{ref}' in {display_path(self.root / EXERCISES_DIR)}{hint}: "
            "`bcm exercise plan` lists the exercises"
        )


def exercise_files(root: Path) -> list[Path]:
    """The exercise files of a library (``exercises/*.yaml`` below its root)."""
    folder = root / EXERCISES_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def validate_exercises(paths: Sequence[Path], library: Library) -> tuple[list[LoadedExercise], list[Problem]]:
    """Validate exercise files against a loaded runbook library.

    Returns:
        The exercises that are valid and every problem found.
    """
    loaded: list[LoadedExercise] = []
    problems: list[Problem] = []
    first_with_id: dict[str, str] = {}
    for path in paths:
        read = read_file(path)
        problems += read.problems
        if read.document is None:
            continue
        checked = check_model(Exercise, read.document, read.file)
        problems += checked.problems
        if checked.value is None:
            continue
        exercise = checked.value
        findings = Findings(read.file, read.document.source, reported=checked.reported)
        runbook = check_exercise(exercise, library, findings)
        problems += findings.problems
        line, col = read.document.source.locate(("id",))
        if exercise.id in first_with_id:
            problems.append(
                Problem(
                    read.file,
                    line,
                    col,
                    "id",
                    f"exercise id '{exercise.id}' is also used by {first_with_id[exercise.id]}: ids must be unique",
                )
            )
            continue
        first_with_id[exercise.id] = f"{read.file}:{line}:{col}"
        if findings.problems or runbook is None:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        loaded.append(LoadedExercise(exercise, path, digest, runbook, library.catalog))
    return loaded, problems


def check_exercise(exercise: Exercise, library: Library, findings: Findings) -> LoadedRunbook | None:
    """Check an exercise's cross-references; return the runbook it tests (None when unknown)."""
    _check_roles(exercise, library.catalog, findings)
    _check_unique_objectives(exercise, findings)
    _check_msel(exercise, findings)
    loaded = library.runbooks.get(exercise.runbook)
    if loaded is None:
        findings.add(("runbook",), unknown("runbook", exercise.runbook, library.runbooks) + " in the library")
        return None
    against = _AgainstRunbook(loaded, library.catalog, findings)
    against.objectives(exercise)
    against.injects(exercise)
    against.responses(exercise)
    against.parameters(exercise)
    return loaded


def _check_roles(exercise: Exercise, catalog: Catalog, findings: Findings) -> None:
    roles = catalog.roles
    for key in ("sponsor", "controller"):
        role = getattr(exercise, key)
        if role is not None:
            findings.check_role((key,), role, roles)
    for key in ("participants", "evaluators"):
        for i, role in enumerate(getattr(exercise, key)):
            findings.check_role((key, i), role, roles)
    for i, inject in enumerate(exercise.msel):
        findings.check_role(("msel", i, "from"), inject.from_, roles)
        findings.check_role(("msel", i, "to"), inject.to, roles)


class _AgainstRunbook:
    """The checks that need the runbook the exercise tests."""

    def __init__(self, loaded: LoadedRunbook, catalog: Catalog, findings: Findings) -> None:
        self.loaded = loaded
        self.runbook = loaded.runbook
        self.catalog = catalog
        self.findings = findings
        self.step_ids = frozenset(step.id for _, step in self.runbook.steps(include_prevention=False))

    def step(self, path: Path_, step_id: str) -> bool:
        if step_id in self.step_ids:
            return True
        self.findings.add(path, unknown(f"step of runbook {self.runbook.id}", step_id, self.step_ids))
        return False

    def happened(self, path: Path_, happened: Happened | None) -> None:
        if happened is not None and happened.step is not None:
            self.step((*path, "step"), happened.step)

    def objectives(self, exercise: Exercise) -> None:
        targets = runbook_targets(self.loaded, self.catalog)
        for i, objective in enumerate(exercise.objectives):
            measure = objective.measure
            where: Path_ = ("objectives", i, "measure")
            if isinstance(measure, StepMeasure):
                self.step((*where, "step"), measure.step)
            elif isinstance(measure, CadenceMeasure) and self.runbook.communication.cadence is None:
                self.findings.add(
                    (*where, "cadence"),
                    f"runbook {self.runbook.id} sets no communication cadence: "
                    "add 'communication: {cadence: 30m}' to it",
                )
            elif isinstance(measure, TargetMeasure):
                target = targets.rto if measure.target == "rto" else targets.mtpd
                if target is None:
                    self.findings.add(
                        (*where, "target"),
                        f"runbook {self.runbook.id} has no {measure.target.upper()} "
                        "(from its targets or its services' BIA)",
                    )

    def injects(self, exercise: Exercise) -> None:
        for i, inject in enumerate(exercise.msel):
            self.happened(("msel", i, "expects"), inject.expects)
            if inject.contingency is not None:
                key = "unless" if inject.contingency.unless is not None else "if"
                self.happened(("msel", i, "contingency", key), inject.contingency.event)
            params = frozenset(self.runbook.parameters)
            for issue in check_template(inject.message, params=params, steps=self.step_ids):
                self.findings.add(("msel", i, "message"), issue.message)

    def responses(self, exercise: Exercise) -> None:
        seen: set[str] = set()
        for i, response in enumerate(exercise.responses):
            if response.step in seen:
                self.findings.add(("responses", i, "step"), f"step {response.step} already has a scripted response")
            seen.add(response.step)
            if self.step(("responses", i, "step"), response.step):
                self._response_by(i, response.step, response.by)

    def _response_by(self, i: int, step_id: str, by: str) -> None:
        step = self.runbook.step(step_id)
        if not step.kind_def.waits_for_person:
            self.findings.add(
                ("responses", i, "step"),
                f"step {step.id} is a {step.kind} step: only approve and manual steps wait for an answer",
            )
            return
        role_id = getattr(step, step.kind).by
        role = self.catalog.roles.get(role_id)
        if role is not None and role.holder(by) is None:
            holders = ", ".join(p.name for p in [*role.members, *role.alternates])
            self.findings.add(
                ("responses", i, "by"),
                f"'{by}' does not hold role {role_id}, which step {step.id} waits for (holders: {holders})",
            )

    def parameters(self, exercise: Exercise) -> None:
        given = {
            name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in exercise.parameters.items()
        }
        _, problems = resolve_parameters(self.runbook, given)
        for problem in problems:
            self.findings.add(("parameters",), f"{problem} (runbook {self.runbook.id})")


def _check_unique_objectives(exercise: Exercise, findings: Findings) -> None:
    seen: set[str] = set()
    for i, objective in enumerate(exercise.objectives):
        if objective.id in seen:
            findings.add(("objectives", i, "id"), f"objective id '{objective.id}' is used twice: ids must be unique")
        seen.add(objective.id)


def _check_msel(exercise: Exercise, findings: Findings) -> None:
    objectives = {o.id for o in exercise.objectives}
    numbers: set[int] = set()
    for i, inject in enumerate(exercise.msel):
        if inject.number in numbers:
            findings.add(("msel", i, "number"), f"inject number {inject.number} is used twice: numbers must be unique")
        numbers.add(inject.number)
        if inject.objective is not None and inject.objective not in objectives:
            findings.add(("msel", i, "objective"), unknown("objective", inject.objective, objectives))


def load_exercises(root: Path, library: Library | None = None) -> ExerciseLibrary:
    """Load and validate every exercise of the library in ``root``.

    Raises:
        InputError: when ``root`` does not exist.
        SpecError: with every problem when any exercise (or the runbook library) is invalid.
    """
    library = library or load_library(root)
    loaded, problems = validate_exercises(exercise_files(root), library)
    if problems:
        raise SpecError(problems)
    return ExerciseLibrary(root=root, exercises={item.exercise.id: item for item in loaded})


def load_exercise(ref: str, *, library_root: Path) -> LoadedExercise:
    """An exercise by id from the library, or by path to any YAML file, validated.

    Raises:
        InputError: there is no such exercise.
        SpecError: it (or the runbook library) is invalid.
    """
    library = load_library(library_root)
    candidate = Path(ref)
    if candidate.suffix in YAML_SUFFIXES and candidate.is_file():
        loaded, problems = validate_exercises([candidate], library)
        if problems:
            raise SpecError(problems)
        return loaded[0]
    return load_exercises(library_root, library).get(ref)
