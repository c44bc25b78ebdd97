"""Playing an exercise: its runbook run in exercise mode, with the MSEL delivered on the exercise clock.

An exercise run is an ordinary run of the exercise's runbook in mode ``exercise`` (so it never
counts among real disruptions), with the exercise's parameters, plus what HSEEP adds:

- **STARTEX** is the run's start, recorded with the exercise (``store.start_exercise``) before a
  step runs; **ENDEX** is the run's end (``played out``) or the moment a person ends it with
  ``bcm exercise end`` (:func:`end_exercise`): the runner then stops (``Runner.stop``): no step
  starts any more, waiting person steps are released and what is left is cancelled.
- Each **inject** is delivered at STARTEX + its offset / speed (:class:`~bcm.exercises.clock.ExerciseClock`),
  prefixed ``[EXERCISE]`` and only to exercise destinations: ``channel`` the exercise channel,
  ``dm`` each member of the recipient role directly, ``console`` the controller's terminal (``bcm
  exercise run`` prints it from the store). Slack messages go through the run's notifier (the
  durable outbox, key ``RUN/inject/N``), and every inject is recorded once (``store.record_inject``),
  so a resumed run never delivers one twice, and one whose time passed while the runner was dead
  is delivered when the run is resumed, late, with its true due time.
- A **contingency** inject is sent only when its condition holds at its due time: ``unless`` a step
  succeeded (or a milestone was reached) by then, or ``if`` it was; otherwise it is recorded
  skipped with the reason.
- With **auto-respond**, the exercise's scripted responses answer person steps: ``after`` (exercise
  time) from the moment the step could start (the latest end among the steps it needs, or STARTEX),
  never before it waits, through :func:`bcm.engine.approvals.decide` as ``bcm approve`` would, at
  exactly that time; the step is woken at once. So the time bcm takes to hand over from one step to
  the next (a fraction of a second, minutes of exercise time at --speed 600) does not pile up in
  the answers' times.

One thread beside the runner (:class:`ExercisePlay`) does the injects, the responses and the ENDEX
watch: on each look it reads the store afresh and handles every event due (scripted answers and
injects) strictly in exercise-time order, so an inject's condition sees every answer scripted before
its time. It stops when the run ends or the runner is interrupted. Injects still to come at ENDEX
are recorded skipped, so the record says what happened to every inject of the MSEL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bcm import clock
from bcm.clock import Clock
from bcm.comms.messages import context, section
from bcm.comms.notifier import Message, exercise_text
from bcm.durations import format_duration
from bcm.engine.approvals import decide
from bcm.engine.context import RunContext, StepState
from bcm.engine.liveness import ACTIVE, assess
from bcm.engine.plan import Plan
from bcm.engine.runner import Runner, RunRequest, RunResult, start_run
from bcm.errors import ApprovalRefused, BcmError, InputError, TemplateRenderError
from bcm.exercises.clock import ExerciseClock
from bcm.exercises.library import LoadedExercise, load_exercise
from bcm.exercises.models import Happened, Inject, Response
from bcm.spec import load_one
from bcm.spec.params import resolve_parameters
from bcm.store import ApprovalRecord, ExerciseRunRecord, InjectRecord, RunRecord, StepRecord, Store
from bcm.templates import escape_mrkdwn, render
from bcm.vocabulary import FINISHED_STEP_STATUSES

#: What ENDEX records when the run ran to its end.
PLAYED_OUT = "played out"
#: How often the play looks in the store for ENDEX and for steps a scripted response answers, in seconds.
CHECK_S = 0.25
#: A step with a scripted answer that could start less than this long ago but does not wait yet is
#: about to: the play looks again every ``SOON_S`` seconds meanwhile, so it answers it on time.
STARTING = timedelta(seconds=2)
SOON_S = 0.02
#: After an unexpected error (the store busy, say) the play waits this long before it tries again.
RETRY_S = 1.0
#: Decisions that mean a person step's work was done.
_DONE_DECISIONS = frozenset({"approved", "done"})


@dataclass(frozen=True)
class ExerciseStart:
    """An exercise run ready to play: new (STARTEX just recorded) or resumed."""

    record: RunRecord
    request: RunRequest
    played: ExerciseRunRecord
    resume: bool


def exercise_parameters(loaded: LoadedExercise) -> dict[str, object]:
    """The exercise's parameters, typed and completed with the runbook's defaults.

    Raises:
        InputError: the runbook does not take them (the library check says where).
    """
    given = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in loaded.exercise.parameters.items()
    }
    values, problems = resolve_parameters(loaded.runbook.runbook, given)
    if problems:
        raise InputError(f"exercise {loaded.exercise.id}: " + "; ".join(problems))
    return values


def begin_exercise(
    store: Store,
    loaded: LoadedExercise,
    *,
    speed: float = 1.0,
    auto_respond: bool = False,
    triggered_by: str = "unknown",
    run_id: str | None = None,
    now: Clock = clock.now,
) -> ExerciseStart:
    """Record a new run of the exercise's runbook (mode ``exercise``) and mark STARTEX at its start.

    Raises:
        InputError: ``speed`` is not above 0, or the runbook does not take the exercise's parameters.
    """
    if not speed > 0:
        raise InputError(f"--speed {speed:g}: give a number above 0 (60: an hour of exercise time in a minute)")
    request = RunRequest(
        loaded=loaded.runbook,
        catalog=loaded.catalog,
        params=exercise_parameters(loaded),
        mode="exercise",
        triggered_by=triggered_by,
        run_id=run_id,
    )
    record = start_run(store, request, now=now)
    played = _played(record, loaded, speed=speed, auto_respond=auto_respond)
    store.start_exercise(played)
    return ExerciseStart(record, request, played, resume=False)


def check_resumable(
    store: Store, loaded: LoadedExercise, run_ref: str, *, now: Clock = clock.now
) -> tuple[RunRecord, ExerciseRunRecord | None]:
    """The run ``run_ref`` and its exercise record, when it is an interrupted run of this exercise.

    Raises:
        InputError: the run is not a run of this exercise, has ended (ENDEX, or it succeeded), its
            runner is still alive, or the exercise or runbook changed since it started.
    """
    record = store.get_run(run_ref)
    played = store.get_exercise_run(record.id)
    exercise = loaded.exercise
    short = record.short_id
    if record.mode != "exercise" or record.runbook_id != loaded.runbook.runbook.id:
        raise InputError(f"run {short} is {_a(record.mode)} run of {record.runbook_id}, not of exercise {exercise.id}")
    if played is not None and played.exercise_id != exercise.id:
        raise InputError(f"run {short} plays exercise {played.exercise_id}, not {exercise.id}")
    if played is not None and played.endex_at is not None:
        raise InputError(f"exercise run {short} has ended: ENDEX at {played.endex_at:%Y-%m-%d %H:%M:%S} UTC")
    if record.status == "succeeded":
        raise InputError(f"exercise run {short} finished already ({record.status}): nothing to resume")
    if (played is not None and played.exercise_hash != loaded.sha256) or record.runbook_hash != loaded.runbook.sha256:
        raise InputError(
            f"exercise {exercise.id} or runbook {record.runbook_id} changed since run {short} started; going on "
            "would mix two versions: restore the files (git) or start a new exercise run"
        )
    liveness = assess(record, now=now())
    if liveness.state in ("alive", "stalled"):
        raise InputError(f"exercise run {short} still has a runner ({liveness.why or 'alive'}): nothing to resume")
    return record, played


def resume_exercise(
    store: Store,
    loaded: LoadedExercise,
    run_ref: str,
    *,
    speed: float = 1.0,
    auto_respond: bool = False,
    now: Clock = clock.now,
) -> ExerciseStart:
    """Make ready to go on with an exercise run whose runner died: same clock, same responses.

    ``speed`` and ``auto_respond`` are only used when the run died before its STARTEX was recorded;
    otherwise the run keeps the ones it started with.

    Raises:
        InputError: see :func:`check_resumable`.
    """
    record, played = check_resumable(store, loaded, run_ref, now=now)
    if played is None:  # the runner died between recording the run and STARTEX
        played = _played(record, loaded, speed=speed, auto_respond=auto_respond)
        store.start_exercise(played)
    request = RunRequest(
        loaded=loaded.runbook,
        catalog=loaded.catalog,
        params=dict(record.parameters),
        mode=record.mode,
        triggered_by=record.triggered_by,
        run_id=record.id,
    )
    return ExerciseStart(record, request, played, resume=True)


def _a(mode: str) -> str:
    """``a real``, ``an exercise``: a run's mode with its article."""
    return f"{'an' if mode[:1] in tuple('aeiou') else 'a'} {mode}"


