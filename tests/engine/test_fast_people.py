"""People steps in-process (no Prefect, SQLite, a clock moved by hand): approvals granted and rejected,
manual steps confirmed and not, deadlines, several people deciding at once, refusals, the heartbeat."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bcm.comms import RecordingNotifier
from bcm.engine import liveness
from bcm.engine.approvals import decide
from bcm.engine.runner import Runner, RunRequest, RunResult, start_run
from bcm.errors import ApprovalRefused
from bcm.spec import load_one
from bcm.spec.loader import Catalog, LoadedRunbook
from bcm.store import MarkRecord, StepRecord, Store
from bcm.testing import InProcessRun, ManualClock, start_in_process
from bcm.testing.executor import DEFAULT_START, InProcessExecutor
from tests.conftest import FIXTURES

T0 = DEFAULT_START


def at(seconds: float) -> datetime:
    """The manual clock's time ``seconds`` after the run started."""
    return T0 + timedelta(seconds=seconds)


@functools.cache
def runbook(name: str) -> tuple[LoadedRunbook, Catalog]:
    """A runbook of tests/fixtures/engine, validated."""
    return load_one(str(FIXTURES / "engine" / f"{name}.yaml"), library_root=FIXTURES)


def steps_of(store: Store, run_id: str) -> dict[str, StepRecord]:
    return {s.step_id: s for s in store.get_steps(run_id)}


def marks_of(store: Store, run_id: str) -> dict[str, tuple[datetime, str]]:
    marks: list[MarkRecord] = store.get_marks(run_id)
    return {m.milestone: (m.at, m.source) for m in marks}


@pytest.fixture(autouse=True, scope="module")
def python3_is_this_interpreter() -> Iterator[None]:
    """Steps' ``python3`` is this virtualenv's: a version manager's shim costs up to half a second a call."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite in the test's own folder."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as opened:
        yield opened


@pytest.fixture
def store_both(db_url: str) -> Iterator[Store]:
    """A store on each backend: SQLite, and PostgreSQL (marked postgres, so not in make test-fast)."""
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    """The run's clock, at T0 until a test moves it."""
    return ManualClock(T0)


def start(name: str, store: Store, clock: ManualClock, **kwargs: Any) -> InProcessRun:
    """Start tests/fixtures/engine/``name``.yaml in-process on ``clock``."""
    loaded, catalog = runbook(name)
    params = kwargs.pop("params", {})
    return start_in_process(loaded, catalog, params, store=store, now=clock, **kwargs)


def answer(
    run: InProcessRun,
    clock: ManualClock,
    step: str,
    who: str,
    *,
    after: float,
    approve: bool = True,
    note: str | None = None,
) -> datetime:
    """What `bcm approve` does, ``after`` seconds (on the clock) once the run waits on ``step``;
    returns the decision's time."""
    run.wait_for_step(step, "waiting")
    clock.advance(after)
    _, _, approval = decide(
        run.store, run.run_id, step, who=who, approve=approve, note=note, library_root=FIXTURES, now=clock
    )
    return approval.at


def test_an_approval_granted_runs_its_branch_and_the_manual_step_is_confirmed(
    store_both: Store, clock: ManualClock
) -> None:
    """The commander approves after 30 s with a note: the step succeeds at the decision's time with
    who, note and wait as output, the approved branch runs, the other is skipped with its condition;
    the manual step is confirmed 45 s later; each milestone is its step's end."""
    run = start("approvals", store_both, clock)
    answer(run, clock, "failover", "U01ADA", after=30, note="pair site healthy")
    answer(run, clock, "test-calls", "alan turing", after=45)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    steps = steps_of(store_both, run.run_id)
    failover = steps["failover"]
    assert (failover.status, failover.actor, failover.started_at, failover.ended_at) == (
        "succeeded",
        "Ada Lovelace",
        T0,
        at(30),
    )
    assert failover.output == {"approved": True, "by": "Ada Lovelace", "note": "pair site healthy", "waited_s": 30.0}
    assert (steps["do-failover"].status, steps["do-failover"].output) == (
        "succeeded",
        {"exit_code": 0, "stdout": "failed over\n", "stderr": ""},
    )
    assert (steps["hold"].status, steps["hold"].reason) == (
        "skipped",
        "when {{ steps['failover'].output.approved == false }} was false",
    )
    calls = steps["test-calls"]
    assert (calls.status, calls.actor, calls.started_at, calls.ended_at) == ("succeeded", "Alan Turing", at(30), at(75))
    assert calls.output == {"approved": True, "by": "Alan Turing", "note": None, "waited_s": 45.0}
    decisions = {s: store_both.get_approval(run.run_id, s) for s in ("failover", "test-calls")}
    assert {s: (d.decision, d.by, d.at) for s, d in decisions.items() if d} == {
        "failover": ("approved", "Ada Lovelace", at(30)),
        "test-calls": ("done", "Alan Turing", at(75)),
    }
    assert marks_of(store_both, run.run_id) == {
        "acknowledged": (at(30), "step:failover"),
        "mitigated": (at(30), "step:do-failover"),
        "recovered": (at(75), "step:test-calls"),
    }
    assert run.executor.submitted == [
        ("failover", "incident_commander"),
        ("do-failover", None),
        ("test-calls", "voice_ops"),
    ]


