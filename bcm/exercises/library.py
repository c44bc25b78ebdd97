"""Exercise files (``runbooks/exercises/*.yaml``): read, checked against the library, every problem at once.

The model (:mod:`bcm.exercises.models`) checks shape and types; this module checks what needs the
library: the runbook exists and takes the parameters given, the steps named exist (and a scripted
response answers a person step, by someone who holds its role, before the step times out), the
roles are in the stakeholders file, objective ids and inject numbers are unique and referenced
correctly, the runbook has what a measure needs (an RTO, a communication cadence), the inject
messages and expected actions are templates that can render (the after-action report renders the
expected actions as the play renders the messages), and the schedule is one Prefect can fire. Problems are
located (file:line:col) like the runbooks'.

As for runbooks, a document the model refuses is still checked against the library: each
objective, inject and response that is valid on its own is, so a wrong type and an unknown step
are reported in the same pass.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from bcm.durations import format_duration
from bcm.errors import InputError, SpecError
from bcm.exercises.models import (
    CadenceMeasure,
    Exercise,
    Happened,
    Inject,
    MilestoneMeasure,
    Objective,
    Response,
    Schedule,
    StepMeasure,
    TargetMeasure,
)
from bcm.spec.catalog import Catalog, find_catalog, load_catalog
from bcm.spec.library import Library, LoadedRunbook, load_library, runbook_files, validate
from bcm.spec.params import coerce_parameter
from bcm.spec.problems import Findings, Path_, Problem, did_you_mean, display_path, dotted, unknown
from bcm.spec.reading import YAML_SUFFIXES, read_file, read_text
from bcm.spec.targets import runbook_targets
from bcm.spec.validation import Checked, model_problems
from bcm.spec.yamlsource import YamlDocument, load_yaml
from bcm.templates import CONTEXT_NAMES, check_template

M = TypeVar("M", bound=BaseModel)

EXERCISES_DIR = "exercises"
#: Names an inject message has beyond a runbook template's: ``exercise.id``/``title``, ``inject.number``/``to``.
INJECT_NAMES = ("exercise", "inject")
#: The names an inject message may use: a runbook template's (``params``, ``run``, ``steps``...) and those.
INJECT_CONTEXT_HINT = ", ".join(sorted(CONTEXT_NAMES | set(INJECT_NAMES)))
#: The keys that say which measure a mapping is, and the model each one selects.
MEASURES: dict[str, type[BaseModel]] = {
    "milestone": MilestoneMeasure,
    "step": StepMeasure,
    "cadence": CadenceMeasure,
    "target": TargetMeasure,
}


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


def looks_like_exercise(data: object) -> bool:
    """Whether a YAML document is an exercise: a mapping naming a ``runbook`` with ``msel`` or ``objectives``."""
    return isinstance(data, dict) and "runbook" in data and ("msel" in data or "objectives" in data)


def is_exercise_file(path: Path) -> bool:
    """Whether ``path`` holds an exercise: it is in an ``exercises/`` folder, or its YAML looks like one.

    Raises:
        InputError: the file is missing, a folder, not YAML or not UTF-8 (as for runbooks).
    """
    text = read_text(path)
    if path.parent.name == EXERCISES_DIR:
        return True
    document, _ = load_yaml(text, display_path(path))
    return document is not None and looks_like_exercise(document.data)


# --------------------------------------------------------------------------- validating files


def validate_exercises(
    paths: Sequence[Path], library: Library, *, broken_runbooks: Mapping[str, str] | None = None
) -> tuple[list[LoadedExercise], list[Problem]]:
    """Validate exercise files against a loaded runbook library.

    Args:
        paths: the exercise files.
        library: the runbooks (the valid ones) and their catalog.
        broken_runbooks: the runbooks of the library that have problems, id -> file: an exercise
            of one is not checked against it (and not told the runbook is unknown).

    Returns:
        The exercises that are valid and every problem found.
    """
    loaded: list[LoadedExercise] = []
    problems: list[Problem] = []
    first_with_id: dict[str, str] = {}
    broken = dict(broken_runbooks or {})
    for path in paths:
        read = read_file(path)
        problems += read.problems
        if read.document is None:
            continue
        checked = check_exercise_model(read.document, read.file)
        problems += checked.problems
        findings = Findings(read.file, read.document.source, reported=checked.reported)
        parts = _Parts.of(checked.value) if checked.value is not None else _Parts.read(read.document.data)
        runbook = _check(parts, library, findings, lines=read.text.splitlines() if read.text else (), broken=broken)
        problems += findings.problems
        exercise = checked.value
        if exercise is None:
            continue
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


def check_exercise_model(doc: YamlDocument, file: str) -> Checked[Exercise]:
    """The document against the exercise model, every error a located problem.

    Pydantic puts the tag of a discriminated union in an error's location
    (``objectives[2].measure.milestone.milestone``); it is left out, so the location is the
    document's (``objectives[2].measure.milestone``), and a measure with none of the keys that
    say which it is names the key it has instead.
    """
    if not isinstance(doc.data, dict):
        not_a_mapping = Problem(file, 1, 1, "", "expected a mapping of keys at the top of the file")
        return Checked(None, [not_a_mapping], frozenset({()}))
    try:
        return Checked(Exercise.model_validate(doc.data), [])
    except ValidationError as exc:
        title, errors = exc.title, exc.errors(include_url=False)
    kept: list[InitErrorDetails] = []
    problems: list[Problem] = []
    refused = set(doc.source.reported)
    for error in errors:
        loc, tag = _without_tag(tuple(error["loc"]))
        if not isinstance(error["input"], dict):
            refused.add(loc)
        if any(loc[:n] in doc.source.reported for n in range(1, len(loc) + 1)):
            continue
        own = _measure_problem(error, loc, tag, doc, file)
        if own is not None:
            problems.append(own)
            continue
        kind = PydanticCustomError(error["type"], error["msg"], error.get("ctx"))
        kept.append(InitErrorDetails(type=kind, loc=loc, input=error["input"]))
    if kept:
        stripped = ValidationError.from_exception_data(title, kept)
        problems += model_problems(stripped, Exercise, doc.source, file)
    return Checked(None, sorted(problems), frozenset(refused))


def _without_tag(loc: Path_) -> tuple[Path_, str | None]:
    """``objectives.2.measure.step.within`` -> ``objectives.2.measure.within`` and the tag ``step``."""
    if len(loc) > 3 and loc[0] == "objectives" and loc[2] == "measure" and loc[3] in MEASURES:
        return (*loc[:3], *loc[4:]), str(loc[3])
    return loc, None


def _measure_problem(error: Any, loc: Path_, tag: str | None, doc: YamlDocument, file: str) -> Problem | None:
    """A problem about a measure's keys, worded here (pydantic knows no key names for a union)."""
    if error["type"] == "measure" and isinstance(error["input"], dict) and error["input"]:
        key = str(next(iter(error["input"])))
        line, col = doc.source.locate((*loc, key), key=True)
        message = f"unknown key '{key}'{did_you_mean(key, MEASURES)}: {error['msg']}"
        return Problem(file, line, col, dotted(loc), message)
    if error["type"] == "extra_forbidden" and tag is not None:
        key = str(loc[-1])
        allowed = [f.alias or name for name, f in MEASURES[tag].model_fields.items()]
        hint = did_you_mean(key, allowed) or f" (allowed: {', '.join(allowed)})"
        line, col = doc.source.locate(loc, key=True)
        return Problem(file, line, col, dotted(loc[:-1]), f"unknown key '{key}'{hint}")
    return None