def _played(record: RunRecord, loaded: LoadedExercise, *, speed: float, auto_respond: bool) -> ExerciseRunRecord:
    return ExerciseRunRecord(
        run_id=record.id,
        exercise_id=loaded.exercise.id,
        exercise_title=loaded.exercise.title,
        exercise_hash=loaded.sha256,
        exercise_path=str(loaded.path),
        speed=speed,
        auto_respond=auto_respond,
        startex_at=record.started_at,
        endex_at=None,
        ended_by=None,
    )


class ExercisePlay:
    """Plays one exercise run: the runner, and beside it a thread for injects, responses and ENDEX.

    Args:
        runner: the run of the exercise's runbook (any executor: Prefect tasks or threads).
        loaded: the exercise.
        played: the run's exercise record (STARTEX, speed, auto-respond).
        library_root: the runbook library (scripted responses are checked like ``bcm approve``).
        now: the clock (tests pass a ``ManualClock``).
        check_s: how often to look for ENDEX and for steps to answer, and the longest sleep.
        report: where to say what was delivered, skipped or answered (the flow's log).
        warn: where to say what went wrong (default: ``report``).
    """

    def __init__(
        self,
        runner: Runner,
        loaded: LoadedExercise,
        played: ExerciseRunRecord,
        *,
        library_root: Path,
        now: Clock = clock.now,
        check_s: float = CHECK_S,
        report: Callable[[str], None] = lambda _: None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.notifier = runner.notifier
        self.loaded = loaded
        self.played = played
        self.run_id = played.run_id
        self.clock = ExerciseClock(played.startex_at, played.speed)
        self.library_root = library_root
        self.now = now
        self.check_s = check_s
        self.report = report
        self.warn = warn or report
        recorded = {i.number for i in self.store.get_injects(self.run_id)}
        self._pending = [i for i in loaded.exercise.injects() if i.number not in recorded]
        self._responses: dict[str, Response] = (
            {r.step: r for r in loaded.exercise.responses} if played.auto_respond else {}
        )
        self._marked = any(m.milestone == "inject_delivered" for m in self.store.get_marks(self.run_id))
        self._endex_seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"bcm-exercise-{self.run_id[:8]}")

    # ------------------------------------------------------------------ the run

    def play(self, *, resume: bool = False, take_over: bool = False) -> RunResult:
        """Run the runbook with the MSEL beside it; record ENDEX when the run ends; return how it ended.

        When the runner is interrupted (an exception, a signal), the thread stops and nothing more is
        recorded: the run is resumable, ENDEX still to come.
        """
        self._thread.start()
        try:
            result = self.runner.execute(resume=resume, take_over=take_over)
        finally:
            self._stop.set()
            self._thread.join(10)
        self._close()
        return result

    def _close(self) -> None:
        """ENDEX (played out, unless a person ended it), then the injects due by then delivered and the
        rest recorded skipped."""
        played = self.store.get_exercise_run(self.run_id)
        if played is not None and played.endex_at is None:
            run = self.store.get_run(self.run_id)
            self.store.end_exercise(self.run_id, run.ended_at or self.now(), PLAYED_OUT)
            played = self.store.get_exercise_run(self.run_id)
        assert played is not None and played.endex_at is not None
        self._handle_due(until=played.endex_at, answers=False)  # the run has ended: no step waits any more
        skip_remaining(self.store, self._pending, played, at=self.now())
        self._pending = []

    # ------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch_endex()
                pause = self.check_s if self._endex_seen else self._handle_due(until=self.now())
            except Exception as exc:  # the store busy, say: say so and try again; the run goes on
                self.warn(f"exercise play: {type(exc).__name__}: {exc}; trying again")
                pause = max(self.check_s, RETRY_S)
            self._stop.wait(pause)

    def _handle_due(self, *, until: datetime, answers: bool = True) -> float:
        """Answer and deliver everything due by ``until``, strictly in exercise-time order; return how
        long to sleep before the next look (the next event, or ``check_s`` at most).

        The store is read afresh on every look, so an inject's condition sees every answer scripted
        before its time; an answer goes before an inject due at the same moment.
        """
        events: list[tuple[datetime, int, int, Inject | _Answer]] = [
            (self.clock.due(inject.at), 1, n, inject) for n, inject in enumerate(self._pending)
        ]
        starting = False
        if answers:
            scripted, starting = self._answers(until)
            events += [(answer.due, 0, n, answer) for n, answer in enumerate(scripted)]
        events.sort(key=lambda event: event[:3])
        longest = min(self.check_s, SOON_S) if starting else self.check_s
        for due, _, _, what in events:
            if due > until:
                return max(0.0, min(longest, (due - until).total_seconds()))
            if isinstance(what, _Answer):
                self._answer(what)
                longest = min(self.check_s, SOON_S)  # the steps after it are about to wait: look again soon
            else:
                self._deliver(what, due)
                self._pending.remove(what)
        return longest

    def _watch_endex(self) -> None:
        """A person ended the exercise (``bcm exercise end``): stop the run."""
        if self._endex_seen:
            return
        played = self.store.get_exercise_run(self.run_id)
        if played is None or played.endex_at is None:
            return
        self._endex_seen = True
        reason = f"ENDEX: {played.ended_by} ended the exercise"
        self.report(reason)
        self.runner.stop(reason)

    # ------------------------------------------------------------------ injects

    def _deliver(self, inject: Inject, due: datetime) -> None:
        """Deliver ``inject`` (or skip it when its contingency does not hold) and record it, once."""
        at = self.now()
        text, slack_text = self._render(inject)
        reason: str | None = None
        if inject.contingency is not None:
            happened = self._happened(inject.contingency.event, due)
            if not inject.contingency.holds(happened):
                reason = f"{inject.contingency.label}: it had {'' if happened else 'not '}happened"
        if reason is None and inject.delivery != "console":
            self.notifier.send(self._message(inject, slack_text))
        record = InjectRecord(
            run_id=self.run_id,
            number=inject.number,
            status="delivered" if reason is None else "skipped",
            due_at=due,
            at=at,
            delivery=inject.delivery,
            recipient=inject.to,
            message=text,
            reason=reason,
        )
        if not self.store.record_inject(record):
            return  # another runner of this run recorded it: the outbox key kept Slack from a second copy
        late = (at - due).total_seconds()
        self.report(
            f"inject {inject.number} {record.status} ({inject.delivery} to {inject.to})"
            + (f": {reason}" if reason else "")
            + (f", {late:.0f}s late" if late >= 1 else "")
        )
        if reason is None and not self._marked:
            self.store.add_mark(self.run_id, "inject_delivered", at, f"inject:{inject.number}")
            self._marked = True

    def _render(self, inject: Inject) -> tuple[str, str]:
        """The inject's message as recorded (plain) and as sent to Slack (values escaped), both prefixed."""
        texts: list[str] = []
        for escape in (None, escape_mrkdwn):
            try:
                rendered = render(inject.message, self._context(inject, escape)).strip()
            except TemplateRenderError as exc:
                rendered = f"{inject.message.strip()} (template failed: {exc.reason})"
            texts.append(exercise_text(rendered, exercise=True))
        return texts[0], texts[1]

    def _context(self, inject: Inject, escape: Callable[[str], str] | None) -> dict[str, object]:
        """What an inject message may use: exercise, run, params, inject, steps (outputs so far), ..."""
        ctx = self.runner.ctx
        steps = {p.id: StepState() for p in self.runner.plan.steps}
        for record in self.store.get_steps(self.run_id):
            if record.step_id in steps:
                steps[record.step_id] = StepState(status=record.status, output=record.output)
        now = RunContext(loaded=ctx.loaded, catalog=ctx.catalog, run=ctx.run, params=ctx.params, steps=steps)
        exercise = self.loaded.exercise
        return {
            **now.template_context(escape=escape),
            "exercise": {"id": exercise.id, "title": exercise.title},
            "inject": {"number": inject.number, "to": inject.to},
        }

    def _message(self, inject: Inject, text: str) -> Message:
        exercise = self.loaded.exercise
        how = "direct message" if inject.delivery == "dm" else "exercise channel"
        return Message(
            key=f"{self.run_id}/inject/{inject.number}",
            run_id=self.run_id,
            kind="inject",
            text=text,
            to=(inject.to,),
            exercise=True,
            direct=inject.delivery == "dm",
            blocks=(
                section(text),
                context(
                    f"Inject {inject.number} · from {inject.from_} to {inject.to} ({how}) · {exercise.title} · "
                    f"run {self.run_id[:8]}"
                ),
            ),
        )

    def _happened(self, event: Happened, by: datetime) -> bool:
        """Whether the step succeeded (its person's decision counts from its time) or the milestone
        was reached, by ``by``."""
        if event.step is not None:
            approval = self.store.get_approval(self.run_id, event.step)
            if approval is not None and approval.decision in _DONE_DECISIONS and approval.at <= by:
                return True
            step = self.store.get_step(self.run_id, event.step)
            return step is not None and step.status == "succeeded" and step.ended_at is not None and step.ended_at <= by
        return any(m.milestone == event.milestone and m.at <= by for m in self.store.get_marks(self.run_id))

    # ------------------------------------------------------------------ scripted responses

    def _answers(self, now: datetime) -> tuple[list[_Answer], bool]:
        """The scripted answers of the steps that wait for one, each with its time (see :func:`_due`);
        and whether a step with a scripted answer could start a moment ago but is not waiting yet (the
        play then looks again soon, rather than in ``check_s``, to answer it on time)."""
        if not self._responses:
            return [], False
        steps = {s.step_id: s for s in self.store.get_steps(self.run_id)}
        decided = self.store.get_approvals(self.run_id)
        memo: dict[str, datetime | None] = {}
        answers: list[_Answer] = []
        starting = False
        for step_id, response in self._responses.items():
            record = steps.get(step_id)
            if record is None or record.status == "pending":
                ready = self._ready_at(step_id, steps, decided, memo)
                starting = starting or (ready is not None and now - ready < STARTING)
            elif record.status == "waiting" and record.started_at is not None and step_id not in decided:
                ready = self._ready_at(step_id, steps, decided, memo)
                answers.append(
                    _Answer(step_id, response, _due(record.started_at, ready, self.clock.wall(response.after)))
                )
        return answers, starting

    def _ready_at(
        self,
        step_id: str,
        steps: dict[str, StepRecord],
        decided: dict[str, ApprovalRecord],
        memo: dict[str, datetime | None],
    ) -> datetime | None:
        """When ``step_id`` could start: the latest end among its dependencies (a decision's time for a
        person step; a skipped step takes no time), or STARTEX; ``None`` when a dependency's end is unknown."""
        if step_id not in memo:
            ends: list[datetime | None] = []
            for need in self.runner.plan.get(step_id).needs:
                record = steps.get(need)
                if need in decided:
                    ends.append(decided[need].at)
                elif record is not None and record.status == "skipped":
                    ends.append(self._ready_at(need, steps, decided, memo))
                else:
                    ends.append(record.ended_at if record is not None else None)
            known = [end for end in ends if end is not None]
            memo[step_id] = max(known, default=self.played.startex_at) if len(known) == len(ends) else None
        return memo[step_id]

    def _answer(self, answer: _Answer) -> None:
        """Record the scripted answer at its time, as ``bcm approve`` would, and wake its step at once."""
        response = answer.response
        try:
            _, _, decision = decide(
                self.store,
                self.run_id,
                answer.step_id,
                who=response.by,
                approve=response.decision == "approve",
                note=response.note,
                library_root=self.library_root,
                now=_fixed(answer.due),  # the scripted time, however late this look came
            )
        except ApprovalRefused as exc:  # a person answered first, say
            del self._responses[answer.step_id]
            self.warn(f"scripted response to {answer.step_id} not recorded: {exc}")
            return
        del self._responses[answer.step_id]
        self.runner.decisions.wake(decision)  # the next step starts now, not at the run's next look
        offset = format_duration(self.clock.exercise_time(answer.due))
        self.report(f"scripted response at +{offset}: {response.by} {response.decision}d {answer.step_id}")


