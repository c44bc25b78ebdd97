"""Evaluators' observations and the hot wash: role-checked, audited, refused with a clear message, and an
evaluator's rating kept beside the suggested one; in-process and through the real `bcm exercise` command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bcm.errors import ObservationRefused
from bcm.exercises.evaluation import evaluate, read_records
from bcm.exercises.observations import record_hotwash, record_observation
from bcm.store import ExerciseRunRecord, RunTargets, Store
from tests.conftest import ROOT
from tests.exercises.conftest import LIBRARY, tabletop

RUN = "e0e0e0e0" + "0" * 24
REAL = "feedf00d" + "0" * 24
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=2)


def at(minutes: float) -> datetime:
    """``minutes`` of exercise time after STARTEX at speed 60 (one wall-clock second each)."""
    return T0 + timedelta(seconds=minutes)


def create_exercise_run(store: Store, run_id: str = RUN, *, speed: float = 60.0, ended: float | None = 90) -> None:
    """A run of the library's tabletop, recorded as the exercise player records it (STARTEX at T0)."""
    loaded = tabletop()
    store.create_run(
        run_id=run_id,
        runbook_id="dc-power-loss",
        runbook_title="Data-centre power loss",
        runbook_hash=loaded.runbook.sha256,
        runbook_path=str(loaded.runbook.path),
        mode="exercise",
        parameters={"site": "lon-dc1", "on_generators": False},
        triggered_by="Edward Deming",
        services=["colocation", "voice-core", "cloud-compute"],
        severity="sev1",
        started_at=T0,
        targets=RunTargets(rto=timedelta(hours=1), rpo=timedelta(minutes=15), cadence=timedelta(minutes=30)),
    )
    store.start_exercise(
        ExerciseRunRecord(
            run_id=run_id,
            exercise_id=loaded.exercise.id,
            exercise_title=loaded.exercise.title,
            exercise_hash=loaded.sha256,
            exercise_path=str(loaded.path),
            speed=speed,
            auto_respond=False,
            startex_at=T0,
            endex_at=None,
            ended_by=None,
        )
    )
    if ended is not None:
        store.end_exercise(run_id, at(ended), "played out")
        store.update_run(run_id, status="succeeded", ended_at=at(ended))


def create_real_run(store: Store) -> None:
    store.create_run(
        run_id=REAL,
        runbook_id="dc-power-loss",
        runbook_title="Data-centre power loss",
        runbook_hash="ab" * 32,
        runbook_path=str(LIBRARY / "dc-power-loss.yaml"),
        mode="real",
        parameters={"site": "lon-dc1"},
        triggered_by="Ada Lovelace",
        services=["colocation"],
        severity="sev1",
        started_at=T0,
    )


@pytest.fixture
def played(store: Store) -> Store:
    """A store with one ended run of the tabletop (acknowledged at 12m: the timeline suggests S) and one real run."""
    create_exercise_run(store)
    store.add_mark(RUN, "acknowledged", at(12), "step:generators-holding")
    create_real_run(store)
    return store


def observe(store: Store, **kwargs: object) -> object:
    options: dict[str, object] = {
        "objective_id": "acknowledge-fast",
        "note": "The commander waited for the BMS.",
        "who": "Edward Deming",
        "library_root": LIBRARY,
        "now": lambda: LATER,
        **kwargs,
    }
    return record_observation(store, "e0e0e0e0", **options)  # type: ignore[arg-type]


def objective_ids() -> str:
    return ", ".join(o.id for o in tabletop().exercise.objectives)


# --------------------------------------------------------------------------- in process


def test_evaluator_observation_is_stored_with_name_role_and_audited(played: Store) -> None:
    """An evaluator named by e-mail is recorded by name under their role; the store audits it."""
    recorded = record_observation(
        played,
        "e0e0e0e0",
        objective_id="acknowledge-fast",
        note="  The commander waited for the BMS.  ",
        who="edward.deming@example.net",
        kind="improvement",
        rating="m",
        root_cause="No trigger for declaring on UPS alarms alone.",
        library_root=LIBRARY,
        now=lambda: LATER,
    )
    stored = played.get_observations(RUN)
    assert [(o.objective_id, o.kind, o.rating, o.note, o.root_cause, o.by, o.role, o.at) for o in stored] == [
        (
            "acknowledge-fast",
            "improvement",
            "M",
            "The commander waited for the BMS.",
            "No trigger for declaring on UPS alarms alone.",
            "Edward Deming",
            "continuity_manager",
            LATER,
        )
    ]
    assert (recorded.observation, recorded.suggested) == (stored[0], "S")
    audit = played.export_audit(run_id=RUN)[-1]
    assert (audit["kind"], audit["data"]) == (
        "observation.recorded",
        {
            "objective_id": "acknowledge-fast",
            "kind": "improvement",
            "rating": "M",
            "note": "The commander waited for the BMS.",
            "root_cause": "No trigger for declaring on UPS alarms alone.",
            "by": "Edward Deming",
            "role": "continuity_manager",
            "id": stored[0].id,
            "at": LATER.isoformat(timespec="microseconds"),
        },
    )