# --------------------------------------------------------------------------- checks against the library


@dataclass(frozen=True)
class _Parts:
    """What the checks against the library read of an exercise, each item with its index.

    From a valid exercise, all of it; from a document the model refused, the values of the right
    type and each objective, inject and response valid on its own.
    """

    runbook: str | None
    type: object
    game_day: bool
    schedule: Schedule | None
    roles: tuple[tuple[Path_, str], ...]
    #: The objective ids; None when some objective has none readable (a reference may be to it).
    objective_ids: tuple[tuple[int, str], ...] | None
    numbers: tuple[tuple[int, int], ...]
    objectives: tuple[tuple[int, Objective], ...]
    msel: tuple[tuple[int, Inject], ...]
    responses: tuple[tuple[int, Response], ...]
    parameters: Mapping[str, object]

    @classmethod
    def of(cls, exercise: Exercise) -> _Parts:
        roles: list[tuple[Path_, str]] = [(("sponsor",), exercise.sponsor)]
        if exercise.controller is not None:
            roles.append((("controller",), exercise.controller))
        roles += [(("participants", i), role) for i, role in enumerate(exercise.participants)]
        roles += [(("evaluators", i), role) for i, role in enumerate(exercise.evaluators)]
        for i, inject in enumerate(exercise.msel):
            roles += [(("msel", i, "from"), inject.from_), (("msel", i, "to"), inject.to)]
        return cls(
            runbook=exercise.runbook,
            type=exercise.type,
            game_day=exercise.game_day is not None,
            schedule=exercise.schedule,
            roles=tuple(roles),
            objective_ids=tuple((i, o.id) for i, o in enumerate(exercise.objectives)),
            numbers=tuple((i, inject.number) for i, inject in enumerate(exercise.msel)),
            objectives=tuple(enumerate(exercise.objectives)),
            msel=tuple(enumerate(exercise.msel)),
            responses=tuple(enumerate(exercise.responses)),
            parameters=exercise.parameters,
        )

    @classmethod
    def read(cls, data: object) -> _Parts:
        doc = data if isinstance(data, dict) else {}
        keyed: list[tuple[Path_, str | None]] = [((key,), _str(doc, key)) for key in ("sponsor", "controller")]
        for key in ("participants", "evaluators"):
            keyed += [((key, i), role if isinstance(role, str) else None) for i, role in enumerate(_items(doc, key))]
        for i, inject in enumerate(_items(doc, "msel")):
            keyed += [(("msel", i, key), _str(inject, key)) for key in ("from", "to")]
        objectives = _items(doc, "objectives")
        ids = tuple((i, objective_id) for i, o in enumerate(objectives) if (objective_id := _str(o, "id")) is not None)
        return cls(
            runbook=_str(doc, "runbook"),
            type=doc.get("type"),
            game_day="game_day" in doc,
            schedule=next((value for _, value in _valid(Schedule, [doc.get("schedule")])), None),
            roles=tuple((path, role) for path, role in keyed if role is not None),
            objective_ids=ids if len(ids) == len(objectives) else None,
            numbers=tuple(
                (i, m["number"])
                for i, m in enumerate(_items(doc, "msel"))
                if isinstance(m, dict) and type(m.get("number")) is int
            ),
            objectives=_valid(Objective, objectives),
            msel=_valid(Inject, _items(doc, "msel")),
            responses=_valid(Response, _items(doc, "responses")),
            parameters=doc["parameters"] if isinstance(doc.get("parameters"), dict) else {},
        )