@dataclass(frozen=True)
class _Answer:
    """A scripted response due for a waiting step, and when (wall clock)."""

    step_id: str
    response: Response
    due: datetime


def _due(started: datetime, ready: datetime | None, after: timedelta) -> datetime:
    """When a scripted answer is due: ``after`` from the moment its step could start (``ready``), not
    from when bcm got round to starting it (at --speed 600 a hand-off of 0.3 s is 3 minutes of
    exercise time); never before the step started waiting (``started``)."""
    return max(started, (ready or started) + after)


def _fixed(moment: datetime) -> Clock:
    """A clock that always says ``moment``."""
    return lambda: moment


def skip_remaining(store: Store, injects: list[Inject], played: ExerciseRunRecord, *, at: datetime) -> int:
    """Record the injects still to come at ENDEX as skipped; return how many."""
    clock_ = ExerciseClock(played.startex_at, played.speed)
    reason = f"not delivered before ENDEX ({played.ended_by})"
    skipped = 0
    for inject in injects:
        record = InjectRecord(
            run_id=played.run_id,
            number=inject.number,
            status="skipped",
            due_at=clock_.due(inject.at),
            at=at,
            delivery=inject.delivery,
            recipient=inject.to,
            message=exercise_text(inject.message.strip(), exercise=True),
            reason=reason,
        )
        skipped += store.record_inject(record)
    return skipped