def test_a_rejection_is_an_answer_that_takes_the_other_branch(store: Store, clock: ManualClock) -> None:
    """A rejected approval shows rejected with who and the note, the when on approved == false runs,
    the run goes on and succeeds; the decision is still the acknowledgement, at its time; the final
    board says who rejected it and why."""
    notifier = RecordingNotifier()
    run = start("approvals", store, clock, notifier=notifier)
    answer(run, clock, "failover", "grace@example.net", after=20, approve=False, note="pair site degraded")
    answer(run, clock, "test-calls", "U01ALAN", after=10)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    steps = steps_of(store, run.run_id)
    failover = steps["failover"]
    assert (failover.status, failover.actor, failover.ended_at) == ("rejected", "Grace Hopper", at(20))
    assert failover.output == {"approved": False, "by": "Grace Hopper", "note": "pair site degraded", "waited_s": 20.0}
    assert (steps["do-failover"].status, steps["hold"].status) == ("skipped", "succeeded")
    assert steps["do-failover"].reason == "when {{ steps['failover'].output.approved == true }} was false"
    assert marks_of(store, run.run_id) == {
        "acknowledged": (at(20), "step:failover"),
        "recovered": (at(30), "step:test-calls"),
    }
    final = next(m for m in notifier.messages if m.key == f"{run.run_id}/board/final/succeeded")
    board = final.blocks[1]["text"]["text"]
    assert ":no_good: `failover`  — rejected (" in board, board
    assert "by Grace Hopper: pair site degraded" in board


def test_a_manual_step_confirmed_succeeds_at_the_decision_time(store: Store, clock: ManualClock) -> None:
    """The role is asked (with the command to answer), the run waits, the confirmation ends the step
    and sets its milestone at the confirmation's time."""
    notifier = RecordingNotifier()
    run = start("crash-decide", store, clock, notifier=notifier)
    decided = answer(run, clock, "confirm", "Alan Turing", after=90, note="calls complete")
    assert decided == at(90)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    confirm = steps_of(store, run.run_id)["confirm"]
    assert (confirm.status, confirm.actor, confirm.ended_at) == ("succeeded", "Alan Turing", at(90))
    assert confirm.output == {"approved": True, "by": "Alan Turing", "note": "calls complete", "waited_s": 90.0}
    assert marks_of(store, run.run_id) == {"recovered": (at(90), "step:confirm")}
    [request] = [m for m in notifier.messages if m.kind == "approval_request"]
    assert (request.step_id, request.to) == ("confirm", ("voice_ops",))
    assert request.text.splitlines() == [
        "Task for you (voice_ops) in A decision taken while the runner is dead: "
        "Confirm calls complete through the pair site.",
        f"Answer with: bcm approve {run.run_id[:8]} confirm --by YOU   (or --reject)",
    ]
    [edit] = [m for m in notifier.messages if m.kind == "decision"]
    assert edit.step_id == "confirm"