def _str(mapping: object, key: str) -> str | None:
    """``mapping[key]`` when ``mapping`` is a mapping and that is a string, else None."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else None


def _items(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    return value if isinstance(value, list) else []


def _valid(model: type[M], items: list[Any]) -> tuple[tuple[int, M], ...]:
    """The items that are valid ``model`` instances on their own, with their indices."""
    valid: list[tuple[int, M]] = []
    for i, item in enumerate(items):
        try:
            valid.append((i, model.model_validate(item)))
        except ValidationError:
            continue  # the exercise model reported it
    return tuple(valid)


def check_exercise(exercise: Exercise, library: Library, findings: Findings) -> LoadedRunbook | None:
    """Check an exercise's cross-references; return the runbook it tests (None when unknown)."""
    return _check(_Parts.of(exercise), library, findings)


def _check(
    parts: _Parts,
    library: Library,
    findings: Findings,
    *,
    lines: Sequence[str] = (),
    broken: Mapping[str, str] | None = None,
) -> LoadedRunbook | None:
    for path, role in parts.roles:
        findings.check_role(path, role, library.catalog.roles)
    _check_unique_objectives(parts, findings)
    _check_msel(parts, findings)
    _check_game_day(parts, findings)
    for key, message in schedule_problems(parts.schedule) if parts.schedule is not None else ():
        findings.add(("schedule", key), message)
    if parts.runbook is None or findings.was_reported(("runbook",)):
        return None
    loaded = library.runbooks.get(parts.runbook)
    if loaded is None:
        if broken and parts.runbook in broken:
            message = (
                f"runbook {parts.runbook} has problems (bcm validate {broken[parts.runbook]}): "
                "the exercise is not checked against it"
            )
        else:
            message = unknown("runbook", parts.runbook, library.runbooks) + " in the library"
        findings.add(("runbook",), message)
        return None
    against = _AgainstRunbook(loaded, library.catalog, findings, lines)
    against.objectives(parts)
    against.injects(parts)
    against.responses(parts)
    against.parameters(parts)
    return loaded


