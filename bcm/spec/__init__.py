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
from bcm.spec.models import Runbook, Service, Step
from bcm.spec.problems import Problem

__all__ = [
    "Catalog",
    "Library",
    "LoadedRunbook",
    "Problem",
    "Runbook",
    "Service",
    "Step",
    "load_catalog",
    "load_library",
    "load_one",
    "load_runbook",
    "load_runbook_text",
    "validate",
]
