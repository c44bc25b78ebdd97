"""Playing an exercise in this process (threads, no Prefect, a clock moved by hand): injects on the
exercise clock, contingencies, scripted responses, STARTEX and ENDEX, ending early, resuming."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bcm.comms import OutboxNotifier, RecordingNotifier, TranscriptTransport
from bcm.engine.approvals import decide
from bcm.exercises.play import begin_exercise, end_exercise
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