def _check_unique_objectives(parts: _Parts, findings: Findings) -> None:
    seen: set[str] = set()
    for i, objective_id in parts.objective_ids or ():
        if objective_id in seen:
            findings.add(("objectives", i, "id"), f"objective id '{objective_id}' is used twice: ids must be unique")
        seen.add(objective_id)


def _check_msel(parts: _Parts, findings: Findings) -> None:
    numbers: set[int] = set()
    for i, number in parts.numbers:
        if number in numbers:
            findings.add(("msel", i, "number"), f"inject number {number} is used twice: numbers must be unique")
        numbers.add(number)
    if parts.objective_ids is None:
        return  # an objective without a readable id may be the one referenced
    objectives = {objective_id for _, objective_id in parts.objective_ids}
    for i, inject in parts.msel:
        if inject.objective is not None and inject.objective not in objectives:
            known = ", ".join(objective_id for _, objective_id in parts.objective_ids)
            message = unknown("objective", inject.objective, objectives) + f" (objectives: {known})"
            findings.add(("msel", i, "objective"), message)


def _check_game_day(parts: _Parts, findings: Findings) -> None:
    if parts.game_day and parts.type != "game-day" and not findings.was_reported(("type",)):
        findings.add(
            ("game_day",),
            f"'game_day' (hypothesis, blast radius, abort conditions) is for type game-day, not {parts.type}",
        )


class _AgainstRunbook:
    """The checks that need the runbook the exercise tests."""

    def __init__(self, loaded: LoadedRunbook, catalog: Catalog, findings: Findings, lines: Sequence[str]) -> None:
        self.loaded = loaded
        self.runbook = loaded.runbook
        self.catalog = catalog
        self.findings = findings
        self.lines = lines
        self.step_ids = frozenset(step.id for _, step in self.runbook.steps(include_prevention=False))

    def step(self, path: Path_, step_id: str) -> bool:
        if step_id in self.step_ids:
            return True
        self.findings.add(path, unknown("step", step_id, self.step_ids) + f" in runbook {self.runbook.id}")
        return False

    def happened(self, path: Path_, happened: Happened | None) -> None:
        if happened is not None and happened.step is not None:
            self.step((*path, "step"), happened.step)

    def objectives(self, parts: _Parts) -> None:
        targets = runbook_targets(self.loaded, self.catalog)
        for i, objective in parts.objectives:
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

    def injects(self, parts: _Parts) -> None:
        params = frozenset(self.runbook.parameters)
        for i, inject in parts.msel:
            self.happened(("msel", i, "expects"), inject.expects)
            if inject.contingency is not None:
                key = "unless" if inject.contingency.unless is not None else "if"
                self.happened(("msel", i, "contingency", key), inject.contingency.event)
            self._message(("msel", i, "message"), inject.message, params)
            self._message(("msel", i, "expected_action"), inject.expected_action, params)

    def _message(self, path: Path_, text: str, params: frozenset[str]) -> None:
        """An inject message's (or expected action's) template problems, each on its line (a block
        scalar's text starts on the line after its indicator)."""
        line, col = self.findings.source.locate(path)
        block = path in self.findings.source.block_scalars
        known = f"(known: {INJECT_CONTEXT_HINT})"
        for issue in check_template(text, params=params, steps=self.step_ids):
            if issue.message.startswith(tuple(f"unknown name '{name}'" for name in INJECT_NAMES)):
                continue  # the exercise's own names
            message = re.sub(r"\(known: [^)]*\)", known, issue.message).replace(
                "is used but not declared under 'parameters'", f"is not a parameter of runbook {self.runbook.id}"
            )
            if block and 0 < line + issue.line <= len(self.lines):
                content = self.lines[line + issue.line - 1]
                self.findings.add_at(path, line + issue.line, len(content) - len(content.lstrip()) + 1, message)
            else:
                self.findings.add_at(path, line + issue.line - 1, col if issue.line == 1 else 1, message)

    def responses(self, parts: _Parts) -> None:
        seen: set[str] = set()
        for i, response in parts.responses:
            if response.step in seen:
                self.findings.add(("responses", i, "step"), f"step {response.step} already has a scripted response")
            seen.add(response.step)
            if self.step(("responses", i, "step"), response.step):
                self._response(i, response)

    def _response(self, i: int, response: Response) -> None:
        step = self.runbook.step(response.step)
        if not step.kind_def.waits_for_person:
            self.findings.add(
                ("responses", i, "step"),
                f"step {step.id} is a {step.kind} step: only approve and manual steps wait for an answer",
            )
            return
        role_id = step.person_role
        role = self.catalog.roles.get(role_id) if role_id is not None else None
        if role is not None and role.holder(response.by) is None:
            holders = ", ".join(p.name for p in [*role.members, *role.alternates])
            self.findings.add(
                ("responses", i, "by"),
                f"'{response.by}' does not hold role {role_id}, which step {step.id} waits for (holders: {holders})",
            )
        timeout = step.person_timeout
        if timeout is not None and response.after >= timeout:
            self.findings.add(
                ("responses", i, "after"),
                f"step {step.id} times out after {format_duration(timeout)}, before this answer after "
                f"{format_duration(response.after)}: answer sooner",
            )

    def parameters(self, parts: _Parts) -> None:
        where = f"runbook {self.runbook.id}"
        declared = self.runbook.parameters
        for name, value in parts.parameters.items():
            if name not in declared:
                line, col = self.findings.source.locate(("parameters", name), key=True)
                known = ", ".join(sorted(declared)) or "none"
                message = f"{where} has no parameter '{name}'{did_you_mean(name, declared)} (it takes: {known})"
                self.findings.add_at(("parameters", name), line, col, message)
                continue
            try:
                coerce_parameter(declared[name], value)
            except ValueError as exc:
                self.findings.add(("parameters", name), f"parameter '{name}' of {where}: {exc}")
        for name, parameter in declared.items():
            if parameter.required and parameter.default is None and name not in parts.parameters:
                what = f" ({parameter.description})" if parameter.description else ""
                self.findings.add(("parameters",), f"missing required parameter '{name}' of {where}{what}")


