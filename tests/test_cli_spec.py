"""The validate, schema, list and show commands, run as a user runs them (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def bcm(*args: str, runbooks: Path = FIXTURES, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCM_RUNBOOKS": str(runbooks), "BCM_HOME": str(cwd / ".bcm-test")}
    return subprocess.run(
        [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_validate_valid_folder_exits_0() -> None:
    """A valid folder: exit 0, nothing on stdout, a count on stderr."""
    result = bcm("validate", "tests/fixtures/valid")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "1 runbook valid\n")


def test_validate_invalid_file_prints_problems_one_a_line_and_exits_1() -> None:
    """Problems go to stdout one a line as path:line:col: where: message; exit 1."""
    result = bcm("validate", "tests/fixtures/invalid/cycle.yaml")
    assert result.returncode == 1
    assert result.stdout == (
        "tests/fixtures/invalid/cycle.yaml:10:14: phases.response[0].needs: dependency cycle: "
        "isolate → restore → image → isolate (a step without needs follows the one written before it)\n"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing.yaml", "missing.yaml: no such file or folder\n"),
        ("pyproject.toml", "pyproject.toml: not a YAML file (expected .yaml or .yml)\n"),
    ],
)
def test_bad_path_is_one_line_and_exit_2(path: str, message: str) -> None:
    """A missing or non-YAML path: one line on stderr, exit 2, no traceback."""
    result = bcm("validate", path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_schema_matches_committed_file() -> None:
    """runbooks/runbook.schema.json is the schema bcm generates: regenerate with `bcm schema`."""
    from bcm.spec.schema import runbook_schema_text

    committed = (ROOT / "runbooks" / "runbook.schema.json").read_text(encoding="utf-8")
    assert committed == runbook_schema_text(), "stale schema: run `bcm schema > runbooks/runbook.schema.json`"


def test_schema_command_prints_json_schema() -> None:
    """`bcm schema` prints the JSON Schema with the step kinds in it."""
    result = bcm("schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0
    assert schema["title"] == "bcm runbook (format version 1)"
    assert sorted(schema["$defs"]["Step"]["properties"])[:5] == ["approve", "call", "exercise", "http", "id"]


def test_list_json_shows_review_status_and_rto(tmp_path: Path) -> None:
    """`bcm list --json` gives id, owner, severity, services, effective RTO and review status."""
    library = tmp_path / "lib"
    (library / "catalog").mkdir(parents=True)
    for name in ("services.yaml", "stakeholders.yaml"):
        (library / "catalog" / name).write_text((FIXTURES / "catalog" / name).read_text())
    text = (FIXTURES / "valid" / "voice-outage.yaml").read_text()
    (library / "voice-outage.yaml").write_text(text)
    (library / "old.yaml").write_text(
        text.replace("id: voice-outage", "id: old-plan")
        .replace("2026-05-01", "2024-01-15")
        .replace("targets: {rto: 1h}\n", "")
    )
    result = bcm("list", "--json", runbooks=library)
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)["runbooks"]}
    assert rows["voice-outage"]["rto"] == "1h"
    assert rows["old-plan"]["rto"] == "2h"  # from the voice-core BIA
    assert rows["old-plan"]["review_status"] == "OVERDUE"
    assert rows["old-plan"]["review_due"] == "2025-01-14"
    assert rows["voice-outage"]["services"] == ["voice-core"]


def test_list_on_invalid_library_exits_2_with_problems(tmp_path: Path) -> None:
    """A library with an invalid runbook cannot be listed: the problems say why."""
    library = tmp_path / "lib"
    (library / "catalog").mkdir(parents=True)
    for name in ("services.yaml", "stakeholders.yaml"):
        (library / "catalog" / name).write_text((FIXTURES / "catalog" / name).read_text())
    (library / "bad.yaml").write_text("version: 1\nid: bad\n")
    result = bcm("list", runbooks=library, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "lib/bad.yaml:1:1: missing required key 'owner'"


def test_show_mermaid_draws_the_step_graph() -> None:
    """`bcm show --mermaid` draws phases as subgraphs and dependencies as edges."""
    result = bcm("show", "tests/fixtures/valid/voice-outage.yaml", "--mermaid")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    assert "  subgraph recovery" in lines
    assert "  s_confirm -- \"when steps['confirm'].output.approved\" --> s_failover" in lines
    assert "  s_failover --> s_verify" in lines


def test_show_unknown_runbook_suggests_nearest() -> None:
    """An unknown runbook id: exit 2 and the nearest id suggested."""
    result = bcm("show", "voice-outag", runbooks=FIXTURES / "valid")
    assert result.returncode == 2
    assert "no runbook 'voice-outag'" in result.stderr
    assert "(did you mean 'voice-outage'?)" in result.stderr
