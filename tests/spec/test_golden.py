"""Golden tests: every invalid runbook under tests/fixtures/ and the exact problems it yields."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bcm.spec import validate

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CASES = sorted(p for p in (FIXTURES / "invalid").glob("*.yaml"))


def problems_text(paths: list[Path]) -> str:
    _, problems = validate(paths, library_root=FIXTURES)
    return "".join(f"{p}\n" for p in sorted(problems))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_runbook_problems_match_golden(case: Path) -> None:
    """Each invalid fixture reports exactly the problems in its .expected file, with file:line:col."""
    expected_file = case.with_suffix(".expected")
    actual = problems_text([case.relative_to(ROOT)])
    if os.environ.get("BCM_UPDATE_GOLDEN"):
        expected_file.write_text(actual, encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8")
    assert actual, "an invalid fixture must yield at least one problem"


def test_runbook_id_used_twice_in_library() -> None:
    """Two runbooks with one id: the second is reported at its id key, naming where the first one's is."""
    actual = problems_text([Path("tests/fixtures/dupe-ids")])
    assert actual == (
        "tests/fixtures/dupe-ids/two.yaml:5:1: id: runbook id 'same-id' is also used by "
        "tests/fixtures/dupe-ids/one.yaml:3:1: ids must be unique\n"
    )


def test_valid_fixture_has_no_problems() -> None:
    """The valid fixture runbook loads with no problems."""
    loaded, problems = validate([Path("tests/fixtures/valid")], library_root=FIXTURES)
    assert problems == []
    assert [item.runbook.id for item in loaded] == ["voice-outage"]