# --------------------------------------------------------------------------- ENDEX by a person


@dataclass(frozen=True)
class Ended:
    """What ``bcm exercise end`` did.

    Attributes:
        run: the run as it was when ENDEX was recorded.
        played: the exercise record, with ENDEX.
        runner_alive: the run's runner is alive: it stops the run itself (within a second or so).
        cancelled: the run had no runner (interrupted): it was cancelled here, in the store.
    """

    run: RunRecord
    played: ExerciseRunRecord
    runner_alive: bool
    cancelled: bool


def end_exercise(store: Store, run_ref: str, *, by: str, library_root: Path, now: Clock = clock.now) -> Ended:
    """Mark ENDEX on an exercise run now, ended by ``by``, and stop the run.

    Only a holder (member or alternate, in the stakeholders file) of the exercise's controller role,
    one of its evaluator roles or its sponsor role may end it; ENDEX records the person's name.

    A live runner sees ENDEX within a fraction of a second and stops the run itself: no step starts
    any more, waiting person steps are released, the rest is cancelled, the run ends ``cancelled``.
    An interrupted run (its runner died) is cancelled here, and its injects still to come skipped.

    Raises:
        InputError: the run is not an exercise run, ``by`` may not end it (the message names who
            may), or its exercise has ended already.
    """
    run = store.get_run(run_ref)
    played = store.get_exercise_run(run.id)
    if played is None:
        raise InputError(
            f"run {run.short_id} is {_a(run.mode)} run of {run.runbook_id}, not an exercise started with "
            "`bcm exercise run`: there is no exercise to end"
        )
    who = _ender(played, by, library_root=library_root)
    if played.endex_at is not None:
        raise InputError(
            f"exercise run {run.short_id} has ended already: ENDEX at {played.endex_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({played.ended_by})"
        )
    at = now()
    if not store.end_exercise(run.id, at, who):
        raise InputError(f"exercise run {run.short_id} was ended meanwhile")
    ended = store.get_exercise_run(run.id)
    assert ended is not None
    liveness = assess(run, now=at)
    cancelled = run.status in ACTIVE and liveness.interrupted
    if cancelled:
        _cancel_abandoned(store, run, f"ENDEX: {who} ended the exercise", at=at, library_root=library_root)
        _skip_unplayed(store, ended, at=at, library_root=library_root)
    return Ended(run=run, played=ended, runner_alive=liveness.state in ("alive", "stalled"), cancelled=cancelled)


