"""A runbook's targets as a run of it is measured: its own, else the tightest of its services' BIA."""

from __future__ import annotations

from bcm.spec.catalog import Catalog
from bcm.spec.library import LoadedRunbook
from bcm.spec.summary import effective_targets
from bcm.targets import RunTargets

__all__ = ["runbook_targets"]


def runbook_targets(loaded: LoadedRunbook, catalog: Catalog) -> RunTargets:
    """A runbook's effective targets (its own, else the tightest of its services' BIA) and cadence.

    This is what a run of the runbook is measured against; the engine stores it when a run starts.
    """
    found = effective_targets(loaded.runbook, catalog)
    return RunTargets(rto=found.rto, rpo=found.rpo, mtpd=found.mtpd, cadence=loaded.runbook.communication.cadence)
