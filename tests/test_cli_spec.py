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
    """`bcm schema` prints the JSON Schema with the step kinds and the common keys in it."""
    result = bcm("schema")
    schema = json.loads(result.stdout)
    assert result.returncode == 0
    assert schema["title"] == "bcm runbook (format version 1)"
    assert sorted(schema["$defs"]["Step"]["properties"])[:5] == ["approve", "call", "exercise", "fulfils", "http"]


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
    """`bcm show --mermaid`: phases as subgraphs, `when` and `marks` in the box, one arrow per dependency."""
    result = bcm("show", "tests/fixtures/valid/voice-outage.yaml", "--mermaid")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "flowchart TD\n"
        "  subgraph prevention\n"
        '    s_sbc_health["sbc-health<br/><small>run echo ok {{ params.site }}</small>"]\n'
        "  end\n"
        "  subgraph communication\n"
        '    s_declare["declare<br/><small>notify exec</small><br/>marks: declared"]\n'
        "  end\n"
        "  subgraph response\n"
        '    s_confirm["confirm<br/><small>approve by incident_commander, timeout 30m</small>'
        '<br/>marks: acknowledged"]\n'
        '    s_failover["failover<br/><small>run echo failover {{ params.site }}</small>'
        "<br/>when: steps['confirm'].output.approved<br/>marks: mitigated\"]\n"
        "  end\n"
        "  subgraph recovery\n"
        '    s_verify["verify<br/><small>manual by voice_ops</small><br/>marks: recovered"]\n'
        "  end\n"
        "  s_confirm --> s_failover\n"
        "  s_failover --> s_verify\n"
    )


def test_show_unknown_runbook_suggests_nearest() -> None:
    """An unknown runbook id: exit 2 and the nearest id suggested."""
    result = bcm("show", "voice-outag", runbooks=FIXTURES / "valid")
    assert result.returncode == 2
    assert "no runbook 'voice-outag'" in result.stderr
    assert "(did you mean 'voice-outage'?)" in result.stderr


