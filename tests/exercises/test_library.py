"""Exercise files checked against the library: the shipped exercises, every kind of problem located, the schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from bcm.engine.plan import Plan
from bcm.exercises.library import LoadedExercise, is_exercise_file, load_exercises, validate_paths
from bcm.exercises.models import MilestoneMeasure, StepMeasure, TargetMeasure, exercise_schema, exercise_schema_text
from bcm.spec.params import resolve_parameters
from bcm.spec.targets import runbook_targets
from bcm.templates import evaluate, truthy
from tests.conftest import ROOT

LIBRARY = ROOT / "runbooks"
SHIPPED = sorted((LIBRARY / "exercises").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../exercise.schema.json\n"

#: An exercise of le-emergency-disclosure with one mistake of each kind the checks find.
MISTAKES = """\
version: 1
id: mistakes
title: One mistake of each kind
runbook: le-emergency-disclosure
type: drill
scope: The desk.
scenario: A request arrives at night.
sponsor: coo
participants: le_liaison
evaluators: [privacy]
parameters: {request_ref: EX-1, agency: Wessex, emergency: kidnapping, data_requested: cell-location}
objectives:
  - id: ack
    title: Acknowledge within 15 minutes
    capability: operational-communications
    measure: {milestone: acknowledged, within: 15m}
  - id: verify
    title: Verify by calling back
    capability: access-control-and-identity-verification
    measure: {step: verify-requestor}
msel:
  - number: 1
    at: 0m
    from: continuity_manager
    to: le_liason
    message: A request arrives.
    expected_action: The desk logs it.
    objective: ack
  - number: 1
    at: 10m
    from: continuity_manager
    to: le_liaison
    message: The caller chases.
    expected_action: The desk calls back a known number.
    objective: verification
responses:
  - {step: log-intake, by: Ruth Bader, after: 5m}
"""

UNKNOWN_RUNBOOK = """\
version: 1
id: unknown-runbook
title: A runbook that is not there
runbook: le-emergency-disclosur
type: drill
scope: The desk.
scenario: A request arrives.
sponsor: coo
participants: [le_liaison]
evaluators: [privacy]
objectives:
  - {id: ack, title: Acknowledge, capability: operational-communications}
"""

SYNTAX_ERROR = """\
version: 1
id: syntax
objectives:
  - {id: ack, title: Acknowledge
msel: []
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problem_lines(paths: list[Path]) -> list[str]:
    return [str(p) for p in sorted(validate_paths(paths, library_root=LIBRARY).problems)]


def rehearse(loaded: LoadedExercise) -> tuple[list[str], dict[str, timedelta]]:
    """Walk the runbook as an exercise run with the scripted answers: the person steps reached and
    when each step ends (every automated step succeeds at once, a person answers after `after`)."""
    exercise, runbook = loaded.exercise, loaded.runbook.runbook
    given = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in exercise.parameters.items()}
    params, problems = resolve_parameters(runbook, given)
    assert problems == []
    plan = Plan.build(runbook)
    answers = {r.step: r for r in exercise.responses}
    states: dict[str, dict[str, object]] = {}
    ends: dict[str, timedelta] = {}
    reached: list[str] = []
    while len(ends) < len(plan.steps):
        for planned in plan.ready(done=ends.keys(), started=()):
            step = planned.step
            start = max((ends[n] for n in planned.needs), default=timedelta(0))
            context = {"params": params, "steps": states}
            if step.exercise_behaviour == "skip" or (step.when and not truthy(evaluate(step.when, context))):
                states[step.id], ends[step.id] = {"status": "skipped", "output": None}, start
            elif planned.needs_person:
                reached.append(step.id)
                answer = answers.get(step.id)
                approved = answer is None or answer.decision == "approve"
                status = "succeeded" if approved else "rejected"
                states[step.id] = {"status": status, "output": {"approved": approved}}
                ends[step.id] = start + (answer.after if answer else timedelta(0))
            else:
                states[step.id], ends[step.id] = {"status": "succeeded", "output": None}, start
    return reached, ends


# --------------------------------------------------------------------------- the shipped exercises


