"""bcm's words, defined once: run and step statuses, modes, milestones, severities, message kinds.

Each is a ``Literal`` type (for mypy and pydantic) with the tuple of its values and the groups the
code reasons with (finished, active, ...). Every other module imports them from here; the
transition tables between statuses are in ``bcm.engine.machine``. The model is StackStorm
orquesta's ``statuses.py``.
"""

from __future__ import annotations

from typing import Literal, get_args

# -- runs ---------------------------------------------------------------------------------------

RunStatus = Literal["running", "waiting", "succeeded", "failed", "cancelled", "recorded"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
#: A runner is working on the run (or was, until it died: then the run is shown as interrupted).
ACTIVE_RUN_STATUSES: frozenset[RunStatus] = frozenset({"running", "waiting"})
#: The run is over: nothing more will happen unless it is resumed (failed, cancelled).
FINISHED_RUN_STATUSES: frozenset[RunStatus] = frozenset({"succeeded", "failed", "cancelled", "recorded"})
#: Shown, never stored: the run says running or waiting but its runner is gone.
INTERRUPTED = "interrupted"
#: The status of a disruption recorded after the fact (``bcm incident record|import``): it was not
#: run by bcm, so it never moves.
RECORDED: RunStatus = "recorded"

RunMode = Literal["real", "exercise", "dry-run"]
RUN_MODES: tuple[RunMode, ...] = get_args(RunMode)
#: The modes a person runs a runbook in (a dry run records nothing); figures keep them apart.
ExecutionMode = Literal["real", "exercise"]
EXECUTION_MODES: tuple[ExecutionMode, ...] = get_args(ExecutionMode)

RunSource = Literal["engine", "record", "import"]
RUN_SOURCES: tuple[RunSource, ...] = get_args(RunSource)

# -- steps --------------------------------------------------------------------------------------

StepStatus = Literal[
    "pending", "running", "waiting", "succeeded", "rejected", "failed", "timed_out", "skipped", "cancelled"
]
STEP_STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)
#: Finished: the step will not change again in this run (a resumed run may re-run failures).
FINISHED_STEP_STATUSES: frozenset[StepStatus] = frozenset(
    {"succeeded", "rejected", "failed", "timed_out", "skipped", "cancelled"}
)
#: Finished well enough for the steps that wait on it, whatever ``on_failure`` says. A rejected
#: approval is an answer, not a failure: what follows decides with ``when``.
DONE_OK_STEP_STATUSES: frozenset[StepStatus] = frozenset({"succeeded", "rejected", "skipped"})
#: Failures: they stop the run unless the step says ``on_failure: continue``.
FAILED_STEP_STATUSES: frozenset[StepStatus] = frozenset({"failed", "timed_out"})
#: A step's ``marks`` milestone is recorded when it ends in one of these. A rejected approval is
#: still a decision taken at that moment (an approve step marks ``acknowledged`` in the library).
MARKING_STEP_STATUSES: frozenset[StepStatus] = frozenset({"succeeded", "rejected"})

StepKind = Literal["run", "http", "call", "notify", "approve", "manual", "wait"]
STEP_KINDS: tuple[StepKind, ...] = get_args(StepKind)

# -- runbooks -----------------------------------------------------------------------------------

Phase = Literal["prevention", "communication", "response", "recovery"]
PHASES: tuple[Phase, ...] = get_args(Phase)
#: The phases an incident or exercise run executes (prevention runs only as readiness checks).
INCIDENT_PHASES: tuple[Phase, ...] = ("communication", "response", "recovery")

