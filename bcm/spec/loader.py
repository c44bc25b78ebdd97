"""The names ``bcm.spec.loader`` had before it was split, for the modules that import them here.

Loading is now in :mod:`bcm.spec.reading` (files), :mod:`bcm.spec.catalog`,
:mod:`bcm.spec.checks` and :mod:`bcm.spec.library`; new code imports from :mod:`bcm.spec`.
"""

from bcm.spec.catalog import Catalog, find_catalog, load_catalog
from bcm.spec.library import (
    Library,
    LoadedRunbook,
    load_library,
    load_one,
    load_runbook,
    load_runbook_text,
    runbook_files,
    validate,
)
from bcm.spec.reading import read_text

__all__ = [
    "Catalog",
    "Library",
    "LoadedRunbook",
    "find_catalog",
    "load_catalog",
    "load_library",
    "load_one",
    "load_runbook",
    "load_runbook_text",
    "read_text",
    "runbook_files",
    "validate",
]
