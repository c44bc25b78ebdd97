"""Turning pydantic validation errors into located, readable problems."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from types import UnionType
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bcm.spec.problems import Path_, Problem, dotted
from bcm.spec.yamlsource import SourceMap, YamlDocument

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Checked(Generic[M]):
    """A document checked against a model.

    Attributes:
        value: the model instance; None when the document does not validate.
        problems: every problem the model found, located.
        reported: the node paths of values the model refused (not of mappings that miss a key or
            break a rule between keys): later checks say nothing more about them.
    """

    value: M | None
    problems: list[Problem]
    reported: frozenset[Path_] = frozenset()


def check_model(model: type[M], doc: YamlDocument, file: str) -> Checked[M]:
    """Validate the document's data against ``model``; every error becomes a located problem."""
    if not isinstance(doc.data, dict):
        not_a_mapping = Problem(file, 1, 1, "", "expected a mapping of keys at the top of the file")
        return Checked(None, [not_a_mapping], frozenset({()}))
    try:
        return Checked(model.model_validate(doc.data), [])
    except ValidationError as exc:
        refused = {tuple(e["loc"]) for e in exc.errors(include_url=False) if not isinstance(e["input"], dict)}
        return Checked(None, model_problems(exc, model, doc.source, file), frozenset(refused | doc.source.reported))


def model_problems(
    exc: ValidationError, root: type[BaseModel], source: SourceMap, file: str, *, base: Path_ = ()
) -> list[Problem]:
    """Convert every error in ``exc`` into a :class:`Problem` at the right line and column."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc: Path_ = base + tuple(error["loc"])
        if any(loc[:n] in source.reported for n in range(1, len(loc) + 1)):
            continue  # the reader reported this value already (and replaced it)
        kind = error["type"]
        if loc and loc[-1] == "[key]":
            # A bad mapping key (e.g. a parameter name): point at the key itself.
            line, col = source.locate(loc[:-1], key=True)
            problems.append(Problem(file, line, col, dotted(loc[:-2]), f"key {_message(error)}"))
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            line, col = source.locate(loc, key=True)
            known = _fields_at(root, tuple(error["loc"])[:-1])
            hint = ""
            close = get_close_matches(key, known, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
            elif known:
                hint = f" (allowed: {', '.join(known)})"
            problems.append(Problem(file, line, col, dotted(loc[:-1]), f"unknown key '{key}'{hint}"))
            continue
        if kind == "missing":
            line, col = source.locate(loc[:-1])
            problems.append(Problem(file, line, col, dotted(loc[:-1]), f"missing required key '{loc[-1]}'"))
            continue
        line, col = source.locate(loc)
        problems.append(Problem(file, line, col, dotted(loc), _message(error)))
    return problems


_PATTERN_WORDS = {
    "^[a-z0-9][a-z0-9-]*$": "use lowercase letters, digits and hyphens",
    "^[a-z][a-z0-9_]*$": "use lowercase letters, digits and underscores",
    "^[a-z_][a-z0-9_]*$": "use lowercase letters, digits and underscores",
    r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$": "write package.module:function",
}


def _message(error: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "")
        return f"expected {expected}, got {value!r}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"{value!r} does not match {pattern} ({_PATTERN_WORDS.get(pattern, 'see bcm schema')})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("string_type", "int_type", "int_parsing", "bool_type", "bool_parsing", "float_type"):
        wanted = {"string": "a string", "int": "an integer", "bool": "true or false", "float": "a number"}
        noun = wanted[kind.split("_")[0]]
        return f"expected {noun}, got {value!r}"
    if kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        noun = "a list" if kind == "list_type" else "a mapping"
        return f"expected {noun}, got {value!r}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "date_from_datetime_parsing" or kind.startswith("date_"):
        return f"expected a date like 2026-05-01, got {value!r}"
    return f"{error['msg']} (got {value!r})"


def _fields_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The allowed keys of the model found by walking ``loc`` from ``root``."""
    annotation: Any = root
    parts = list(loc)
    while True:
        annotation = _unwrap(annotation)
        if not parts:
            break
        part = parts.pop(0)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) or next(
                (f for f in annotation.model_fields.values() if f.alias == part), None
            )
            if field is None:
                return []
            annotation = field.annotation
        elif origin is list:
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional so the walk sees the model, list or dict inside."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation
