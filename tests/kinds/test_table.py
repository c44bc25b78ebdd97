"""The step-kind table (bcm.kinds.KINDS): it agrees with the vocabulary and the Step model, and
every place that treats kinds differently reads it."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, get_args

import pytest

from bcm.engine.actions import ActionEnv, StepOutcome, execute, simulate
from bcm.engine.context import RunContext, RunInfo
from bcm.engine.plan import PlannedStep
from bcm.kinds import KINDS, PERSON_KINDS, StepKindDef
from bcm.kinds.base import values_at
from bcm.spec import load_one
from bcm.spec.models import Step
from bcm.spec.outline import outline_runbook
from bcm.spec.summary import describe_step
from bcm.vocabulary import STEP_KINDS
from tests.conftest import FIXTURES

#: One step of each kind, as a runbook writes it.
STEPS: dict[str, dict[str, Any]] = {
    "run": {"id": "a", "run": ["scripts/check.sh", "{{ params.site }}"]},
    "http": {"id": "a", "http": {"method": "POST", "url": "https://lb.example/{{ params.site }}"}},
    "call": {"id": "a", "call": "bcm.actions:http_probe", "with": {"url": "https://x.example"}},
    "notify": {"id": "a", "notify": {"to": ["exec", "comms"], "message": "at {{ params.site }}"}},
    "approve": {"id": "a", "approve": {"by": "incident_commander", "prompt": "Holding?", "timeout": "30m"}},
    "manual": {"id": "a", "manual": {"by": "dc_ops", "instructions": "Restore power."}},
    "wait": {"id": "a", "wait": "10m"},
}


def step_of(kind: str) -> Step:
    return Step.model_validate(STEPS[kind])


@functools.cache
def _loaded() -> Any:
    return load_one(str(FIXTURES / "engine" / "readiness.yaml"), library_root=FIXTURES)


def context() -> RunContext:
    loaded, catalog = _loaded()
    run = RunInfo(id="r" * 32, mode="real", started_at=datetime(2026, 5, 1, tzinfo=UTC), triggered_by="test")
    return RunContext(loaded=loaded, catalog=catalog, run=run, params={"site": "lon-dc1"})


class Recorder:
    """An ActionEnv's collaborators that remember what they were asked."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.announced: list[tuple[str, str]] = []

    def env(self) -> ActionEnv:
        return ActionEnv(announce=self.announce, sleep=self.slept.append)

    def announce(self, step: Step, text: str) -> str:
        self.announced.append((step.id, text))
        return f"sent: {text}"


# --------------------------------------------------------------------------- agreement


def test_the_table_lists_the_vocabulary_kinds_in_order() -> None:
    """KINDS has one entry per StepKind, in the order of STEP_KINDS, each under its own name."""
    assert list(KINDS) == list(STEP_KINDS) == ["run", "http", "call", "notify", "approve", "manual", "wait"]
    assert [kind.name for kind in KINDS.values()] == list(STEP_KINDS)


def test_the_step_model_has_one_field_per_kind_typed_with_its_model() -> None:
    """Step's kind fields are the table's names in order; a kind with a model types its field with it."""
    assert [name for name in Step.model_fields if name in KINDS] == list(STEP_KINDS)
    for name, kind in KINDS.items():
        if kind.model is not None:
            assert get_args(Step.model_fields[name].annotation) == (kind.model, type(None)), name
    assert {name for name, kind in KINDS.items() if kind.model is not None} == {"http", "notify", "approve", "manual"}


def test_the_table_says_which_kinds_wait_for_a_person_and_what_they_do_in_exercises() -> None:
    """approve and manual wait for a person; run, http and call are simulated in exercises."""
    assert frozenset({"approve", "manual"}) == PERSON_KINDS
    assert {name: kind.default_exercise for name, kind in KINDS.items()} == {
        "run": "simulate",
        "http": "simulate",
        "call": "simulate",
        "notify": "run",
        "approve": "run",
        "manual": "run",
        "wait": "run",
    }
    assert [name for name, kind in KINDS.items() if kind.execute is None] == ["approve", "manual"]


# --------------------------------------------------------------------------- consult sites


def test_describe_step_reads_each_kinds_describe() -> None:
    """describe_step gives each kind's own line."""
    assert {kind: describe_step(step_of(kind)) for kind in KINDS} == {
        "run": "run scripts/check.sh {{ params.site }}",
        "http": "http POST https://lb.example/{{ params.site }}",
        "call": "call bcm.actions:http_probe",
        "notify": "notify exec, comms",
        "approve": "approve by incident_commander, timeout 30m",
        "manual": "manual by dc_ops",
        "wait": "wait 10m",
    }


def test_needs_person_and_the_person_properties_read_the_table() -> None:
    """needs_person, person_role, person_prompt and exercise_behaviour come from each step's kind."""
    steps = {kind: step_of(kind) for kind in KINDS}
    assert {k: PlannedStep(s, "response", ()).needs_person for k, s in steps.items()} == {
        k: k in ("approve", "manual") for k in KINDS
    }
    assert {k: s.person_role for k, s in steps.items() if s.person_role} == {
        "approve": "incident_commander",
        "manual": "dc_ops",
    }
    assert (steps["approve"].person_prompt, steps["manual"].person_prompt, steps["run"].person_prompt) == (
        "Holding?",
        "Restore power.",
        "",
    )
    assert str(steps["approve"].person_timeout) == "0:30:00"
    assert steps["manual"].person_timeout is None
    assert [s.exercise_behaviour for s in steps.values()] == ["simulate"] * 3 + ["run"] * 4


def test_execute_dispatches_wait_and_notify_to_their_kinds() -> None:
    """A wait step sleeps through env.sleep; a notify step renders its message and hands it to env.announce."""
    recorder = Recorder()
    env = recorder.env()
    assert execute(step_of("wait"), context(), env=env) == StepOutcome("succeeded", output={"waited_s": 600.0})
    assert recorder.slept == [600.0]
    assert execute(step_of("notify"), context(), env=env) == StepOutcome(
        "succeeded", output={"to": ["exec", "comms"], "text": "sent: at lon-dc1"}
    )
    assert recorder.announced == [("a", "at lon-dc1")]


def test_execute_refuses_person_kinds() -> None:
    """approve and manual steps are waited for, not executed: execute says so."""
    for kind in ("approve", "manual"):
        with pytest.raises(ValueError) as caught:
            execute(step_of(kind), context(), env=Recorder().env())
        assert str(caught.value) == f"step 'a' of kind {kind} is not automated"


def test_simulate_says_what_each_kind_would_do() -> None:
    """Simulating renders the kind's description and touches nothing."""
    assert simulate(step_of("run"), context()) == StepOutcome(
        "succeeded",
        output={"simulated": True, "would": "run scripts/check.sh lon-dc1"},
        reason="exercise: simulated",
    )


def test_the_outline_finds_templates_and_roles_at_the_tables_paths() -> None:
    """The loader's outline reads templates and roles where each kind declares them."""
    document = {"phases": {"response": [{**STEPS[kind], "title": "T"} for kind in KINDS]}}
    outline = outline_runbook(document)
    assert [step.templates for step in outline.steps] == [
        ((("title",), "T"), (("run", 0), "scripts/check.sh"), (("run", 1), "{{ params.site }}")),
        ((("title",), "T"), (("http", "url"), "https://lb.example/{{ params.site }}")),
        ((("title",), "T"), (("with", "url"), "https://x.example")),
        ((("title",), "T"), (("notify", "message"), "at {{ params.site }}")),
        ((("title",), "T"), (("approve", "prompt"), "Holding?")),
        ((("title",), "T"), (("manual", "instructions"), "Restore power.")),
        ((("title",), "T"),),
    ]
    assert [step.roles for step in outline.steps] == [
        (),
        (),
        (),
        ((("notify", "to", 0), "exec"), (("notify", "to", 1), "comms")),
        ((("approve", "by"), "incident_commander"),),
        ((("manual", "by"), "dc_ops"),),
        (),
    ]


def test_paths_match_lists_mappings_and_nested_values() -> None:
    """'*' is each item of a list or value of a mapping, '**' the value and all below it; other shapes give nothing."""
    data = {"h": {"headers": {"A": "x", "B": 2}}, "w": {"k": ["y", {"z": "q"}]}, "r": "not a list"}
    assert list(values_at(data, ("h", "headers", "*"))) == [(("h", "headers", "A"), "x")]
    assert list(values_at(data, ("w", "**"))) == [(("w", "k", 0), "y"), (("w", "k", 1, "z"), "q")]
    assert list(values_at(data, ("r", "*"))) == []
    assert list(values_at(data, ("missing", "x"))) == []


# --------------------------------------------------------------------------- adding a kind


class BeepStep(Step):
    """A Step with one more kind field, as adding a kind to bcm/spec/models.py would give."""

    beep: str | None = None


def _beep_describe(step: Step) -> str:
    return f"beep {getattr(step, 'beep', '')}"


def _beep_execute(step: Step, ctx: RunContext, env: ActionEnv) -> StepOutcome:
    return StepOutcome("succeeded", output={"beeped": getattr(step, "beep", None)})


BEEP = StepKindDef(
    name="beep",
    model=None,
    describe=_beep_describe,
    default_exercise="simulate",
    templates=(("beep",),),
    execute=_beep_execute,
)


def test_a_kind_added_to_the_table_is_read_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """With its entry in the table and its field on Step, a new kind validates, describes itself,
    executes, simulates and has its templates checked: no other place names kinds."""
    monkeypatch.setitem(KINDS, "beep", BEEP)
    step = BeepStep.model_validate({"id": "b", "beep": "{{ params.site }}"})
    assert (step.kind, step.exercise_behaviour, step.person_role) == ("beep", "simulate", None)
    assert describe_step(step) == "beep {{ params.site }}"
    assert PlannedStep(step, "response", ()).needs_person is False
    assert execute(step, context(), env=Recorder().env()) == StepOutcome(
        "succeeded", output={"beeped": "{{ params.site }}"}
    )
    assert simulate(step, context()).output == {"simulated": True, "would": "beep lon-dc1"}
    outline = outline_runbook({"phases": {"response": [{"id": "b", "beep": "{{ x }}"}]}})
    assert outline.steps[0].templates == ((("beep",), "{{ x }}"),)
    with pytest.raises(
        ValueError, match=r"exactly one of run, http, call, notify, approve, manual, wait, beep \(found: wait, beep\)"
    ):
        BeepStep.model_validate({"id": "b", "beep": "x", "wait": "1s"})


def test_a_resumed_wait_sleeps_only_what_is_left() -> None:
    """A wait step 40 s into its 60 s when its runner died sleeps 20 s when the run goes on, and
    reports the whole wait."""
    from datetime import timedelta

    from bcm.kinds import wait
    from bcm.kinds.base import ActionEnv
    from bcm.spec.models import Step

    slept: list[float] = []
    step = Step.model_validate({"id": "soak", "wait": "60s"})
    env = ActionEnv(announce=lambda _s, text: text, sleep=slept.append, elapsed=lambda _s: 40.0)
    outcome = wait.execute(step, None, env)  # type: ignore[arg-type]
    assert (slept, outcome.status, outcome.output) == ([20.0], "succeeded", {"waited_s": 60.0})
    env.elapsed = lambda _s: 90.0
    wait.execute(step, None, env)  # type: ignore[arg-type]
    assert slept == [20.0, 0.0]
    assert step.wait == timedelta(seconds=60)