# --------------------------------------------------------------------------- schedules

#: The fields of a cron expression Prefect's scheduler reads (no seconds).
CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def schedule_problems(schedule: Schedule) -> list[tuple[str, str]]:
    """What keeps a schedule from firing as Prefect would fire it: ``(key, message)`` pairs.

    The cron expression is read as the exercise programme reads it (``cronsim``, five fields). A
    day of month and a day of week both restricted fire on *either* in cron (``0 10 1-7 3 2`` is
    every day 1-7 and every Tuesday of March), almost never what an author means: it is refused,
    with the ``2#1`` (first Tuesday) form suggested.
    """
    from cronsim import CronSim, CronSimError  # only when an exercise has a schedule

    problems: list[tuple[str, str]] = []
    fields = schedule.cron.split()
    if len(fields) != len(CRON_FIELDS):
        problems.append(("cron", f"'{schedule.cron}' has {len(fields)} fields: write five ({' '.join(CRON_FIELDS)})"))
    elif fields[2] != "*" and fields[4] != "*":
        problems.append(
            (
                "cron",
                f"'{schedule.cron}' restricts both the day of month ({fields[2]}) and the day of week "
                f"({fields[4]}): cron fires on either one; write one of them as * (the first Tuesday "
                "of a month is '* ... 2#1' in the day-of-week field)",
            )
        )
    else:
        try:
            CronSim(schedule.cron, datetime(2026, 1, 1))
        except CronSimError as exc:
            problems.append(("cron", f"'{schedule.cron}' is not a cron expression Prefect can schedule: {exc}"))
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"unknown time zone '{schedule.timezone}': use an IANA name such as Europe/London"
        problems.append(("timezone", message))
    return problems


# --------------------------------------------------------------------------- loading


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
    # By id: the other exercise files may have problems; only this one's stop it.
    files = exercise_files(library_root)
    loaded, problems = validate_exercises(files, library)
    found = ExerciseLibrary(root=library_root, exercises={item.exercise.id: item for item in loaded})
    if ref in found.exercises:
        return found.exercises[ref]
    own = {display_path(path) for path in files if path.stem == ref}
    if mine := [problem for problem in problems if problem.file in own]:
        raise SpecError(mine)
    try:
        return found.get(ref)
    except InputError as exc:
        broken = len({problem.file for problem in problems})
        if broken:
            files_have = "1 exercise file has" if broken == 1 else f"{broken} exercise files have"
            raise InputError(f"{exc} ({files_have} problems: `bcm validate` lists them)") from None
        raise


# --------------------------------------------------------------------------- bcm validate


