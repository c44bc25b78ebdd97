"""Runbook format version 1: models, loading with source positions, cross-reference checks."""

from bcm.spec.loader import (
    Catalog,
    Library,
    LoadedRunbook,
    load_catalog,
    load_library,
    load_one,
    load_runbook,
    load_runbook_text,
    validate,
)
from bcm.spec.models import MILESTONES, PHASES, STEP_KINDS, Runbook, Service, Step
from bcm.spec.problems import BcmError, InputError, Problem, SpecError

__all__ = [
    "MILESTONES",
    "PHASES",
    "STEP_KINDS",
    "BcmError",
    "Catalog",
    "InputError",
    "Library",
    "LoadedRunbook",
    "Problem",
    "Runbook",
    "Service",
    "SpecError",
    "Step",
    "load_catalog",
    "load_library",
    "load_one",
    "load_runbook",
    "load_runbook_text",
    "validate",
]