def test_an_alternate_of_an_evaluator_role_may_observe(played: Store) -> None:
    """Annie Easley, the deputy's alternate, records a strength as deputy."""
    observe(played, who="Annie Easley", kind="strength", note="Clear hand-over.")
    assert [(o.by, o.role, o.kind) for o in played.get_observations(RUN)] == [("Annie Easley", "deputy", "strength")]


def test_someone_who_is_not_an_evaluator_is_refused_and_nothing_is_stored(played: Store) -> None:
    """The commander is a participant, not an evaluator: refused, naming the evaluator roles and holders."""
    with pytest.raises(ObservationRefused) as refused:
        observe(played, who="Ada Lovelace")
    assert str(refused.value) == (
        "Ada Lovelace is not an evaluator of exercise dc-power-loss-tabletop (run e0e0e0e0); its evaluator roles "
        "and their holders: continuity_manager (Edward Deming, Joseph Juran); deputy (Alan Turing, Annie Easley)"
    )
    assert played.get_observations(RUN) == []


def test_unknown_objective_is_refused_with_the_nearest_id(played: Store) -> None:
    """A misspelt objective: refused, suggesting the nearest id and listing them all."""
    with pytest.raises(ObservationRefused) as refused:
        observe(played, objective_id="acknowledge-fats")
    assert str(refused.value) == (
        "exercise dc-power-loss-tabletop has no objective 'acknowledge-fats' (did you mean 'acknowledge-fast'?); "
        f"its objectives: {objective_ids()}"
    )


def test_bad_rating_empty_note_and_stray_root_cause_are_refused(played: Store) -> None:
    """A rating other than P, S, M, U; a blank note; a root cause without an area for improvement."""
    with pytest.raises(ObservationRefused) as rating:
        observe(played, rating="X")
    with pytest.raises(ObservationRefused) as note:
        observe(played, note="   ")
    with pytest.raises(ObservationRefused) as cause:
        observe(played, kind="strength", root_cause="training")
    assert [str(rating.value), str(note.value), str(cause.value)] == [
        "--rating X: not an HSEEP rating; use one of P (performed without challenges); S (performed with some "
        "challenges); M (performed with major challenges); U (unable to be performed)",
        "--note is empty: say what was observed",
        "--root-cause goes with --improvement: a root cause explains an area for improvement",
    ]
    assert played.get_observations(RUN) == []


def test_observation_on_a_run_that_is_not_an_exercise_is_refused(played: Store) -> None:
    """A real run has no exercise to evaluate."""
    with pytest.raises(ObservationRefused) as refused:
        record_observation(
            played, "feedf00d", objective_id="acknowledge-fast", note="x", who="Edward Deming", library_root=LIBRARY
        )
    assert str(refused.value) == (
        "run feedf00d is a real run, not a run of an exercise: observations are recorded on exercise runs"
    )


def test_evaluator_rating_overrides_the_suggestion_and_both_are_kept(played: Store) -> None:
    """Acknowledged at 12m suggests S; an evaluator's M is final; the evaluation shows S, M and who rated."""
    observe(played, rating="M", kind="improvement")
    loaded = tabletop()
    run = played.get_run(RUN)
    exercise_run = played.get_exercise_run(RUN)
    assert exercise_run is not None
    result = evaluate(loaded.exercise, read_records(played, run, exercise_run, loaded), as_of=LATER)
    ack = result.result("acknowledge-fast")
    assert (ack.score.outcome, ack.suggested, ack.rating, ack.rated_by, ack.rated_role) == (
        "met",
        "S",
        "M",
        "Edward Deming",
        "continuity_manager",
    )