def test_every_shipped_exercise_validates() -> None:
    """The library's exercises are valid: four, of four runbooks, of four types."""
    library = load_exercises(LIBRARY)
    found = sorted((e.exercise.id, e.exercise.runbook, e.exercise.type) for e in library.exercises.values())
    assert found == [
        ("ai-incident-functional", "ai-incident", "functional"),
        ("dc-power-loss-tabletop", "dc-power-loss", "tabletop"),
        ("fibre-cut-game-day", "fibre-cut", "game-day"),
        ("le-emergency-disclosure-drill", "le-emergency-disclosure", "drill"),
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_exercise_names_the_schema_on_its_first_line(path: Path) -> None:
    """Every exercise file starts with the yaml-language-server line that points editors at the schema."""
    assert path.read_text(encoding="utf-8").splitlines(keepends=True)[0] == SCHEMA_LINE


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_exercise_scripts_every_person_step_its_run_reaches(path: Path) -> None:
    """`--auto-respond` can play each exercise unattended: every person step the run reaches has an answer."""
    loaded = load_exercises(LIBRARY).get(path.stem)
    reached, _ = rehearse(loaded)
    assert sorted(set(reached) - {r.step for r in loaded.exercise.responses}) == []


@pytest.mark.parametrize(
    ("exercise", "objectives_met"),
    [
        (
            "ai-incident-functional",
            ["breach-assessed", "contained-fast", "containment-decided", "regulator-report", "served-within-rto"],
        ),
        ("dc-power-loss-tabletop", ["acknowledge-fast", "load-safe", "power-state-known", "recover-within-rto"]),
        ("fibre-cut-game-day", ["crew-eta", "detect-and-locate", "recovered-within-rto", "steady-state-holds"]),
        (
            "le-emergency-disclosure-drill",
            ["acknowledge-15m", "closed-within-rto", "legal-within-hour", "verify-by-callback"],
        ),
    ],
)
def test_scripted_play_meets_the_timed_objectives(exercise: str, objectives_met: list[str]) -> None:
    """The scripted answers play a competent team: every timed objective and the RTO are met."""
    loaded = load_exercises(LIBRARY).get(exercise)
    _, ends = rehearse(loaded)
    steps = loaded.runbook.runbook.steps(include_prevention=False)
    targets = runbook_targets(loaded.runbook, loaded.catalog)
    reached = {"startex": timedelta(0)} | {step.marks: ends[step.id] for _, step in steps if step.marks}
    met = []
    for objective in loaded.exercise.objectives:
        measure = objective.measure
        if isinstance(measure, StepMeasure) and measure.within is not None:
            done = ends[measure.step]
        elif isinstance(measure, MilestoneMeasure):
            done = reached[measure.milestone]
        elif isinstance(measure, TargetMeasure) and measure.target == "rto" and targets.rto is not None:
            if reached["recovered"] - reached["declared"] <= targets.rto:
                met.append(objective.id)
            continue
        else:
            continue
        if done - reached[measure.of] <= measure.within:
            met.append(objective.id)
    assert sorted(met) == objectives_met


def test_the_exercise_schema_accepts_the_shipped_exercises() -> None:
    """runbooks/exercise.schema.json, as an editor would use it, finds nothing wrong in the shipped files."""
    validator = jsonschema.Draft202012Validator(json.loads((LIBRARY / "exercise.schema.json").read_text()))
    errors = {p.name: [e.message for e in validator.iter_errors(yaml.safe_load(p.read_text()))] for p in SHIPPED}
    assert errors == {p.name: [] for p in SHIPPED}


def test_exercise_schema_matches_committed_file() -> None:
    """runbooks/exercise.schema.json is the schema bcm generates: regenerate with `make schema`."""
    committed = (LIBRARY / "exercise.schema.json").read_text(encoding="utf-8")
    assert committed == exercise_schema_text(), "stale schema: run `make schema`"


def test_exercise_schema_offers_the_measures_as_one_choice() -> None:
    """A measure is one of four kinds (or null) at one level, each requiring the key that names it."""
    definitions = exercise_schema()["$defs"]
    measure = definitions["Objective"]["properties"]["measure"]  # type: ignore[index]
    kinds = [choice.get("$ref", "null").rsplit("/", 1)[-1] for choice in measure["oneOf"]]
    assert kinds == ["MilestoneMeasure", "StepMeasure", "CadenceMeasure", "TargetMeasure", "null"]
    required = [definitions[kind]["required"][0] for kind in kinds[:4]]  # type: ignore[index]
    assert required == ["milestone", "step", "cadence", "target"]
    assert len(measure["examples"]) == 4


# --------------------------------------------------------------------------- problems, located


def test_every_kind_of_problem_is_reported_at_once_and_located(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A syntax error, a wrong type, unknown role, step, runbook and objective, a duplicate inject, a
    response by a non-holder: all in one pass, each at its line and column."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "exercises"
    files = [
        write(folder, n, t) for n, t in (("a.yaml", MISTAKES), ("b.yaml", UNKNOWN_RUNBOOK), ("c.yaml", SYNTAX_ERROR))
    ]
    assert problem_lines(files) == [
        "exercises/a.yaml:9:15: participants: expected a list, got 'le_liaison'",
        "exercises/a.yaml:20:21: objectives[1].measure.step: unknown step 'verify-requestor' "
        "(did you mean 'verify-requester'?) in runbook le-emergency-disclosure",
        "exercises/a.yaml:25:9: msel[0].to: unknown role 'le_liason' (did you mean 'le_liaison'?) in stakeholders.yaml",
        "exercises/a.yaml:29:13: msel[1].number: inject number 1 is used twice: numbers must be unique",
        "exercises/a.yaml:35:16: msel[1].objective: unknown objective 'verification' (objectives: ack, verify)",
        "exercises/a.yaml:37:28: responses[0].by: 'Ruth Bader' does not hold role le_liaison, which step "
        "log-intake waits for (holders: Anne Neville, Joan Clarke, Mavis Batey)",
        "exercises/b.yaml:4:10: runbook: unknown runbook 'le-emergency-disclosur' "
        "(did you mean 'le-emergency-disclosure'?) in the library",
        "exercises/c.yaml:5:5: YAML syntax error: did not find expected ',' or '}' "
        "(while parsing a flow mapping that starts at line 4, column 5)",
    ]


def test_measure_problems_name_the_path_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No union tag in the path (`measure.milestone`, not `measure.milestone.milestone`); unknown keys get a hint."""
    monkeypatch.chdir(tmp_path)
    text = MISTAKES.replace("participants: le_liaison", "participants: [le_liaison]").replace(
        "{milestone: acknowledged, within: 15m}", "{milestone: acknowledgd, within: 15 minutes, of: startex, by: x}"
    )
    text = text.replace("{step: verify-requestor}", "{tgt: rto}")
    lines = problem_lines([write(tmp_path / "exercises", "m.yaml", text)])
    assert lines[:4] == [
        "exercises/m.yaml:16:26: objectives[0].measure.milestone: expected impact_started, detected, acknowledged, "
        "declared, mitigated, recovered, resolved, stood_down, aware, classified_major, materiality_determined, "
        "received, startex, inject_delivered or endex, got 'acknowledgd'",
        "exercises/m.yaml:16:47: objectives[0].measure.within: '15 minutes' is not a duration: write a whole "
        "number and a unit, such as 90s, 15m, 4h or 2d",
        "exercises/m.yaml:16:72: objectives[0].measure: unknown key 'by' (allowed: milestone, within, of)",
        "exercises/m.yaml:20:15: objectives[1].measure: unknown key 'tgt' (did you mean 'target'?): "
        "a measure gives one of 'milestone', 'step', 'cadence' or 'target'",
    ]


def test_parameters_schedule_game_day_answers_and_inject_templates_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runbook's parameters, a schedule Prefect can fire, game_day only on game days, answers
    before the step times out and only to person steps, inject templates against the runbook."""
    monkeypatch.chdir(tmp_path)
    text = (
        MISTAKES.replace("participants: le_liaison", "participants: [le_liaison]")
        .replace("emergency: kidnapping", "emergency: kidnaping, site: x")
        .replace("to: le_liason", "to: le_liaison")
        .replace("{step: verify-requestor}", "{step: verify-requester}")
        .replace("  - number: 1\n    at: 10m", "  - number: 2\n    at: 10m")
        .replace("objective: verification", "objective: verify")
        .replace("message: The caller chases.", "message: 'The caller {{ params.agencyy }} chases {{ exercise.id }}.'")
        .replace("by: Ruth Bader, after: 5m}", "by: Joan Clarke, after: 10m}\n  - {step: alert-desk, by: Joan Clarke}")
        .replace(
            "evaluators: [privacy]\n",
            "evaluators: [privacy]\n"
            'schedule: {cron: "0 25 * * *", timezone: Europe/Londn}\n'
            "game_day: {hypothesis: h, blast_radius: b, abort_when: [x]}\n",
        )
    )
    assert problem_lines([write(tmp_path / "exercises", "p.yaml", text)]) == [
        "exercises/p.yaml:11:18: schedule.cron: '0 25 * * *' is not a cron expression Prefect can schedule: Bad hour",
        "exercises/p.yaml:11:42: schedule.timezone: unknown time zone 'Europe/Londn': use an IANA name such as "
        "Europe/London",
        "exercises/p.yaml:12:11: game_day: 'game_day' (hypothesis, blast radius, abort conditions) is for type "
        "game-day, not drill",
        "exercises/p.yaml:13:60: parameters.emergency: parameter 'emergency' of runbook le-emergency-disclosure: "
        "expected one of threat-to-life, child-safety, kidnapping, terrorism, missing-vulnerable-person, other, "
        "got 'kidnaping'",
        "exercises/p.yaml:13:71: parameters.site: runbook le-emergency-disclosure has no parameter 'site' (it takes: "
        "agency, data_requested, disclosure_portal_url, emergency, followup_days, request_log_backup_url, request_ref)",
        "exercises/p.yaml:35:14: msel[1].message: parameter 'agencyy' is not a parameter of runbook "
        "le-emergency-disclosure (did you mean 'agency'?)",
        "exercises/p.yaml:39:48: responses[0].after: step log-intake times out after 10m, before this answer "
        "after 10m: answer sooner",
        "exercises/p.yaml:40:12: responses[1].step: step alert-desk is a notify step: only approve and manual "
        "steps wait for an answer",
    ]


def test_inject_template_problems_are_on_their_line_and_cron_has_five_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template problem on the second line of a block message points there; the exercise's own
    names are known; a six-field cron is refused with the five fields named."""
    monkeypatch.chdir(tmp_path)
    text = (
        MISTAKES.replace("participants: le_liaison", "participants: [le_liaison]")
        .replace("to: le_liason", "to: le_liaison")
        .replace("{step: verify-requestor}", "{step: verify-requester}")
        .replace("  - number: 1\n    at: 10m", "  - number: 2\n    at: 10m")
        .replace("objective: verification", "objective: verify")
        .replace("by: Ruth Bader", "by: Joan Clarke")
        .replace(
            "message: The caller chases.",
            "message: |\n      Inject {{ inject.number }} of {{ exercise.title }}:\n"
            "      the caller {{ caller }} chases.",
        )
        .replace("evaluators: [privacy]\n", 'evaluators: [privacy]\nschedule: {cron: "0 0 10 * * 1"}\n')
    )
    assert problem_lines([write(tmp_path / "exercises", "t.yaml", text)]) == [
        "exercises/t.yaml:11:18: schedule.cron: '0 0 10 * * 1' has 6 fields: write five "
        "(minute hour day-of-month month day-of-week)",
        "exercises/t.yaml:36:7: msel[1].message: unknown name 'caller' in template "
        "(known: exercise, inject, params, run, runbook, services, steps, targets)",
    ]


def test_expected_action_templates_are_checked_like_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An undeclared parameter or unknown filter in an expected_action is a located problem, as in a message."""
    monkeypatch.chdir(tmp_path)
    text = (
        MISTAKES.replace("participants: le_liaison", "participants: [le_liaison]")
        .replace("to: le_liason", "to: le_liaison")
        .replace("{step: verify-requestor}", "{step: verify-requester}")
        .replace("  - number: 1\n    at: 10m", "  - number: 2\n    at: 10m")
        .replace("objective: verification", "objective: verify")
        .replace("by: Ruth Bader", "by: Joan Clarke")
        .replace(
            "expected_action: The desk logs it.",
            "expected_action: 'The desk logs it within {{ params.followupdays }} days ({{ exercise.id }}).'",
        )
        .replace(
            "expected_action: The desk calls back a known number.",
            "expected_action: >-\n      Inject {{ inject.number }}: the desk calls back\n"
            "      {{ params.agency | shout }}.",
        )
    )
    assert problem_lines([write(tmp_path / "exercises", "e.yaml", text)]) == [
        "exercises/e.yaml:27:22: msel[0].expected_action: parameter 'followupdays' is not a parameter of runbook "
        "le-emergency-disclosure (did you mean 'followup_days'?)",
        "exercises/e.yaml:35:7: msel[1].expected_action: unknown filter 'shout'",
    ]


def test_an_exercise_of_a_runbook_with_problems_is_not_checked_against_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runbook's problems are reported once; its exercise says why it was not checked, not 'unknown runbook'."""
    monkeypatch.chdir(tmp_path)
    for name in ("services.yaml", "stakeholders.yaml", "obligations.yaml"):
        write(tmp_path / "lib" / "catalog", name, (LIBRARY / "catalog" / name).read_text(encoding="utf-8"))
    runbook = (LIBRARY / "le-emergency-disclosure.yaml").read_text(encoding="utf-8")
    write(tmp_path / "lib", "le.yaml", runbook.replace("owner: le_liaison", "owner: le_liason"))
    drill = (LIBRARY / "exercises" / "le-emergency-disclosure-drill.yaml").read_text(encoding="utf-8")
    write(tmp_path / "lib" / "exercises", "drill.yaml", drill)
    assert problem_lines([tmp_path / "lib"]) == [
        "lib/exercises/drill.yaml:5:10: runbook: runbook le-emergency-disclosure has problems "
        "(bcm validate lib/le.yaml): the exercise is not checked against it",
        "lib/le.yaml:11:8: owner: unknown role 'le_liason' (did you mean 'le_liaison'?) in stakeholders.yaml",
    ]


def test_an_exercise_file_is_known_by_its_folder_or_its_keys(tmp_path: Path) -> None:
    """In an exercises/ folder, or a mapping with `runbook` and `msel` or `objectives`: an exercise; else a runbook."""
    write(tmp_path / "exercises", "anything.yaml", "version: 1\n")
    write(tmp_path, "loose.yaml", UNKNOWN_RUNBOOK)
    write(tmp_path, "runbook.yaml", (LIBRARY / "dc-power-loss.yaml").read_text(encoding="utf-8"))
    found = [is_exercise_file(tmp_path / p) for p in ("exercises/anything.yaml", "loose.yaml", "runbook.yaml")]
    assert found == [True, True, False]


# --------------------------------------------------------------------------- the commands


def bcm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCM_RUNBOOKS": str(LIBRARY), "BCM_HOME": str(cwd / ".bcm-test")}
    return subprocess.run(
        [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_bcm_validate_reports_an_exercise_problem_and_exits_1(tmp_path: Path) -> None:
    """`bcm validate FILE` on an exercise outside the library: its problem on stdout, exit 1."""
    write(tmp_path, "drill.yaml", UNKNOWN_RUNBOOK)
    result = bcm("validate", "drill.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "1 problem in 1 path(s)\n")
    assert result.stdout == (
        "drill.yaml:4:10: runbook: unknown runbook 'le-emergency-disclosur' "
        "(did you mean 'le-emergency-disclosure'?) in the library\n"
    )


def test_bcm_validate_checks_the_library_and_its_exercises() -> None:
    """`bcm validate` with no path: the runbooks and the exercises, counted apart."""
    result = bcm("validate")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "10 runbooks and 4 exercises valid\n")


def test_bcm_schema_exercise_prints_the_exercise_schema() -> None:
    """`bcm schema --exercise` prints the exercise schema; `bcm schema` stays the runbook's."""
    exercise, runbook = bcm("schema", "--exercise"), bcm("schema")
    assert (exercise.returncode, exercise.stdout) == (0, exercise_schema_text())
    assert json.loads(runbook.stdout)["title"] == "bcm runbook (format version 1)"
