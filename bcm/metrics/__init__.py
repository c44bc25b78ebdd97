"""Recovery-time figures computed from run timelines: pure functions, no I/O, no database.

The store and the CLI build :class:`Timeline` values; this module turns them into figures for one
run (:func:`run_figures`) and into per-service or per-runbook summaries (:func:`summarise`,
:func:`slowest_steps`).

"MTTR" is ambiguous (repair, recover, resolve, respond), so no figure here is called that. Each
figure is named for what it measures:

=====================  ==========================  ============================================
figure                 field                       from → to
=====================  ==========================  ============================================
time to detect         ``ttd``                     impact_started → detected
time to acknowledge    ``tta``                     detected → acknowledged
time to mitigate       ``time_to_mitigate``        impact_started → mitigated
time to recover        ``ttr``                     impact_started → recovered (MBCO reached);
                                                   from declared when impact_started was not
                                                   recorded (``ttr_basis`` says which)
time to resolve        ``time_to_resolve``         same start as ``ttr`` → resolved (full
                                                   service)
RTO attained           ``rto_attained``            ``ttr`` ≤ RTO; ``rto_margin`` = RTO - ``ttr``
                                                   (negative: missed by that much)
MTPD breached          ``mtpd_breached``           ``ttr`` > MTPD
RPO attained           ``rpo_attained``            known data-loss window ≤ RPO
phase duration         ``phase_durations``         first start of a step in the phase → last end
step duration          ``step_durations``          step start → step end (first start → last end
                                                   when a step was recorded more than once)
waiting for people     ``waiting_for_people``      sum of the steps' ``waited_s``
communication on time  ``communication``           an update is on time when the gap since the
                                                   previous update (for the first: since
                                                   declared, else the run start) is ≤ the cadence
=====================  ==========================  ============================================

Rules that hold for every figure:

- Durations are computed on absolute instants (every time is converted to UTC first), so runs
  that cross a daylight-saving change or mix UTC offsets are measured correctly.
- A missing milestone makes the figure unknown with a reason, e.g. ``no 'detected' milestone
  recorded``; it never turns into a made-up number.
- Milestones out of order (an interval that would be negative) are listed in
  :attr:`RunFigures.problems` with both times, and the figure they affect is unknown with the
  same text as its reason (``out of order: ...``).
- A milestone recorded more than once counts from its earliest time.
- Exercise time: a run played at ``bcm exercise run --speed N`` (:attr:`Timeline.speed`) counts
  every duration measured on it N times its wall-clock length (milestone to milestone, steps and
  phases, waits for people, and the gaps between updates that are compared with the cadence), so
  its figures and its RTO and MTPD verdicts are in exercise time, as its after-action report's
  are. Times themselves, and the windows that select runs, stay on the wall clock. Real runs and
  recorded disruptions have speed 1.

Summaries never mix real disruptions with exercises, and never report a bare mean: a
:class:`Distribution` has the count, the median, the 90th percentile and the maximum.

- **median**: the middle value of the sorted values; for an even count, the average of the two
  middle values.
- **p90**: nearest rank — the value at rank ⌈0.9 * n⌉ (1-based) of the sorted values, so it is
  always one of the observed values.
"""

from bcm.metrics.figures import (
    EXERCISE_TIME_NOTE,
    FIGURES,
    SUMMARISED_FIGURES,
    CommunicationFigures,
    Figure,
    FigureDefinition,
    RunFigures,
    run_figures,
)
from bcm.metrics.summaries import Distribution, GroupSummary, StepStat, distribution, slowest_steps, summarise
from bcm.metrics.timeline import EXERCISE_MILESTONES, MILESTONES, Mark, Mode, StepTiming, Timeline

__all__ = [
    "EXERCISE_MILESTONES",
    "EXERCISE_TIME_NOTE",
    "FIGURES",
    "MILESTONES",
    "SUMMARISED_FIGURES",
    "CommunicationFigures",
    "Distribution",
    "Figure",
    "FigureDefinition",
    "GroupSummary",
    "Mark",
    "Mode",
    "RunFigures",
    "StepStat",
    "StepTiming",
    "Timeline",
    "distribution",
    "run_figures",
    "slowest_steps",
    "summarise",
]