def test_hotwash_note_is_recorded_by_an_evaluator_without_an_objective(played: Store) -> None:
    """A hot-wash note: kind hotwash, no objective, no rating; a non-evaluator is refused."""
    record_hotwash(played, "e0e0e0e0", note="A one-page power card.", who="Alan Turing", library_root=LIBRARY)
    with pytest.raises(ObservationRefused):
        record_hotwash(played, "e0e0e0e0", note="x", who="Hedy Lamarr", library_root=LIBRARY)
    assert [(o.objective_id, o.kind, o.rating, o.note, o.by, o.role) for o in played.get_observations(RUN)] == [
        (None, "hotwash", None, "A one-page power card.", "Alan Turing", "deputy")
    ]


# --------------------------------------------------------------------------- the command


def bcm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BCM_HOME": str(tmp_path / "home"),
        "BCM_DATABASE_URL": f"sqlite:///{tmp_path / 'bcm.db'}",
        "BCM_RUNBOOKS": str(LIBRARY),
    }
    return subprocess.run(
        [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """The database of the `played` fixture, in a file the command opens."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        create_exercise_run(store)
        store.add_mark(RUN, "acknowledged", at(12), "step:generators-holding")
        create_real_run(store)
    return tmp_path


def test_cli_observe_records_and_says_what_the_timeline_suggests(seeded: Path) -> None:
    """`bcm exercise observe` exits 0, says what was recorded and the suggested rating beside the evaluator's."""
    result = bcm(
        seeded, "exercise", "observe", "e0e0e0e0", "--objective", "acknowledge-fast", "--rating", "M",
        "--improvement", "--root-cause", "No trigger.", "--note", "Waited for the BMS.", "--by", "Edward Deming",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "area for improvement 1 recorded on run e0e0e0e0, objective acknowledge-fast, rating M (performed with major "
        "challenges), by Edward Deming (continuity_manager)",
        "the timeline suggests S: acknowledged 12m after STARTEX: within 15m, 3m to spare (20%) (your rating is "
        "final; both are kept)",
    ]
    hotwash = bcm(seeded, "exercise", "hotwash", "e0e0e0e0", "--note", "Power card.", "--by", "Alan Turing")
    assert (hotwash.returncode, hotwash.stdout) == (
        0,
        "hot-wash note 2 recorded on run e0e0e0e0 by Alan Turing (deputy)\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["e0e0e0e0", "--objective", "acknowledge-fast", "--note", "x", "--by", "Ada Lovelace"],
            "Ada Lovelace is not an evaluator of exercise dc-power-loss-tabletop (run e0e0e0e0); its evaluator roles "
            "and their holders: continuity_manager (Edward Deming, Joseph Juran); deputy (Alan Turing, Annie Easley)",
        ),
        (
            ["e0e0e0e0", "--objective", "nope", "--note", "x", "--by", "Edward Deming"],
            "exercise dc-power-loss-tabletop has no objective 'nope'; its objectives: {objectives}",
        ),
        (
            ["e0e0e0e0", "--objective", "acknowledge-fast", "--rating", "Q", "--note", "x", "--by", "Edward Deming"],
            "--rating Q: not an HSEEP rating; use one of P (performed without challenges); S (performed with some "
            "challenges); M (performed with major challenges); U (unable to be performed)",
        ),
        (
            ["e0e0e0e0", "--objective", "acknowledge-fast", "--strength", "--improvement", "--note", "x", "--by", "x"],
            "give --strength or --improvement, not both: record them as two observations",
        ),
        (
            ["feedf00d", "--objective", "acknowledge-fast", "--note", "x", "--by", "Edward Deming"],
            "run feedf00d is a real run, not a run of an exercise: observations are recorded on exercise runs",
        ),
    ],
    ids=["not-an-evaluator", "unknown-objective", "bad-rating", "two-kinds", "not-an-exercise"],
)
def test_cli_observe_refusals_exit_2_with_one_clear_line(seeded: Path, args: list[str], message: str) -> None:
    """Each refusal: exit 2, the message on stderr, no traceback, nothing recorded."""
    result = bcm(seeded, "exercise", "observe", *args)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        message.format(objectives=objective_ids()) + "\n",
    )
    with Store.open(f"sqlite:///{seeded / 'bcm.db'}") as store:
        assert store.get_observations(RUN) == []