def test_a_manual_step_rejected_fails_the_run_with_the_persons_note(store: Store, clock: ManualClock) -> None:
    """A manual step the person could not complete fails (not rejected), with who and why, and stops
    the run; no milestone is set."""
    run = start("crash-decide", store, clock)
    answer(run, clock, "confirm", "Alan Turing", after=5, approve=False, note="calls still drop")
    assert run.result() == RunResult(run.run_id, "failed", ("confirm",))
    confirm = steps_of(store, run.run_id)["confirm"]
    assert (confirm.status, confirm.actor, confirm.ended_at) == ("failed", "Alan Turing", at(5))
    assert confirm.error == "Alan Turing could not complete it: calls still drop"
    assert store.get_approval(run.run_id, "confirm").decision == "rejected"  # type: ignore[union-attr]
    run_record = store.get_run(run.run_id)
    assert (run_record.status, run_record.error, run_record.ended_at) == (
        "failed",
        "step 'confirm' Alan Turing could not complete it: calls still drop",
        at(5),
    )
    assert marks_of(store, run.run_id) == {}


def test_no_decision_by_the_timeout_fails_the_run(store: Store, clock: ManualClock) -> None:
    """on_timeout: fail: at the deadline (not when noticed) the step times out, nobody's decision is
    recorded, the rest is cancelled, the run fails, and a late decision is refused."""
    run = start("approval-timeout", store, clock)
    run.wait_for_step("failover", "waiting")
    clock.advance(2)
    assert run.result() == RunResult(run.run_id, "failed", ("failover",))
    steps = steps_of(store, run.run_id)
    failover = steps["failover"]
    assert (failover.status, failover.ended_at, failover.error) == (
        "timed_out",
        at(2),
        "no decision from incident_commander within 2s",
    )
    assert failover.output == {"approved": None, "by": None, "note": None, "waited_s": 2.0}
    assert {s: (r.status, r.reason) for s, r in steps.items() if s != "failover"} == dict.fromkeys(
        ("do-failover", "hold", "test-calls"), ("cancelled", "not run: the run stopped after step 'failover' failed")
    )
    decision = store.get_approval(run.run_id, "failover")
    assert decision is not None and (decision.decision, decision.by, decision.at) == ("timed_out", "nobody", at(2))
    run_record = store.get_run(run.run_id)
    assert (run_record.status, run_record.error) == (
        "failed",
        "step 'failover' no decision from incident_commander within 2s",
    )
    assert marks_of(store, run.run_id) == {}
    with pytest.raises(ApprovalRefused) as info:
        decide(store, run.run_id, "failover", who="Ada Lovelace", approve=True, note=None, library_root=FIXTURES)
    assert str(info.value) == "step 'failover' timed out at 2025-03-03 09:00:02 UTC with no decision"


def test_no_decision_by_the_timeout_with_continue_goes_on_without_either_branch(
    store: Store, clock: ManualClock
) -> None:
    """on_timeout: continue: the step times out, neither branch runs (approved is neither true nor
    false), the run goes on to the manual step and succeeds, reporting the timed-out step."""
    run = start("approval-timeout-continue", store, clock)
    run.wait_for_step("failover", "waiting")
    clock.advance(2)
    answer(run, clock, "test-calls", "Alan Turing", after=10)
    assert run.result() == RunResult(run.run_id, "succeeded", ("failover",))
    steps = steps_of(store, run.run_id)
    assert (steps["failover"].status, steps["failover"].output) == (
        "timed_out",
        {"approved": None, "by": None, "note": None, "waited_s": 2.0},
    )
    assert {s: steps[s].status for s in ("do-failover", "hold", "test-calls")} == {
        "do-failover": "skipped",
        "hold": "skipped",
        "test-calls": "succeeded",
    }
    assert marks_of(store, run.run_id) == {"recovered": (at(12), "step:test-calls")}