def _ender(played: ExerciseRunRecord, by: str, *, library_root: Path) -> str:
    """The name of the person ``by`` names, when they hold the exercise's controller, an evaluator or
    the sponsor role.

    Raises:
        InputError: they hold none (the message names the roles and their holders), or the exercise
            cannot be read to tell.
    """
    short = played.run_id[:8]
    try:
        loaded = _played_exercise(played, library_root=library_root)
    except (BcmError, OSError) as exc:
        raise InputError(
            f"cannot tell who may end exercise run {short}: its exercise {played.exercise_id} "
            f"({played.exercise_path}) cannot be read: {exc}"
        ) from None
    exercise, roles = loaded.exercise, loaded.catalog.roles
    allowed = [r for r in dict.fromkeys([exercise.controller, *exercise.evaluators, exercise.sponsor]) if r]
    for role_id in allowed:
        person = roles[role_id].holder(by) if role_id in roles else None
        if person is not None:
            return person.name
    holders = "; ".join(
        f"{role_id} ({', '.join(p.name for p in [*roles[role_id].members, *roles[role_id].alternates])})"
        for role_id in allowed
        if role_id in roles
    )
    raise InputError(
        f"{by} may not end exercise {exercise.id} (run {short}): only a holder of its controller, evaluator "
        f"or sponsor role may: {holders}"
    )


