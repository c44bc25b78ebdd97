"""What a run is measured against: RTO, RPO, MTPD, the data-loss window and the update cadence.

A plain value, at the base of the layers: the spec computes a runbook's targets
(``bcm.spec.targets.runbook_targets``), the store keeps them with each run, the figures judge the
run against them, and none of these needs to import another for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["RunTargets"]


@dataclass(frozen=True)
class RunTargets:
    """The targets a run is measured against, fixed when the run is recorded.

    Attributes:
        rto: recovery time objective.
        rpo: recovery point objective.
        mtpd: maximum tolerable period of disruption.
        data_loss: the data-loss window, when known (recorded disruptions may state it).
        cadence: the promised interval between stakeholder status updates.
    """

    rto: timedelta | None = None
    rpo: timedelta | None = None
    mtpd: timedelta | None = None
    data_loss: timedelta | None = None
    cadence: timedelta | None = None

    @property
    def empty(self) -> bool:
        """Whether no target at all is set (runs recorded before targets were stored)."""
        return all(value is None for value in (self.rto, self.rpo, self.mtpd, self.data_loss, self.cadence))

    def to_json(self) -> dict[str, float | None]:
        """The targets in seconds, as stored and audited."""
        return {
            "rto_s": _seconds(self.rto),
            "rpo_s": _seconds(self.rpo),
            "mtpd_s": _seconds(self.mtpd),
            "data_loss_s": _seconds(self.data_loss),
            "cadence_s": _seconds(self.cadence),
        }

    @classmethod
    def from_seconds(
        cls,
        rto_s: float | None,
        rpo_s: float | None,
        mtpd_s: float | None,
        data_loss_s: float | None,
        cadence_s: float | None,
    ) -> RunTargets:
        """Targets from stored seconds (``None`` stays unknown)."""
        return cls(
            rto=_delta(rto_s),
            rpo=_delta(rpo_s),
            mtpd=_delta(mtpd_s),
            data_loss=_delta(data_loss_s),
            cadence=_delta(cadence_s),
        )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
