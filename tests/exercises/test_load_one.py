"""One exercise loaded by id: a problem in another exercise file does not stop it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bcm.errors import InputError, SpecError
from bcm.exercises.library import load_exercise
from tests.conftest import ROOT


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped library in which ai-incident-functional names a runbook that does not exist."""
    root = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", root)
    broken = root / "exercises" / "ai-incident-functional.yaml"
    broken.write_text(broken.read_text().replace("runbook: ai-incident\n", "runbook: ai-incidnt\n", 1))
    monkeypatch.chdir(tmp_path)
    return root


def test_another_exercise_with_a_problem_does_not_stop_this_one(library: Path) -> None:
    """fibre-cut-game-day loads although ai-incident-functional has a problem."""
    assert load_exercise("fibre-cut-game-day", library_root=library).exercise.id == "fibre-cut-game-day"


def test_the_exercise_asked_for_reports_only_its_own_problems(library: Path) -> None:
    """Loading the broken exercise by id reports its problem, located, and nothing else."""
    with pytest.raises(SpecError) as caught:
        load_exercise("ai-incident-functional", library_root=library)
    assert [str(p) for p in caught.value.problems] == [
        "runbooks/exercises/ai-incident-functional.yaml:5:10: runbook: unknown runbook 'ai-incidnt' "
        "(did you mean 'ai-incident'?) in the library"
    ]


def test_an_unknown_id_says_other_files_have_problems(library: Path) -> None:
    """An id no valid exercise has: the usual message, plus that some exercise files have problems."""
    with pytest.raises(InputError) as caught:
        load_exercise("fibre-cut-gameday", library_root=library)
    assert str(caught.value) == (
        "no exercise 'fibre-cut-gameday' in runbooks/exercises (did you mean 'fibre-cut-game-day'?): "
        "`bcm exercise plan` lists the exercises (1 exercise file has problems: `bcm validate` lists them)"
    )
