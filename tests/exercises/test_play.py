"""Playing an exercise in this process (threads, no Prefect, a clock moved by hand): injects on the
exercise clock, contingencies, scripted responses, STARTEX and ENDEX, ending early, resuming."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import pytest

from bcm.comms import Message, OutboxNotifier, RecordingNotifier, TranscriptTransport
from bcm.engine.approvals import decide
from bcm.engine.runner import RunRequest, start_run
from bcm.errors import InputError
from bcm.exercises.library import LoadedExercise, load_exercise
from bcm.exercises.play import begin_exercise, check_resumable, end_exercise, exercise_parameters
from bcm.store import InjectRecord, Store
from bcm.testing import ManualClock
from tests.exercises.conftest import LIBRARY, T0, at, play_in_process, tabletop

NOC = (
    "[EXERCISE] The NOC reports: utility lost at lon-dc1 at 08:40; UPS alarms on all three strings; generator "
    "sets 2 and 3 failed to synchronise. Battery autonomy about 40 minutes."
)
FUEL = (
    "[EXERCISE] The fuel supplier's 24x7 line says the next tanker can reach lon-dc1 in six hours. Generator 1 "
    "has nine hours at this load."
)


@functools.cache
def le_drill() -> LoadedExercise:
    """The library's law-enforcement emergency disclosure drill, validated."""
    return load_exercise(str(LIBRARY / "exercises" / "le-emergency-disclosure-drill.yaml"), library_root=LIBRARY)