@pytest.mark.parametrize("order", [("assign-roles", "check-sbc"), ("check-sbc", "assign-roles")])
def test_two_people_steps_wait_together_and_are_decided_in_either_order(
    store: Store, clock: ManualClock, tmp_path: Path, order: tuple[str, str]
) -> None:
    """The commander's step waits while the probe (another phase) runs and ends, then waits together
    with voice ops' step; the first decision releases only its own step; each milestone is its
    decision's time."""
    out = tmp_path / "out"
    run = start("people-parallel", store, clock, params={"out": str(out)})
    run.wait_for_step("check-sbc", "waiting")  # after the probe, as written in its phase
    assert {s: r.status for s, r in steps_of(store, run.run_id).items()} == {
        "assign-roles": "waiting",
        "probe": "succeeded",
        "check-sbc": "waiting",
    }
    who = {"assign-roles": "Ada Lovelace", "check-sbc": "Alan Turing"}
    first, second = order
    assert answer(run, clock, first, who[first], after=30) == at(30)
    run.wait_for_step(first, "succeeded")
    if first == "check-sbc":  # recovery waits for the response phase, not for the commander's step
        run.wait_for_step("all-clear", "succeeded")
    assert steps_of(store, run.run_id)[second].status == "waiting"
    assert answer(run, clock, second, who[second], after=30) == at(60)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    decided = {first: at(30), second: at(60)}
    steps = steps_of(store, run.run_id)
    for step in who:
        assert (steps[step].status, steps[step].actor, steps[step].ended_at) == ("succeeded", who[step], decided[step])
    assert marks_of(store, run.run_id) == {
        "declared": (decided["assign-roles"], "step:assign-roles"),
        "acknowledged": (decided["check-sbc"], "step:check-sbc"),
        "recovered": (decided["check-sbc"], "step:all-clear"),
    }
    assert out.read_text() == "probed\n"
    assert sorted(s for s in run.executor.submitted if s[1]) == [
        ("assign-roles", "incident_commander"),
        ("check-sbc", "voice_ops"),
    ]


def test_many_pending_steps_each_take_their_own_decision(store: Store, clock: ManualClock, tmp_path: Path) -> None:
    """Twelve approve steps waiting at once are each released by their own decision, in reverse order,
    while the others still wait; each records its own note and wait."""
    ids = [f"ok-{n:02d}" for n in range(12)]
    steps_yaml = "\n".join(
        f"    - id: {step}\n      needs: [start]\n"
        f"      approve: {{by: incident_commander, prompt: 'Go {step}?', timeout: 120s, on_timeout: fail}}"
        for step in ids
    )
    path = tmp_path / "many.yaml"
    path.write_text(
        "version: 1\nid: many\ntitle: Many approvals\nowner: voice_ops\nseverity: sev2\nservices: [voice-core]\n"
        "phases:\n  response:\n    - id: start\n      notify: {to: [exec], message: start}\n" + steps_yaml + "\n"
    )
    (tmp_path / "catalog").symlink_to(FIXTURES / "catalog")
    loaded, catalog = load_one(str(path), library_root=FIXTURES)
    run = start_in_process(loaded, catalog, {}, store=store, now=clock)
    for step in ids:
        run.wait_for_step(step, "waiting")
    released_while_others_wait: list[bool] = []
    for step in reversed(ids):
        answer(run, clock, step, "Grace Hopper", after=1, note=step)
        run.wait_for_step(step, "succeeded")
        current = steps_of(store, run.run_id)
        released_while_others_wait.append(all(current[s].status == "waiting" for s in ids if s < step))
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    assert released_while_others_wait == [True] * len(ids)
    steps = steps_of(store, run.run_id)
    assert [steps[s].output for s in ids] == [
        {"approved": True, "by": "Grace Hopper", "note": s, "waited_s": float(12 - n)} for n, s in enumerate(ids)
    ]


def test_wrong_person_not_waiting_and_already_decided_are_refused(store: Store, clock: ManualClock) -> None:
    """Only a holder of the role may decide, only while the run waits on that step, and only once;
    the refusals leave the run waiting, and it ends normally afterwards."""
    run = start("approvals", store, clock)
    run.wait_for_step("failover", "waiting")
    refusals: list[str] = []
    for who, step in (("Alan Turing", "failover"), ("Ada Lovelace", "test-calls"), ("Alan Turing", "test-calls")):
        with pytest.raises(ApprovalRefused) as info:
            decide(store, run.run_id, step, who=who, approve=True, note=None, library_root=FIXTURES, now=clock)
        refusals.append(str(info.value))
    answer(run, clock, "failover", "Ada Lovelace", after=10)
    with pytest.raises(ApprovalRefused) as info:
        decide(store, run.run_id, "failover", who="Grace Hopper", approve=False, note=None, library_root=FIXTURES)
    refusals.append(str(info.value))
    answer(run, clock, "test-calls", "Alan Turing", after=10)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    assert refusals == [
        "Alan Turing does not hold the role incident_commander (Incident commander) that step 'failover' needs; "
        "holders: Ada Lovelace, Grace Hopper",
        "Ada Lovelace does not hold the role voice_ops (Voice operations) that step 'test-calls' needs; "
        "holders: Alan Turing",
        f"run {run.run_id[:8]} is not waiting on step 'test-calls' (its status: not started)",
        "step 'failover' was already approved by Ada Lovelace at 2025-03-03 09:00:10 UTC",
    ]


