"""``bcm exercise run`` and ``bcm exercise end`` as separate processes, as controllers use them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from bcm import clock
from bcm.engine.runner import RunRequest, start_run
from bcm.exercises.play import begin_exercise
from bcm.store import Store
from tests.conftest import ROOT
from tests.exercises.conftest import TABLETOP, CliEnv, play_in_process, tabletop


def test_end_refuses_a_run_that_is_not_an_exercise(cli_env: CliEnv) -> None:
    """`exercise end` on a real run: exit 2, it says why, nothing is recorded."""
    loaded = tabletop()
    with Store.open(cli_env.database_url) as store:
        request = RunRequest(loaded=loaded.runbook, catalog=loaded.catalog, params={"site": "lon-dc1"})
        record = start_run(store, request)
    result = cli_env.bcm("exercise", "end", record.short_id, "--by", "Edward Deming")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"run {record.short_id} is a real run of dc-power-loss, not an exercise started with `bcm exercise run`: "
        "there is no exercise to end\n"
    )
    with Store.open(cli_env.database_url) as store:
        assert [m.milestone for m in store.get_marks(record.id)] == []


def test_end_refuses_an_exercise_mode_run_of_bcm_run_in_good_english(cli_env: CliEnv) -> None:
    """`exercise end` on a `bcm run --mode exercise` run: exit 2, 'an exercise run', not 'a exercise run'."""
    loaded = tabletop()
    with Store.open(cli_env.database_url) as store:
        request = RunRequest(loaded=loaded.runbook, catalog=loaded.catalog, params={"site": "lon-dc1"}, mode="exercise")
        record = start_run(store, request)
    result = cli_env.bcm("exercise", "end", record.short_id, "--by", "Edward Deming")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"run {record.short_id} is an exercise run of dc-power-loss, not an exercise started with `bcm exercise run`: "
        "there is no exercise to end\n"
    )


def test_end_needs_by_and_refuses_anyone_without_a_controller_evaluator_or_sponsor_role(cli_env: CliEnv) -> None:
    """`exercise end` without --by, or by a person who holds none of the roles: exit 2, who may is named, the
    exercise goes on."""
    with Store.open(cli_env.database_url) as store:
        record = begin_exercise(store, tabletop(), speed=1, triggered_by="test").record
    anonymous = cli_env.bcm("exercise", "end", record.short_id)
    stranger = cli_env.bcm("exercise", "end", record.short_id, "--by", "Random Person")
    assert (anonymous.returncode, anonymous.stdout) == (2, "")
    assert "Missing option '--by'" in anonymous.stderr
    assert (stranger.returncode, stranger.stdout) == (2, "")
    assert stranger.stderr == (
        f"Random Person may not end exercise {TABLETOP} (run {record.short_id}): only a holder of its controller, "
        "evaluator or sponsor role may: continuity_manager (Edward Deming, Joseph Juran); deputy (Alan Turing, "
        "Annie Easley); coo (Evelyn Boyd, Jean Bartik)\n"
    )
    with Store.open(cli_env.database_url) as store:
        played = store.get_exercise_run(record.id)
        assert played is not None and (played.endex_at, played.ended_by) == (None, None)
        assert store.get_run(record.id).status == "running"


def test_run_above_speed_60_warns_that_hand_offs_distort_the_figures(cli_env: CliEnv) -> None:
    """`exercise run --speed 600`: a warning on stderr that a 0.3 s hand-off counts as 3m, before anything runs."""
    environ = {**cli_env.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # nothing answers: stops there
    fast = subprocess.run(
        [sys.executable, "-m", "bcm", "exercise", "run", TABLETOP, "--speed", "600"],
        capture_output=True, text=True, env=environ, cwd=ROOT, timeout=120,
    )  # fmt: skip
    scoring = subprocess.run(
        [sys.executable, "-m", "bcm", "exercise", "run", TABLETOP, "--speed", "60"],
        capture_output=True, text=True, env=environ, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert fast.returncode == scoring.returncode == 2
    warning = (
        "at --speed 600 each hand-off between steps (about 0.3 s) counts as about 3m of exercise time: figures are "
        "for rehearsal; score at --speed 60 or less\n"
    )
    assert fast.stderr == warning + scoring.stderr
    assert scoring.stderr.startswith("cannot reach the Prefect server at http://127.0.0.1:9/api")


def test_end_stops_a_live_exercise_run(cli_env: CliEnv) -> None:
    """`exercise end` on a run playing in another process: ENDEX, and its runner cancels the rest and exits."""
    with Store.open(cli_env.database_url) as store:
        run = play_in_process(store, speed=1)
        for step_id, status in (
            ("assign-roles", "waiting"),
            ("confirm-power-state", "waiting"),
            ("fuel-callout", "skipped"),
        ):
            run.wait_for_step(step_id, status)
        result = cli_env.bcm("exercise", "end", run.run_id[:8], "--by", "Edward Deming")
        assert run.result().status == "cancelled"
        played = store.get_exercise_run(run.run_id)
        assert played is not None and played.endex_at is not None
        cancelled = [s.step_id for s in store.get_steps(run.run_id) if s.status == "cancelled"]
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            f"ENDEX at {played.endex_at:%H:%M:%S} UTC: Edward Deming ended exercise {TABLETOP}, run {run.run_id[:8]}\n"
            f"run {run.run_id[:8]} cancelled: {len(cancelled)} steps cancelled, people waiting on it released\n"
        )
        assert {"assign-roles", "confirm-power-state", "schedule-aar"} <= set(cancelled)
        assert (store.get_run(run.run_id).error, played.ended_by) == (
            "ENDEX: Edward Deming ended the exercise",
            "Edward Deming",
        )


def test_end_cancels_an_interrupted_exercise_run_once(cli_env: CliEnv) -> None:
    """`exercise end` on a run whose runner died cancels it in the store; ending or resuming it again: exit 2."""
    started = clock.now() - timedelta(minutes=1)  # no heartbeat for a minute: interrupted
    with Store.open(cli_env.database_url) as store:
        record = begin_exercise(store, tabletop(), speed=1, triggered_by="test", now=lambda: started).record
    first = cli_env.bcm("exercise", "end", record.short_id, "--by", "Edward Deming")
    again = cli_env.bcm("exercise", "end", record.short_id, "--by", "Edward Deming")
    resumed = cli_env.bcm("exercise", "run", TABLETOP, "--resume", record.short_id)
    with Store.open(cli_env.database_url) as store:
        played = store.get_exercise_run(record.id)
        assert played is not None and played.endex_at is not None
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[1] == (
            f"run {record.short_id} had no runner: cancelled here, its remaining steps cancelled and injects to come "
            "skipped"
        )
        assert store.get_run(record.id).status == "cancelled"
        assert {(s.status, s.reason) for s in store.get_steps(record.id)} == {
            ("cancelled", "ENDEX: Edward Deming ended the exercise")
        }
        assert [(i.number, i.status, i.reason) for i in store.get_injects(record.id)] == [
            (n, "skipped", "not delivered before ENDEX (Edward Deming)") for n in (1, 2, 3, 4, 5)
        ]
    assert (again.returncode, again.stderr) == (
        2,
        f"exercise run {record.short_id} has ended already: ENDEX at {played.endex_at:%Y-%m-%d %H:%M:%S} UTC "
        "(Edward Deming)\n",
    )
    assert (resumed.returncode, resumed.stderr) == (
        2,
        f"exercise run {record.short_id} has ended: ENDEX at {played.endex_at:%Y-%m-%d %H:%M:%S} UTC\n",
    )


@pytest.mark.prefect
def test_exercise_run_plays_the_tabletop_through_prefect(prefect_cli_env: CliEnv) -> None:
    """`exercise run --speed 600 --auto-respond --json`: succeeds STARTEX to ENDEX, injects kept, [EXERCISE] only."""
    result = prefect_cli_env.bcm("exercise", "run", TABLETOP, "--speed", "600", "--auto-respond", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["exercise"], doc["mode"], doc["status"], doc["speed"], doc["ended_by"]) == (
        TABLETOP, "exercise", "succeeded", 600.0, "played out",
    )  # fmt: skip
    injects = {i["number"]: i for i in doc["injects"]}
    assert sorted(injects) == [1, 2, 3, 4, 5]
    assert [injects[n]["status"] for n in (1, 2, 4, 5)] == ["delivered"] * 4
    assert injects[3]["status"] in ("delivered", "skipped")  # unless confirm-power-state: a race at this speed
    assert injects[5]["message"] in result.stderr  # a console inject: printed for the controller
    assert "at --speed 600 each hand-off between steps (about 0.3 s) counts as about 3m of exercise time" in (
        result.stderr
    )
    with Store.open(prefect_cli_env.database_url) as store:
        record = store.get_run(doc["run_id"])
        marks = {m.milestone: m.at for m in store.get_marks(record.id)}
        assert (marks["startex"], marks["endex"]) == (record.started_at, record.ended_at)
        assert marks["endex"].isoformat() == doc["endex"]
        assert record.flow_run_id is not None
    transcript = [json.loads(line) for line in (prefect_cli_env.home / "transcript.jsonl").read_text().splitlines()]
    posts = [c for c in transcript if c["method"] == "chat.postMessage"]
    assert [p["text"][:11] for p in posts] == ["[EXERCISE] "] * len(posts)
    assert injects[1]["message"] in [p["text"] for p in posts if p["channel"] == "bcm-exercises"]
    assert {p["channel"] for p in posts if p["text"] == injects[2]["message"]} == {"U024ELIJAH", "U025LEWISL"}
    metrics = json.loads(prefect_cli_env.bcm("metrics", "--json").stdout)
    assert {g["mode"] for g in metrics["groups"]} == {"exercise"}