def test_validation_error_on_line_100_prints_its_place_literally(tmp_path: Path) -> None:
    """A problem on line 100 prints as `x.yaml:100:1:`: no emoji code (`:100:`) is turned into an emoji."""
    (tmp_path / "x.yaml").write_text("# padding\n" * 99 + "version: 1\n")
    result = bcm("validate", "x.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "5 problems in 1 path(s)\n")
    assert result.stdout == "".join(
        f"x.yaml:100:1: missing required key '{key}'\n" for key in ("id", "owner", "phases", "severity", "title")
    )


MARKUP_RUNBOOK = """\
version: 1
id: fire-drill
title: "[bold]Fire :fire: drill[/bold]"
owner: voice_ops
severity: sev2
services: [voice-core]
parameters:
  room: {type: string, default: "[red]B:100:[/red]", description: "Where the :fire: is [i]now[/i]"}
phases:
  response:
    - id: evacuate
      title: "Leave [bold]now[/] :runner:"
      notify: {to: [exec], message: "Fire :fire: in {{ params.room }}"}
"""


def _markup_library(tmp_path: Path) -> Path:
    library = tmp_path / "lib"
    (library / "catalog").mkdir(parents=True)
    for name in ("services.yaml", "stakeholders.yaml"):
        (library / "catalog" / name).write_text((FIXTURES / "catalog" / name).read_text())
    (library / "fire-drill.yaml").write_text(MARKUP_RUNBOOK)
    return library


def test_list_prints_markup_and_emoji_codes_in_a_title_literally(tmp_path: Path) -> None:
    """`bcm list`: a title with `[bold]` and `:fire:` is printed as written, not styled or turned into 🔥."""
    result = bcm("list", runbooks=_markup_library(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[4] == (
        "│ fire-drill │ [bold]Fire :fire: drill[/bold] │ voice_ops │ sev2 │ voice-core │ 2h  │ -             │ "
        "never reviewed │"
    )


def test_show_prints_markup_and_emoji_codes_in_data_literally(tmp_path: Path) -> None:
    """`bcm show`: title, parameter default and description, step title: all printed as written."""
    result = bcm("show", "fire-drill", runbooks=_markup_library(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "[bold]Fire :fire: drill[/bold] (fire-drill) — sev2, owner voice_ops"
    assert lines[14] == "│ room │ string │ no       │ [red]B:100:[/red] │ Where the :fire: is [i]now[/i] │"
    assert lines[-1] == "    └── evacuate — Leave [bold]now[/] :runner:; notify exec"


def test_dry_run_prints_emoji_codes_in_rendered_messages_literally(tmp_path: Path) -> None:
    """`bcm run --dry-run`: a message's `:fire:` and a parameter's `[red]` are shown as Slack will get them."""
    result = bcm("run", "fire-drill", "--dry-run", runbooks=_markup_library(tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "Dry run of fire-drill (real): nothing is executed",
        "wave 1 (these start together)",
        "  response/evacuate: notify exec: Fire :fire: in [red]B:100:[/red]",
    ]


def table_rows(lines: list[str], title: str) -> list[tuple[str, ...]]:
    """The cells of a rich table printed under ``title``, header first, a wrapped cell's lines joined."""
    start = lines.index(title) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    rows: list[list[str]] = []
    for line in lines[start:end]:
        if line[0] not in "┃│":
            continue
        cells = [cell.strip() for cell in line[1:-1].split(line[0])]
        if rows and line[0] == "│" and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return [tuple(row) for row in rows]


def test_show_lists_the_runbooks_obligations() -> None:
    """`bcm show ransomware`: each clock with its name, period, start, the steps fulfilling it and its condition."""
    result = bcm("show", "ransomware", runbooks=ROOT / "runbooks")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert table_rows(lines, "Obligations") == [
        ("obligation", "name", "clock", "starts at", "fulfilled by", "when"),
        (
            "gdpr-art33",
            "Personal-data breach notification to the supervisory authority",
            "72 hours",
            "aware",
            "regulator-clock",
            "params.personal_data_involved",
        ),
        ("nis2-early-warning", "NIS2 early warning", "24 hours", "aware", "nis2-early-warning", "always"),
        ("nis2-notification", "NIS2 incident notification", "72 hours", "aware", "nis2-notification", "always"),
        ("nis2-final", "NIS2 final report", "1 month", "nis2-notification fulfilled", "nis2-final-report", "always"),
        (
            "dora-initial",
            "DORA initial notification of a major ICT-related incident",
            "4 hours, at most 24 hours after aware",
            "classified_major",
            "dora-initial-report",
            "params.financial_entity",
        ),
        (
            "dora-intermediate",
            "DORA intermediate report",
            "72 hours",
            "dora-initial fulfilled",
            "dora-intermediate-report",
            "params.financial_entity",
        ),
        (
            "dora-final",
            "DORA final report",
            "1 month",
            "dora-intermediate fulfilled",
            "dora-final-report",
            "params.financial_entity",
        ),
        (
            "sec-8k-item-1.05",
            "Form 8-K Item 1.05 (material cybersecurity incident)",
            "4 business days",
            "materiality_determined",
            "sec-8k",
            "params.sec_registrant",
        ),
    ]
    assert [line for line in lines if "fulfils gdpr-art33" in line] == [
        "│   ├── regulator-clock — Personal-data breach notification (72 hours); manual by privacy; after awareness; "
        "when {{ params.personal_data_involved }}; fulfils gdpr-art33",
    ]


def test_show_gives_a_programmes_own_period_and_a_fulfilling_milestone() -> None:
    """`bcm show vuln-disclosure`: the runbook's period beside the catalog's, a milestone where no step fulfils."""
    result = bcm("show", "vuln-disclosure", runbooks=ROOT / "runbooks")
    assert (result.returncode, result.stderr) == (0, "")
    assert table_rows(result.stdout.splitlines(), "Obligations")[1:] == [
        (
            "vdp-acknowledge",
            "Acknowledge the researcher",
            "1 day (the runbook's; catalog: 3 business days)",
            "received",
            "milestone acknowledged",
            "always",
        ),
        ("vdp-disclosure", "Coordinated disclosure", "90 days", "received", "close-invalid, publish", "always"),
    ]


def test_the_schema_offers_obligations_and_fulfils() -> None:
    """The JSON Schema has the top-level `obligations` list of {obligation, when, period} and a step's `fulfils`."""
    from bcm.spec.schema import runbook_schema

    definitions = runbook_schema()["$defs"]
    entry = definitions["RunbookObligation"]  # type: ignore[index]
    assert (sorted(entry["properties"]), entry["required"]) == (["obligation", "period", "when"], ["obligation"])
    assert runbook_schema()["properties"]["obligations"]["items"] == {"$ref": "#/$defs/RunbookObligation"}  # type: ignore[index]
    assert definitions["Step"]["properties"]["fulfils"]["items"]["pattern"] == "^[a-z0-9][a-z0-9.-]*$"  # type: ignore[index]