def _played_exercise(played: ExerciseRunRecord, *, library_root: Path) -> LoadedExercise:
    """The exercise a run played: from the file it was played from, else by its id in the library."""
    try:
        loaded = load_exercise(played.exercise_path, library_root=library_root)
    except (BcmError, OSError):
        return load_exercise(played.exercise_id, library_root=library_root)
    if loaded.exercise.id != played.exercise_id:
        return load_exercise(played.exercise_id, library_root=library_root)
    return loaded


def _cancel_abandoned(store: Store, run: RunRecord, reason: str, *, at: datetime, library_root: Path) -> None:
    """A run whose runner is gone will not stop by itself: cancel what it left, as its runner would."""
    records = {s.step_id: s for s in store.get_steps(run.id)}
    try:
        loaded, _ = load_one(run.runbook_path, library_root=library_root)
        planned = [(p.id, p.phase, p.step.kind) for p in Plan.build(loaded.runbook).steps]
    except (BcmError, OSError):  # the runbook moved or changed: the steps it recorded are what is known
        planned = [(s.step_id, s.phase, s.kind) for s in records.values()]
    for step_id, phase, kind in planned:
        record = records.get(step_id)
        if record is not None and record.status in FINISHED_STEP_STATUSES:
            continue
        store.upsert_step(run.id, step_id, phase=phase, kind=kind, status="cancelled", reason=reason)
    store.update_run(run.id, status="cancelled", ended_at=at, error=reason)


def _skip_unplayed(store: Store, played: ExerciseRunRecord, *, at: datetime, library_root: Path) -> None:
    try:
        loaded = _played_exercise(played, library_root=library_root)
    except (BcmError, OSError):
        return  # the exercise file moved: the injects delivered are recorded; the rest cannot be named
    recorded = {i.number for i in store.get_injects(played.run_id)}
    skip_remaining(store, [i for i in loaded.exercise.injects() if i.number not in recorded], played, at=at)