class HeldNotifier(RecordingNotifier):
    """Holds the runner in the board update that says ``step`` succeeded until released: bcm's hand-off
    from one step to the next, made as long as a test likes."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.marker = f"/board/{step}/succeeded/"
        self.held = threading.Event()
        self.release = threading.Event()

    def send(self, message: Message) -> None:
        if self.marker in message.key:
            self.held.set()
            self.release.wait(10)
        super().send(message)


def advance_to(clock: ManualClock, seconds: float) -> None:
    """Move the clock to ``seconds`` after T0."""
    clock.advance(at(seconds) - clock())


def rows(injects: list[InjectRecord]) -> list[tuple[object, ...]]:
    return [(i.number, i.status, i.due_at, i.at, i.delivery, i.recipient, i.reason) for i in injects]


def test_every_inject_is_delivered_in_order_at_its_offset_to_exercise_destinations(
    store: Store, tmp_path: Path
) -> None:
    """At speed 60 each inject goes at STARTEX + offset/60, in MSEL order, as [EXERCISE], to exercise destinations."""
    clock = ManualClock()
    transport = TranscriptTransport(tmp_path / "transcript.jsonl", now=clock)
    run = play_in_process(
        store, speed=60, now=clock, notifier=OutboxNotifier(store, transport, catalog=tabletop().catalog)
    )
    for seconds, number in ((0, 1), (5, 2), (12, 3), (20, 4), (30, 5)):
        advance_to(clock, seconds)
        run.wait_for_inject(number)
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    assert run.result().status == "cancelled"
    injects = store.get_injects(run.run_id)
    assert rows(injects) == [
        (1, "delivered", at(0), at(0), "channel", "incident_commander", None),
        (2, "delivered", at(5), at(5), "dm", "dc_ops", None),
        (3, "delivered", at(12), at(12), "channel", "incident_commander", None),
        (4, "delivered", at(20), at(20), "channel", "comms", None),
        (5, "delivered", at(30), at(30), "console", "facilities", None),
    ]
    assert (injects[0].message, injects[4].message) == (NOC, FUEL)
    sent = [m for m in store.list_messages(run_id=run.run_id) if m.kind == "inject"]
    assert [(m.key.removeprefix(run.run_id), m.payload["channel"], m.status) for m in sent] == [
        ("/inject/1", {"name": "bcm-exercises"}, "delivered"),
        ("/inject/2/0", {"id": "U024ELIJAH"}, "delivered"),
        ("/inject/2/1", {"id": "U025LEWISL"}, "delivered"),
        ("/inject/3", {"name": "bcm-exercises"}, "delivered"),
        ("/inject/4", {"name": "bcm-exercises"}, "delivered"),
    ]
    assert sent[0].payload["text"] == NOC
    posts = [c for c in transport.read() if c["method"] == "chat.postMessage"]
    assert {c["channel"] for c in posts} == {"bcm-exercises", "U024ELIJAH", "U025LEWISL"}
    assert [c["text"][:11] for c in posts] == ["[EXERCISE] "] * len(posts)
    marks = {m.milestone: m.at for m in store.get_marks(run.run_id)}
    assert (marks["startex"], marks["inject_delivered"], marks["endex"]) == (at(0), at(0), at(30))


@pytest.mark.parametrize(
    ("decided", "status", "reason"),
    [(True, "skipped", "unless step confirm-power-state: it had happened"), (False, "delivered", None)],
)
def test_contingency_inject_is_sent_only_when_its_condition_holds(
    store: Store, decided: bool, status: str, reason: str | None
) -> None:
    """Inject 3 (12m, unless confirm-power-state) is skipped when the step was done by then and sent when not."""
    clock = ManualClock()
    notifier = RecordingNotifier()
    run = play_in_process(store, speed=60, now=clock, notifier=notifier)
    run.wait_for_step("confirm-power-state", "waiting")
    advance_to(clock, 6)
    if decided:
        decide(
            store, run.run_id, "confirm-power-state", who="Elijah McCoy", approve=True, note=None,
            library_root=LIBRARY, now=clock,
        )  # fmt: skip
        run.wait_for_step("confirm-power-state", "succeeded")
    advance_to(clock, 12)
    inject = run.wait_for_inject(3)
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    run.result()
    assert (inject.status, inject.due_at, inject.at, inject.reason) == (status, at(12), at(12), reason)
    keys = [m.key.removeprefix(run.run_id) for m in notifier.messages if m.kind == "inject"]
    assert keys == ["/inject/1", "/inject/2"] + ([] if decided else ["/inject/3"])


def test_scripted_responses_decide_after_the_compressed_delay(store: Store) -> None:
    """With auto-respond at speed 60, a response 'after 4m' decides 4 s after its step started waiting, not sooner."""
    clock = ManualClock()
    run = play_in_process(store, speed=60, auto_respond=True, now=clock)
    run.wait_for_step("assign-roles", "waiting")
    run.wait_for_step("confirm-power-state", "waiting")
    advance_to(clock, 3.9)
    time.sleep(0.1)  # ten looks of the play: none may answer yet
    assert store.get_approvals(run.run_id) == {}
    advance_to(clock, 4)
    run.wait_for_step("assign-roles", "succeeded")
    advance_to(clock, 7)
    run.wait_for_step("generators-holding", "waiting")
    advance_to(clock, 10)
    run.wait_for_step("generators-holding", "rejected")
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    run.result()
    approvals = store.get_approvals(run.run_id)
    assert [
        (a.step_id, a.by, a.decision, a.at, a.waited_s, a.note) for a in sorted(approvals.values(), key=lambda a: a.at)
    ] == [
        ("assign-roles", "Ada Lovelace", "done", at(4), 4.0, None),
        ("confirm-power-state", "Elijah McCoy", "done", at(7), 7.0, None),
        ("generators-holding", "Ada Lovelace", "rejected", at(10), 3.0, "Two of three sets down: drain now."),
    ]


def test_exercise_played_out_records_startex_endex_and_every_inject(store: Store) -> None:
    """A rehearsal played to the end: the run succeeds in exercise mode, ENDEX 'played out' at its end, injects kept."""
    clock = ManualClock()
    run = play_in_process(store, speed=60, auto_respond=True, now=clock)
    run.wait_for_step("assign-roles", "waiting")
    run.wait_for_step("confirm-power-state", "waiting")
    deadline = time.monotonic() + 30
    while not run.done() and time.monotonic() < deadline:
        clock.advance(1)  # an hour of exercise time in a minute of the manual clock
        time.sleep(0.005)
    result = run.result()
    record = store.get_run(run.run_id)
    played = store.get_exercise_run(run.run_id)
    assert played is not None
    assert (result.status, record.mode, played.ended_by, played.endex_at) == (
        "succeeded", "exercise", "played out", record.ended_at,
    )  # fmt: skip
    marks = {m.milestone: (m.at, m.source) for m in store.get_marks(run.run_id)}
    assert (marks["startex"], marks["endex"]) == ((T0, "exercise"), (record.ended_at, "exercise"))
    assert [(i.number, i.status) for i in store.get_injects(run.run_id)] == [
        (1, "delivered"), (2, "delivered"), (3, "skipped"), (4, "delivered"), (5, "delivered"),
    ]  # fmt: skip
    answered = {a.step_id: a.by for a in store.get_approvals(run.run_id).values()}
    assert answered == {r.step: r.by for r in tabletop().exercise.responses if r.step != "fuel-callout"}


def test_exercise_end_stops_the_run(store: Store) -> None:
    """`exercise end` marks ENDEX: the runner cancels what is left, releases waiting people, skips injects to come."""
    clock = ManualClock()
    run = play_in_process(store, speed=60, now=clock)
    run.wait_for_step("assign-roles", "waiting")
    run.wait_for_step("confirm-power-state", "waiting")
    advance_to(clock, 8)
    run.wait_for_inject(2)
    ended = end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    result = run.result()
    assert (ended.runner_alive, ended.cancelled, result.status) == (True, False, "cancelled")
    reason = "ENDEX: Edward Deming ended the exercise"
    record = store.get_run(run.run_id)
    assert (record.status, record.error, record.ended_at) == ("cancelled", reason, at(8))
    steps = {s.step_id: (s.status, s.reason) for s in store.get_steps(run.run_id)}
    assert steps["assign-roles"] == steps["confirm-power-state"] == steps["schedule-aar"] == ("cancelled", reason)
    played = store.get_exercise_run(run.run_id)
    assert played is not None
    assert (played.endex_at, played.ended_by) == (at(8), "Edward Deming")
    assert rows(store.get_injects(run.run_id))[2:] == [
        (n, "skipped", at(s), at(8), d, r, "not delivered before ENDEX (Edward Deming)")
        for n, s, d, r in ((3, 12, "channel", "incident_commander"), (4, 20, "channel", "comms"),
                           (5, 30, "console", "facilities"))
    ]  # fmt: skip


def test_resumed_exercise_delivers_missed_injects_late_and_none_twice(store: Store) -> None:
    """Resumed after its runner died: injects due meanwhile go out late with their true due time, inject 1 not again."""
    clock = ManualClock()
    start = begin_exercise(store, tabletop(), speed=60, triggered_by="test", now=clock)
    store.record_inject(
        InjectRecord(start.record.id, 1, "delivered", at(0), at(0), "channel", "incident_commander", NOC)
    )  # what the runner did before it died
    advance_to(clock, 25)  # 20 s without a heartbeat: the run is interrupted
    notifier = RecordingNotifier()
    run = play_in_process(store, speed=60, now=clock, notifier=notifier, resume_run=start.record.id)
    run.wait_for_inject(4)
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    run.result()
    assert rows(store.get_injects(run.run_id))[:4] == [
        (1, "delivered", at(0), at(0), "channel", "incident_commander", None),
        (2, "delivered", at(5), at(25), "dm", "dc_ops", None),
        (3, "delivered", at(12), at(25), "channel", "incident_commander", None),
        (4, "delivered", at(20), at(25), "channel", "comms", None),
    ]
    keys = [m.key.removeprefix(run.run_id) for m in notifier.messages if m.kind == "inject"]
    assert keys == ["/inject/2", "/inject/3", "/inject/4"]


def test_due_answers_and_injects_are_handled_in_exercise_time_order(store: Store) -> None:
    """One look past several events handles them in exercise-time order: inject 3 (25m, unless verify-requester)
    sees the verification scripted at 19m, and inject 4 (22m) goes out between the two."""
    clock = ManualClock()
    run = play_in_process(store, speed=60, auto_respond=True, now=clock, exercise=le_drill())
    reports: list[str] = []
    run.play.report = reports.append
    run.wait_for_step("log-intake", "waiting")
    advance_to(clock, 5)
    run.wait_for_step("acknowledge-requester", "waiting")
    run.wait_for_step("verify-requester", "waiting")
    advance_to(clock, 25)  # the scripted answers at 9m and 19m, injects 2, 4 and 3 all due at once
    inject = run.wait_for_inject(3)
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    run.result()
    first = next(n for n, line in enumerate(reports) if line.endswith(" log-intake"))
    last = next(n for n, line in enumerate(reports) if line.startswith("inject 3 "))
    assert reports[first : last + 1] == [
        "scripted response at +5m: Joan Clarke approved log-intake",
        "scripted response at +9m: Joan Clarke approved acknowledge-requester",
        "inject 2 delivered (dm to le_liaison), 15s late",
        "scripted response at +19m: Anne Neville approved verify-requester",
        "inject 4 delivered (dm to legal), 3s late",
        "inject 3 skipped (dm to le_liaison): unless step verify-requester: it had happened",
    ]
    assert (inject.status, inject.due_at, inject.at) == ("skipped", at(25), at(25))
    approvals = store.get_approvals(run.run_id)
    assert {s: (approvals[s].by, approvals[s].at) for s in ("acknowledge-requester", "verify-requester")} == {
        "acknowledge-requester": ("Joan Clarke", at(9)),
        "verify-requester": ("Anne Neville", at(19)),
    }


def test_scripted_answers_count_from_when_the_step_could_start_not_from_bcms_hand_off(store: Store) -> None:
    """bcm taking 5m45s of exercise time to start the steps after log-intake (5m) does not move their answers:
    verify-requester (after 14m) is answered at 19m, not 24m45s; acknowledge-requester (after 4m, due 9m) is
    answered the moment it started, never before."""
    clock = ManualClock()
    notifier = HeldNotifier("log-intake")
    run = play_in_process(store, speed=60, auto_respond=True, now=clock, notifier=notifier, exercise=le_drill())
    run.wait_for_step("log-intake", "waiting")
    advance_to(clock, 5)
    assert notifier.held.wait(10)
    advance_to(clock, 10.75)  # the hand-off: 0.575 s of wall time at --speed 600
    notifier.release.set()
    started = {s: run.wait_for_step(s, "waiting").started_at for s in ("acknowledge-requester", "verify-requester")}
    advance_to(clock, 25)
    inject = run.wait_for_inject(3)
    end_exercise(store, run.run_id, by="Edward Deming", library_root=LIBRARY, now=clock)
    run.result()
    assert started == {"acknowledge-requester": at(10.75), "verify-requester": at(10.75)}
    approvals = store.get_approvals(run.run_id)
    assert [
        (a.step_id, a.by, a.at, a.waited_s)
        for a in sorted(approvals.values(), key=lambda a: a.at)
        if a.step_id in ("log-intake", "acknowledge-requester", "verify-requester")
    ] == [
        ("log-intake", "Joan Clarke", at(5), 5.0),
        ("acknowledge-requester", "Joan Clarke", at(10.75), 0.0),
        ("verify-requester", "Anne Neville", at(19), 8.25),
    ]
    assert (inject.status, inject.reason) == ("skipped", "unless step verify-requester: it had happened")


@pytest.mark.parametrize(
    ("by", "ended_by"), [("Jean Bartik", "Jean Bartik"), ("u071edward", "Edward Deming"), ("deming", None)]
)
def test_only_the_controller_evaluators_and_sponsor_may_end_an_exercise(
    store: Store, by: str, ended_by: str | None
) -> None:
    """The sponsor's alternate and the controller (by Slack id) may end it, recorded by name; anyone else is refused
    with who may, and nothing is recorded."""
    clock = ManualClock()
    record = begin_exercise(store, tabletop(), speed=60, triggered_by="test", now=clock).record
    if ended_by is None:
        with pytest.raises(InputError) as refused:
            end_exercise(store, record.id, by=by, library_root=LIBRARY, now=clock)
        assert str(refused.value) == (
            f"deming may not end exercise dc-power-loss-tabletop (run {record.short_id}): only a holder of its "
            "controller, evaluator or sponsor role may: continuity_manager (Edward Deming, Joseph Juran); "
            "deputy (Alan Turing, Annie Easley); coo (Evelyn Boyd, Jean Bartik)"
        )
    else:
        end_exercise(store, record.id, by=by, library_root=LIBRARY, now=clock)
    played = store.get_exercise_run(record.id)
    assert played is not None
    assert (played.ended_by, played.endex_at) == ((ended_by, T0) if ended_by else (None, None))


def test_resume_of_an_exercise_run_of_another_runbook_is_refused_in_good_english(store: Store) -> None:
    """An exercise-mode run of another runbook is not resumed as the tabletop: 'an exercise run', not 'a exercise'."""
    loaded = le_drill()
    params = exercise_parameters(loaded)
    request = RunRequest(loaded=loaded.runbook, catalog=loaded.catalog, params=params, mode="exercise")
    record = start_run(store, request)
    with pytest.raises(InputError) as refused:
        check_resumable(store, tabletop(), record.id)
    assert str(refused.value) == (
        f"run {record.short_id} is an exercise run of le-emergency-disclosure, not of exercise dc-power-loss-tabletop"
    )