def test_the_heartbeat_is_written_while_the_run_waits(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a person decides, the runner keeps writing its heartbeat (three newer times, the step still
    waiting) and the run reads as alive."""
    monkeypatch.setattr(liveness, "HEARTBEAT_S", 0.05)
    loaded, catalog = runbook("crash-decide")
    run = start_in_process(loaded, catalog, {}, store=store)
    run.wait_for_step("confirm", "waiting")
    beats: list[datetime] = []
    deadline = time.monotonic() + 10  # a loaded machine may starve the heartbeat thread for a while
    while len(beats) < 3 and time.monotonic() < deadline:
        record = store.get_run(run.run_id)
        assert liveness.assess(record).state == "alive"
        if record.heartbeat_at is not None and (not beats or record.heartbeat_at > beats[-1]):
            beats.append(record.heartbeat_at)
        time.sleep(0.01)
    waiting = store.get_step(run.run_id, "confirm")
    decide(store, run.run_id, "confirm", who="Alan Turing", approve=True, note=None, library_root=FIXTURES)
    assert run.result() == RunResult(run.run_id, "succeeded", ())
    assert (len(beats), waiting.status if waiting else None) == (3, "waiting")


def test_a_stopping_failure_releases_the_other_waiting_steps_at_once(
    store: Store, clock: ManualClock, tmp_path: Path
) -> None:
    """When one person step times out and stops the run, a person step still waiting in another
    phase is cancelled at once with the reason, instead of holding the run until its own timeout."""
    path = tmp_path / "stop.yaml"
    path.write_text(
        "version: 1\nid: stop\ntitle: Stop early\nowner: voice_ops\nseverity: sev2\nservices: [voice-core]\n"
        "phases:\n"
        "  communication:\n"
        "    - id: roles\n      manual: {by: incident_commander, instructions: Assign roles, timeout: 10m}\n"
        "  response:\n"
        "    - id: go\n      approve: {by: incident_commander, prompt: Go?, timeout: 2s, on_timeout: fail}\n"
    )
    (tmp_path / "catalog").symlink_to(FIXTURES / "catalog")
    loaded, catalog = load_one(str(path), library_root=FIXTURES)
    run = start_in_process(loaded, catalog, {}, store=store, now=clock)
    run.wait_for_step("roles", "waiting")
    run.wait_for_step("go", "waiting")
    clock.advance(2)
    assert run.result() == RunResult(run.run_id, "failed", ("go",))
    steps = steps_of(store, run.run_id)
    assert (steps["go"].status, steps["roles"].status) == ("timed_out", "cancelled")
    assert steps["roles"].reason == "not run: the run stopped after step 'go' failed"
    assert steps["roles"].ended_at == at(2)


def test_a_decision_handed_to_the_board_ends_its_step_at_once(store: Store, clock: ManualClock) -> None:
    """DecisionBoard.wake: with the run's next look for decisions an hour away, a decision recorded in this process
    and handed to the board ends its step at once, at the decision's time."""
    loaded, catalog = runbook("crash-decide")
    request = RunRequest(loaded=loaded, catalog=catalog, params={})
    executor = InProcessExecutor()
    runner = Runner(
        start_run(store, request, now=clock), request, store=store, executor=executor,
        notifier=RecordingNotifier(), now=clock, poll_s=3600, deadline_check_s=3600,
    )  # fmt: skip
    run = InProcessRun(runner, executor, resume=False, take_over=False)
    run.wait_for_step("confirm", "waiting")
    clock.advance(40)
    _, _, decision = decide(
        store, run.run_id, "confirm", who="Alan Turing", approve=True, note=None, library_root=FIXTURES, now=clock
    )
    runner._board.wake(decision)
    assert run.result(timeout=5) == RunResult(run.run_id, "succeeded", ())
    confirm = steps_of(store, run.run_id)["confirm"]
    assert (confirm.status, confirm.actor, confirm.ended_at) == ("succeeded", "Alan Turing", at(40))
