"""`bcm show` and `bcm run --dry-run`: the plan as people and tools see it, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, ROOT

GRAPH = "tests/fixtures/cli/graph-shapes.yaml"


def bcm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCM_RUNBOOKS": str(FIXTURES), "BCM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )


def test_show_mermaid_draws_exactly_the_plans_order(tmp_path: Path) -> None:
    """--mermaid: one arrow per dependency no other path implies; recovery after the response ends only."""
    result = bcm("show", GRAPH, "--mermaid", home=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "flowchart TD\n"
        "  subgraph prevention\n"
        '    s_check_a["check-a<br/><small>run echo a {{ params.site }}</small>"]\n'
        '    s_check_b["check-b<br/><small>run echo b</small>"]\n'
        '    s_check_c["check-c<br/><small>run echo c</small>"]\n'
        "  end\n"
        "  subgraph communication\n"
        '    s_declare["declare<br/><small>notify exec</small><br/>marks: declared"]\n'
        '    s_update["update<br/><small>notify exec, voice_ops</small>"]\n'
        "  end\n"
        "  subgraph response\n"
        '    s_triage["triage<br/><small>approve by incident_commander, timeout 15m</small><br/>marks: acknowledged"]\n'
        '    s_left["left<br/><small>run echo drain {{ params.site }} {{ params.depth }}</small>"]\n'
        '    s_right["right<br/><small>http POST https://lb.example/{{ params.site }}/isolate</small>'
        "<br/>when: steps['triage'].output.approved\"]\n"
        '    s_isolate["isolate<br/><small>manual by voice_ops</small><br/>marks: mitigated"]\n'
        "  end\n"
        "  subgraph recovery\n"
        '    s_restore["restore<br/><small>wait 1m</small>"]\n'
        '    s_verify["Verify #quot;calls#quot; #lt;100%#gt;<br/><small>run echo verify</small>'
        '<br/>marks: recovered"]\n'
        '    s_report["report<br/><small>notify exec</small>"]\n'
        "  end\n"
        "  s_check_a --> s_check_c\n"
        "  s_declare --> s_update\n"
        "  s_triage --> s_left\n"
        "  s_triage --> s_right\n"
        "  s_declare --> s_right\n"
        "  s_right --> s_isolate\n"
        "  s_left --> s_restore\n"
        "  s_isolate --> s_restore\n"
        "  s_restore --> s_verify\n"
        "  s_left --> s_report\n"
        "  s_isolate --> s_report\n"
    )


def test_show_lists_targets_with_their_source_parameters_and_the_graph(tmp_path: Path) -> None:
    """`bcm show`: targets and where each comes from, every parameter, the steps with what they follow."""
    result = bcm("show", GRAPH, home=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "Graph shapes (graph-shapes) — sev3, owner voice_ops",
        "services: voice-core, dns   review: never reviewed",
        "Targets",
        "┏━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━┓",
        "┃ target ┃ value ┃ from           ┃",
        "┡━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━┩",
        "│ RTO    │ 15m   │ the BIA of dns │",
        "│ RPO    │ 5m    │ the runbook    │",
        "│ MTPD   │ 2h    │ the BIA of dns │",
        "└────────┴───────┴────────────────┘",
        "Parameters",
        "┏━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ name  ┃ type                    ┃ required ┃ default ┃ description            ┃",
        "┡━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ site  │ enum (lon-dc1, man-dc2) │ yes      │ -       │ Affected site          │",
        "│ depth │ integer                 │ no       │ 3       │ How many hops to check │",
        "│ force │ boolean                 │ no       │ -       │ -                      │",
        "└───────┴─────────────────────────┴──────────┴─────────┴────────────────────────┘",
        "tests/fixtures/cli/graph-shapes.yaml",
        "├── prevention (readiness checks: bcm check)",
        "│   ├── check-a — run echo a {{ params.site }}",
        "│   ├── check-b — run echo b",
        "│   └── check-c — run echo c; after check-a",
        "├── communication (starts with response)",
        "│   ├── declare — notify exec; marks declared",
        "│   └── update — notify exec, voice_ops; after declare",
        "├── response",
        "│   ├── triage — approve by incident_commander, timeout 15m; marks acknowledged",
        "│   ├── left — run echo drain {{ params.site }} {{ params.depth }}; after triage",
        "│   ├── right — http POST https://lb.example/{{ params.site }}/isolate; after triage, declare; "
        "when {{ steps['triage'].output.approved }}",
        "│   └── isolate — manual by voice_ops; after right; marks mitigated",
        "└── recovery (starts when response is done)",
        "    ├── restore — wait 1m; after left, isolate",
        '    ├── verify — Verify "calls" <100%>; run echo verify; after restore; marks recovered',
        "    └── report — notify exec; after left, isolate",
    ]


def test_dry_run_json_is_the_plan_with_rendered_texts(tmp_path: Path) -> None:
    """`bcm run --dry-run --json`: one JSON document, waves of steps with rendered texts; nothing stored."""
    result = bcm(
        "run", GRAPH, "-p", "site=man-dc2", "-p", "force=true", "--by", "Ada Lovelace",
        "--mode", "exercise", "--dry-run", "--json", home=tmp_path,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    assert {key: doc[key] for key in ("dry_run", "runbook", "mode", "triggered_by", "parameters")} == {
        "dry_run": True,
        "runbook": {"id": "graph-shapes", "title": "Graph shapes", "path": GRAPH},
        "mode": "exercise",
        "triggered_by": "Ada Lovelace",
        "parameters": {"site": "man-dc2", "depth": 3, "force": True},
    }
    assert [
        (w["wave"], [(s["phase"], s["id"], s["kind"], s["exercise"]) for s in w["steps"]]) for w in doc["waves"]
    ] == [
        (1, [("communication", "declare", "notify", "run"), ("response", "triage", "approve", "run")]),
        (
            2,
            [
                ("communication", "update", "notify", "run"),
                ("response", "left", "run", "run"),
                ("response", "right", "http", "simulate"),
            ],
        ),
        (3, [("response", "isolate", "manual", "run")]),
        (4, [("recovery", "restore", "wait", "run"), ("recovery", "report", "notify", "run")]),
        (5, [("recovery", "verify", "run", "skip")]),
    ]
    steps = {s["id"]: s for w in doc["waves"] for s in w["steps"]}
    assert steps["declare"] == {
        "phase": "communication",
        "id": "declare",
        "title": None,
        "kind": "notify",
        "needs": [],
        "description": "notify exec",
        "texts": {"message": "Declared Graph shapes at man-dc2"},
        "rendered": True,
        "exercise": "run",
        "when": None,
        "marks": "declared",
    }
    assert steps["right"] == {
        "phase": "response",
        "id": "right",
        "title": None,
        "kind": "http",
        "needs": ["triage", "declare"],
        "description": "http POST https://lb.example/man-dc2/isolate",
        "texts": {},
        "rendered": True,
        "exercise": "simulate",
        "when": "{{ steps['triage'].output.approved }}",
        "marks": None,
    }
    assert (steps["isolate"]["texts"], steps["isolate"]["rendered"]) == (
        {"instructions": "Isolate what {{ steps['left'].output }} names"},
        False,
    )
    assert steps["triage"]["texts"] == {"prompt": "Is man-dc2 down?"}
    assert steps["restore"]["needs"] == ["triage", "left", "right", "isolate"]
    assert steps["verify"]["title"] == 'Verify "calls" <100%>'
    assert list(tmp_path.iterdir()) == []


def test_dry_run_json_in_real_mode_has_no_exercise_behaviour(tmp_path: Path) -> None:
    """In real mode each step's "exercise" is null: nothing is simulated in a real disruption."""
    result = bcm("run", GRAPH, "-p", "site=lon-dc1", "--dry-run", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "real"
    assert {s["exercise"] for w in doc["waves"] for s in w["steps"]} == {None}


def test_dry_run_text_shows_a_template_using_step_outputs_as_written(tmp_path: Path) -> None:
    """The text plan: waves of rendered steps; a text using step outputs is shown as written, not as "None"."""
    result = bcm("run", GRAPH, "-p", "site=lon-dc1", "--dry-run", home=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "Dry run of graph-shapes (real): nothing is executed",
        "wave 1 (these start together)",
        "  communication/declare: notify exec: Declared Graph shapes at lon-dc1  [marks declared]",
        "  response/triage: approve by incident_commander, timeout 15m: Is lon-dc1 down?  [marks acknowledged]",
        "wave 2 (these start together)",
        "  communication/update: notify exec, voice_ops: Still on it",
        "  response/left: run echo drain lon-dc1 3",
        "  response/right: http POST https://lb.example/lon-dc1/isolate  [when {{ steps['triage'].output.approved }}]",
        "wave 3 (these start together)",
        "  response/isolate: manual by voice_ops: Isolate what {{ steps['left'].output }} names "
        "(rendered at run time: uses step outputs)  [marks mitigated]",
        "wave 4 (these start together)",
        "  recovery/restore: wait 1m",
        "  recovery/report: notify exec: Recovered Graph shapes",
        "wave 5 (these start together)",
        "  recovery/verify: run echo verify  [marks recovered]",
    ]
    assert list(tmp_path.iterdir()) == []