Severity = Literal["sev1", "sev2", "sev3", "sev4"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

# -- the timeline -------------------------------------------------------------------------------

Milestone = Literal[
    "impact_started",
    "detected",
    "acknowledged",
    "declared",
    "mitigated",
    "recovered",
    "resolved",
    "stood_down",
    # Deadline clocks (bcm.obligations) start at awareness or a decision, not at impact:
    "aware",  # the organisation became aware of the incident (GDPR Art. 33, NIS2 Art. 23, DORA, AI Act Art. 73)
    "classified_major",  # the incident was classified as major (DORA Art. 18): the initial report is due in 4 hours
    "materiality_determined",  # the incident was determined to be material (SEC Form 8-K Item 1.05)
    "received",  # a report or request reached the programme: a researcher's report, a law-enforcement request
    "startex",
    "inject_delivered",
    "endex",
]
MILESTONES: tuple[Milestone, ...] = get_args(Milestone)
#: Milestones only exercises have.
EXERCISE_MILESTONES: tuple[Milestone, ...] = ("startex", "inject_delivered", "endex")
#: The milestones of a disruption (real or exercised): what the recovery-time figures are made of.
DISRUPTION_MILESTONES: tuple[Milestone, ...] = tuple(m for m in MILESTONES if m not in EXERCISE_MILESTONES)
#: (earlier, later): times that break one of these are refused (``bcm incident``, ``bcm mark``).
#: Declared may come before impact (a pre-emptive declaration), so it is only checked against the
#: end milestones.
MILESTONE_ORDER: tuple[tuple[Milestone, Milestone], ...] = (
    ("impact_started", "detected"),
    ("impact_started", "acknowledged"),
    ("impact_started", "mitigated"),
    ("impact_started", "recovered"),
    ("impact_started", "resolved"),
    ("impact_started", "stood_down"),
    ("detected", "acknowledged"),
    ("declared", "recovered"),
    ("declared", "resolved"),
    ("declared", "stood_down"),
    ("recovered", "resolved"),
    ("resolved", "stood_down"),
)
#: Milestones that start deadline clocks (``runbooks/catalog/obligations.yaml``). They are disruption
#: milestones too, but no recovery-time figure is made of them. ``aware`` is one per run: a regime
#: that counts from awareness of something narrower (GDPR: of a personal-data breach) is counted
#: from it too, early rather than late. None is in MILESTONE_ORDER: when ``aware`` is recorded as
#: the narrower awareness it may well follow ``classified_major``.
CLOCK_MILESTONES: tuple[Milestone, ...] = ("aware", "classified_major", "materiality_determined", "received")
#: Milestones ``bcm run`` takes at trigger time (``--impact-started``, ``--detected``).
TRIGGER_MILESTONES: tuple[Milestone, ...] = ("impact_started", "detected")

# -- obligations (deadline clocks) -------------------------------------------------------------

#: A deadline clock: running (open), fulfilled by its due time (met), or past it (missed: not
#: fulfilled in time, whether it is fulfilled late or not yet).
ObligationStatus = Literal["open", "met", "missed"]
OBLIGATION_STATUSES: tuple[ObligationStatus, ...] = get_args(ObligationStatus)

# -- messages -----------------------------------------------------------------------------------

MessageKind = Literal[
    "open_channel",  # open the incident channel (real mode): topic, stakeholders invited
    "board",  # post and pin the status board
    "board_update",  # edit the status board in place
    "thread",  # a step update in the board's thread
    "notify",  # a notify step: a stakeholder update to roles
    "approval_request",  # an approve/manual step: buttons for the role
    "decision",  # edit an approval request to say who decided
    "reminder",  # the cadence passed without a stakeholder update
    "inject",  # an exercise inject (MSEL): to the exercise channel, or to the role's members directly
]
MESSAGE_KINDS: tuple[MessageKind, ...] = get_args(MessageKind)
#: Message kinds that count as stakeholder updates in the communication figures.
UPDATE_KINDS: tuple[MessageKind, ...] = ("notify",)

# -- exercises (HSEEP) --------------------------------------------------------------------------

ExerciseType = Literal["tabletop", "drill", "functional", "full-scale", "game-day"]
EXERCISE_TYPES: tuple[ExerciseType, ...] = get_args(ExerciseType)
#: HSEEP's discussion-based types; the others are operations-based.
DISCUSSION_BASED: frozenset[ExerciseType] = frozenset({"tabletop"})

MissionArea = Literal["prevention", "protection", "mitigation", "response", "recovery"]
MISSION_AREAS: tuple[MissionArea, ...] = get_args(MissionArea)

#: How an inject reaches its recipient: the exercise's Slack channel, a direct message to each
#: holder of the recipient role, or the controller's console (printed by ``bcm exercise run``).
InjectDelivery = Literal["channel", "dm", "console"]
INJECT_DELIVERIES: tuple[InjectDelivery, ...] = get_args(InjectDelivery)

InjectStatus = Literal["delivered", "skipped"]
INJECT_STATUSES: tuple[InjectStatus, ...] = get_args(InjectStatus)

#: HSEEP performance ratings, best first.
Rating = Literal["P", "S", "M", "U"]
RATINGS: tuple[Rating, ...] = get_args(Rating)
RATING_MEANINGS: dict[Rating, str] = {
    "P": "performed without challenges",
    "S": "performed with some challenges",
    "M": "performed with major challenges",
    "U": "unable to be performed",
}

ObservationKind = Literal["strength", "improvement", "note", "hotwash"]
OBSERVATION_KINDS: tuple[ObservationKind, ...] = get_args(ObservationKind)

# -- corrective actions -------------------------------------------------------------------------

ActionStatus = Literal["open", "in_progress", "done", "verified"]
ACTION_STATUSES: tuple[ActionStatus, ...] = get_args(ActionStatus)
#: Still to be done: these are flagged when past their due date.
OPEN_ACTION_STATUSES: frozenset[ActionStatus] = frozenset({"open", "in_progress"})

#: HSEEP's capability elements: where a corrective action changes the organisation.
CapabilityElement = Literal["planning", "organisation", "equipment", "training", "exercises"]
CAPABILITY_ELEMENTS: tuple[CapabilityElement, ...] = get_args(CapabilityElement)
