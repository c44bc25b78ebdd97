"""Runbook format version 1: models, loading with source positions, cross-reference checks.

Modules: ``models`` (the format), ``yamlsource`` and ``reading`` (files to YAML documents with a
source map), ``catalog`` (services, roles and obligations), ``obligations`` and
``obligation_catalog`` (the obligations catalog's models and ``obligations.yaml`` read with its
checks), ``validation`` (model errors as problems), ``outline`` and ``checks`` (syntax, semantics,
expressions: every problem at once; a runbook's obligations and ``fulfils`` in
``obligation_checks``), ``graph`` (the step graph), ``library`` (finding and loading runbooks),
``summary``, ``params``, ``schema``.
"""

from bcm.spec.catalog import Catalog, load_catalog
from bcm.spec.library import Library, LoadedRunbook, load_library, load_one, load_runbook, load_runbook_text, validate
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