@dataclass(frozen=True)
class Validation:
    """What ``bcm validate`` found: the valid runbooks and exercises, and every problem."""

    runbooks: list[LoadedRunbook]
    exercises: list[LoadedExercise]
    problems: list[Problem]
    #: Whether any exercise file was looked at (the summary line names exercises only then).
    exercise_files: int = 0


def validate_paths(paths: Sequence[Path], *, library_root: Path) -> Validation:
    """Validate runbook and exercise files and folders: what ``bcm validate`` checks.

    A folder's runbooks are validated with its catalog, and so are the exercises in its
    ``exercises/`` folders, against the runbooks of the library they belong to; a file is an
    exercise when it lies in an ``exercises/`` folder or looks like one (:func:`is_exercise_file`).

    Raises:
        InputError: when a path does not exist or is not a YAML file or folder.
    """
    runbook_paths: list[Path] = []
    exercise_paths: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{display_path(path)}: no such file or folder")
        if path.is_dir():
            if path.name != EXERCISES_DIR:
                runbook_paths.append(path)
            exercise_paths += _exercises_in(path)
        elif is_exercise_file(path):
            exercise_paths.append(path)
        else:
            runbook_paths.append(path)
    runbooks, problems = validate(runbook_paths, library_root=library_root) if runbook_paths else ([], [])
    exercises: list[LoadedExercise] = []
    by_library: dict[Path, list[Path]] = {}
    for path in dict.fromkeys(p.resolve() for p in exercise_paths):
        by_library.setdefault(_library_of(path, library_root), []).append(path)
    checked_roots = [p.resolve() for p in runbook_paths if p.is_dir()]
    for root, files in by_library.items():
        found, more = _validate_library_exercises(root, files, runbooks, reuse=root in checked_roots)
        exercises += found
        problems += more
    return Validation(runbooks, exercises, problems, sum(len(files) for files in by_library.values()))


def _exercises_in(folder: Path) -> list[Path]:
    """The exercise files in a folder: its own when it is an ``exercises/`` folder, else those of
    the ``exercises/`` folders below it."""
    if folder.name == EXERCISES_DIR:
        return exercise_files(folder.parent)
    found: list[Path] = []
    for sub in sorted(folder.rglob(EXERCISES_DIR)):
        if sub.is_dir() and not any(part.startswith(".") for part in sub.relative_to(folder).parts):
            found += exercise_files(sub.parent)
    return found


def _library_of(exercise: Path, library_root: Path) -> Path:
    """The library an exercise file belongs to: the folder holding its ``exercises/`` folder when
    that folder has a catalog, else the configured library."""
    if exercise.parent.name == EXERCISES_DIR and (exercise.parent.parent / "catalog" / "services.yaml").exists():
        return exercise.parent.parent
    return library_root.resolve()


def _validate_library_exercises(
    root: Path, files: list[Path], runbooks: list[LoadedRunbook], *, reuse: bool
) -> tuple[list[LoadedExercise], list[Problem]]:
    """Validate exercise files against the library in ``root``.

    With ``reuse``, the library's runbooks were validated in this call (their problems are
    reported already): the valid ones are taken from ``runbooks``. Otherwise the library is
    validated here, and only what stops an exercise being checked is said.
    """
    problems: list[Problem] = []
    if not reuse:
        runbooks, _ = validate([root], library_root=root)
    mine = [item for item in runbooks if item.path.resolve().is_relative_to(root)]
    catalog_dir = find_catalog(root, root)
    catalog, catalog_problems = load_catalog(catalog_dir)
    if catalog is None:
        if not reuse:
            problems += catalog_problems
        reason = f"not checked: the catalog in {display_path(catalog_dir)} has problems"
        return [], problems + [Problem(display_path(path), 0, 0, "", reason) for path in files]
    library = Library(root=root, catalog=catalog, runbooks={item.runbook.id: item for item in mine})
    valid = {item.path.resolve() for item in mine}
    broken = {
        runbook_id: display_path(path)
        for path in runbook_files(root)
        if path.resolve() not in valid and (runbook_id := _runbook_id(path)) is not None
    }
    loaded, found = validate_exercises(files, library, broken_runbooks=broken)
    return loaded, problems + found


def _runbook_id(path: Path) -> str | None:
    """The id a runbook file gives, however wrong the rest of it is (None when it gives none)."""
    read = read_file(path)
    data = read.document.data if read.document is not None else None
    return _str(data, "id")
