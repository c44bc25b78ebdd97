"""The after-action report and improvement plan: its content in Markdown and HTML from seeded records,
honest text when there is nothing to show, the page in a real headless Chromium (no network, readable
on a phone), and `bcm report aar` as a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bcm.exercises.evaluation import load_played_exercise, read_records
from bcm.reports.aar import AfterActionReport, build_report, render_html, render_markdown, report_json
from bcm.store import InjectRecord, Store
from tests.conftest import ROOT
from tests.exercises.conftest import LIBRARY
from tests.exercises.test_observe import REAL, RUN, at, create_exercise_run, create_real_run

#: When the report is made: CA-1 (due 2026-03-20, open) is overdue then, CA-2 (done) is not.
NOW = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script> & co"


def seed_played(store: Store, *, due_overdue: date = date(2026, 3, 20), due_later: date = date(2026, 6, 30)) -> None:
    """A tabletop run at speed 60 (one wall second per exercise minute), ended at 1h 30m:

    acknowledged 12m (S), confirm-power-state 7m (P), mitigated 50m (M), updates at 10m, 35m, 70m
    after declared at 1m (2 of 3 on time: M), recovered 80m against the 1h RTO (M); an evaluator
    rates acknowledge-fast M and fuel-escalation P; two corrective actions; three injects played.
    """
    create_exercise_run(store)
    store.add_mark(RUN, "declared", at(1), "step:declare")
    store.upsert_step(
        RUN, "assign-roles", phase="communication", kind="manual", status="succeeded",
        started_at=at(1), ended_at=at(4), actor="Ada Lovelace",
    )  # fmt: skip
    store.upsert_step(
        RUN, "confirm-power-state", phase="response", kind="manual", status="succeeded",
        started_at=at(5), ended_at=at(7), actor="Elijah McCoy",
    )  # fmt: skip
    for milestone, minutes in (("detected", 7), ("acknowledged", 12), ("mitigated", 50), ("recovered", 80)):
        store.add_mark(RUN, milestone, at(minutes), "step")
    for number, minutes in ((1, 10), (2, 35), (3, 70)):
        store.enqueue_message(f"{RUN}/u{number}", kind="notify", payload={"text": "update"}, run_id=RUN, at=at(minutes))
    played = (
        (1, 0, "delivered", "channel", "incident_commander", None),
        (2, 5, "delivered", "dm", "dc_ops", None),
        (3, 12, "skipped", "channel", "incident_commander", "unless step confirm-power-state: it had happened"),
        (4, 20, "delivered", "channel", "comms", None),
    )
    for number, minutes, status, delivery, recipient, reason in played:
        store.record_inject(
            InjectRecord(RUN, number, status, at(minutes), at(minutes), delivery, recipient, f"inject {number}", reason)
        )
    store.add_observation(
        RUN, objective_id="acknowledge-fast", kind="improvement", note="The commander waited for the BMS.",
        by="Edward Deming", role="continuity_manager", at=at(91), rating="M", root_cause="No trigger on UPS alarms.",
    )  # fmt: skip
    store.add_observation(
        RUN, objective_id="power-state-known", kind="strength", note=f"Readings | posted {SCRIPT}",
        by="Alan Turing", role="deputy", at=at(92),
    )  # fmt: skip
    store.add_observation(
        RUN, objective_id="fuel-escalation", kind="note", note="Called the supplier unprompted.",
        by="Edward Deming", role="continuity_manager", at=at(93), rating="P",
    )  # fmt: skip
    store.add_observation(
        RUN, objective_id=None, kind="hotwash", note="Players want a one-page power card.",
        by="Alan Turing", role="deputy", at=at(94),
    )  # fmt: skip
    store.add_action(
        finding="Declaring waited for the BMS", action="Add a UPS-alarm trigger to the runbook", owner="dc_ops",
        element="planning", start_on=date(2026, 3, 4), due_on=due_overdue, run_id=RUN,
        objective_id="acknowledge-fast", root_cause="No trigger on UPS alarms.", by="Edward Deming",
    )  # fmt: skip
    store.add_action(
        finding="Fuel card out of date", action="Reprint the supplier card", owner="facilities",
        element="equipment", start_on=date(2026, 3, 4), due_on=due_later, status="done", run_id=RUN, by="Edward Deming",
    )  # fmt: skip
    store.add_action(
        finding="Another run's finding", action="Not in this report", owner="comms", element="training",
        start_on=date(2026, 3, 4), due_on=date(2026, 3, 5), by="Edward Deming",
    )  # fmt: skip


def report_of(store: Store) -> AfterActionReport:
    run = store.get_run(RUN)
    exercise_run = store.get_exercise_run(RUN)
    assert exercise_run is not None
    loaded = load_played_exercise(exercise_run, library_root=LIBRARY)
    records = read_records(store, run, exercise_run, loaded)
    return build_report(loaded, records, store.list_actions(run_id=RUN), now=NOW, tz=UTC)


@pytest.fixture
def report(store: Store) -> AfterActionReport:
    """The AAR of the seeded run, as of 2026-03-25 12:00 UTC, times in UTC."""
    seed_played(store)
    return report_of(store)


OBJECTIVE_ROWS = [
    ["acknowledge-fast", "operational-coordination", "acknowledged within 15m of STARTEX", "12m", "15m", "met",
     "S", "M", "Edward Deming (continuity_manager)"],
    ["power-state-known", "situational-assessment", "step confirm-power-state succeeded within 10m of STARTEX",
     "7m", "10m", "met", "P", "P", "suggested from the timeline"],
    ["load-safe", "infrastructure-systems", "mitigated within 45m of STARTEX", "50m", "45m", "missed", "M", "M",
     "suggested from the timeline"],
    ["updates-on-cadence", "public-information-and-warning",
     "at least 100% of stakeholder updates on time (every 30m)", "67% on time", "≥ 100%", "missed", "M", "M",
     "suggested from the timeline"],
    ["recover-within-rto", "infrastructure-systems", "time to recover within the RTO", "1h 20m", "1h",
     "missed", "M", "M", "suggested from the timeline"],
    ["fuel-escalation", "logistics-and-supply-chain-management", "-", "-", "-", "not scored", "-", "P",
     "Edward Deming (continuity_manager)"],
]  # fmt: skip
ACTION_ROWS = [
    ["CA-1", "Declaring waited for the BMS (objective acknowledge-fast)", "Add a UPS-alarm trigger to the runbook",
     "planning", "dc_ops", "2026-03-04", "2026-03-20", "open OVERDUE"],
    ["CA-2", "Fuel card out of date", "Reprint the supplier card", "equipment", "facilities", "2026-03-04",
     "2026-06-30", "done"],
]  # fmt: skip
INJECT_ROWS = [
    ["1", "+0s", "delivered at +0s (10:00:00)", "incident_commander", "channel",
     "The commander declares the incident and assigns roles.", "step assign-roles at +4m, 4m after delivery"],
    ["2", "+5m", "delivered at +5m (10:00:05)", "dc_ops", "dm",
     "Data-centre operations confirm the power state in the channel.",
     "step confirm-power-state at +7m, 2m after delivery"],
    ["3", "+12m", "skipped at +12m (10:00:12): unless step confirm-power-state: it had happened",
     "incident_commander", "channel", "The commander asks dc_ops for the power state.",
     "not sent (condition unless step confirm-power-state: it had happened)"],
    ["4", "+20m", "delivered at +20m (10:00:20)", "comms", "channel",
     "Communications post a holding statement and brief customer support.",
     "not tracked (the inject names no step or milestone it expects)"],
    ["5", "+30m", "not delivered (play ended first)", "facilities", "console",
     "Facilities record the arrival time and tell the commander it is in time.",
     "not sent (play ended first)"],
]  # fmt: skip


def markdown_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("\\|", "|").replace("**", "") for cell in line.strip("|").split(" | ")])
    return rows


# --------------------------------------------------------------------------- Markdown


def test_markdown_has_the_overview_objectives_plan_injects_and_hot_wash(report: AfterActionReport) -> None:
    """Every section of the Markdown AAR/IP carries the seeded figures, ratings, actions and injects."""
    text = render_markdown(report)
    assert text.startswith(
        "# After-action report and improvement plan: Lights out at lon-dc1: UPS fails to hand over to generators\n"
    )
    for line in (
        "| Dates | STARTEX 2026-03-03 10:00:00 UTC – ENDEX 2026-03-03 10:01:30 UTC |",
        "| Duration | 1m 30s on the wall clock (1h 30m of exercise time) |",
        "| Type | tabletop (discussion-based) |",
        "| Evaluators | Business continuity manager (continuity_manager), Deputy incident commander (deputy) |",
        "| People on the record | Ada Lovelace, Elijah McCoy |",
        "| Speed | 60× (one wall-clock second is 60 seconds of exercise time; figures are in exercise time) |",
        "Final ratings: P 2, S 0, M 4, U 0. Figures and thresholds are in exercise time.",
        "- Rating: **M (performed with major challenges), rated by Edward Deming (continuity_manager); "
        "the timeline suggested S (performed with some challenges)**",
        "- Result: **missed**: 2 of 3 updates on time (67%, every 30m, 0 missed), at least 100% required; "
        "longest gap 35m",
        "- The commander waited for the BMS. (Edward Deming (continuity_manager), 2026-03-03 10:01:31 UTC)",
        "  - Root cause: No trigger on UPS alarms.",
        "- Readings | posted &lt;script&gt;alert(1)&lt;/script&gt; &amp; co "
        "(Alan Turing (deputy), 2026-03-03 10:01:32 UTC)",
        "- rated P: Called the supplier unprompted. (Edward Deming (continuity_manager), 2026-03-03 10:01:33 UTC)",
        "1 overdue as of 2026-03-25.",
        "- Players want a one-page power card. (Alan Turing (deputy), 2026-03-03 10:01:34 UTC)",
    ):
        assert line in text.splitlines()
    assert markdown_rows(text, "Objective") == OBJECTIVE_ROWS
    assert markdown_rows(text, "Ref") == ACTION_ROWS
    assert markdown_rows(text, "#") == INJECT_ROWS
    assert "| CA-1 |" in text and "open **OVERDUE** |" in text and "<script>" not in text


def test_markdown_of_a_run_with_nothing_recorded_says_so_and_invents_nothing(store: Store) -> None:
    """Nothing recorded but STARTEX and ENDEX: honest texts, no figure made up, every objective U or not scored."""
    create_exercise_run(store)
    text = render_markdown(report_of(store))
    assert [row[3:8] for row in markdown_rows(text, "Objective")] == [
        ["-", "15m", "missed", "U", "U"],
        ["-", "10m", "missed", "U", "U"],
        ["-", "45m", "missed", "U", "U"],
        ["0% on time", "≥ 100%", "missed", "U", "U"],
        ["-", "1h", "missed", "U", "U"],
        ["-", "-", "not scored", "-", "-"],
    ]
    lines = text.splitlines()
    assert lines.count("No observations recorded on this objective.") == 6
    assert "| People on the record | none recorded |" in lines
    assert "- Result: **missed**: no stakeholder update was sent; 3 were due (every 30m)" in lines
    assert "- Rating: **not rated: no suggestion from the timeline and no evaluator rating yet**" in lines
    assert "No corrective actions recorded for this run (`bcm actions add --run e0e0e0e0` adds them)." in lines
    assert "No hot-wash notes recorded." in lines
    assert [row[2] for row in markdown_rows(text, "#")] == ["not delivered (play ended first)"] * 5


def with_exercise(report: AfterActionReport, **changes: object) -> AfterActionReport:
    """The seeded report rebuilt with the exercise changed (``model_copy(update=changes)``)."""
    loaded = replace(report.loaded, exercise=report.loaded.exercise.model_copy(update=changes))
    return build_report(loaded, report.records, list(report.actions), now=NOW, tz=UTC)


def test_expected_action_templates_are_rendered_like_the_inject_message(report: AfterActionReport) -> None:
    """An expected action's templates render with the message's names in Markdown, HTML and JSON."""
    msel = list(report.loaded.exercise.msel)
    template = (
        "At {{ params.site }} ({{ exercise.id }}, inject {{ inject.number }} to {{ inject.to }}, "
        "run {{ run.short_id }}): roles {{ steps['assign-roles'].status }}."
    )
    msel[0] = msel[0].model_copy(update={"expected_action": template})
    changed = with_exercise(report, msel=msel)
    rendered = "At lon-dc1 (dc-power-loss-tabletop, inject 1 to incident_commander, run e0e0e0e0): roles succeeded."
    assert markdown_rows(render_markdown(changed), "#")[0][5] == rendered
    assert tables(render_html(changed))["injects"][1][5] == rendered
    assert report_json(changed)["injects"][0]["expected_action"] == rendered  # type: ignore[index]


def test_observation_note_and_root_cause_are_kept_apart(report: AfterActionReport) -> None:
    """A note without a full stop and its root cause do not run together: the root cause is its own line."""
    page = render_html(report)
    assert (
        '<li>The commander waited for the BMS. <span class="muted">(Edward Deming (continuity_manager), '
        '<span class="date">2026-03-03 10:01:31 UTC</span>)</span>'
        '<div class="root-cause"><strong>Root cause:</strong> No trigger on UPS alarms.</div></li>'
    ) in page


def test_scenario_is_flowing_paragraphs(report: AfterActionReport) -> None:
    """The scenario's hard line breaks within a paragraph are joined; blank lines still part paragraphs."""
    changed = with_exercise(
        report, scenario="08:40 on a weekday.\nThe substation trips.\n\nBatteries give\n40 minutes.\n"
    )
    lines = render_markdown(changed).splitlines()
    start = lines.index("### Scenario")
    assert lines[start + 1 : start + 6] == [
        "",
        "08:40 on a weekday. The substation trips.",
        "",
        "Batteries give 40 minutes.",
        "",
    ]
    assert (
        '<p class="scenario">08:40 on a weekday. The substation trips.</p>\n'
        '<p class="scenario">Batteries give 40 minutes.</p>'
    ) in render_html(changed)


# --------------------------------------------------------------------------- HTML


class Tables(HTMLParser):
    """The text of every cell of every table, by the table's id (whitespace folded)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(found.get("id") or found.get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def test_html_has_the_same_content_escaped_and_self_contained(report: AfterActionReport) -> None:
    """The HTML page's tables hold the objectives, the plan (overdue flagged) and the injects; notes are
    escaped; nothing is loaded from anywhere (no src, link or url())."""
    page = render_html(report)
    found = tables(page)
    assert found["objectives"][1:] == OBJECTIVE_ROWS
    assert found["actions"][1:] == ACTION_ROWS
    assert found["injects"][1:] == INJECT_ROWS
    assert found["overview"][1] == ["Dates", "STARTEX 2026-03-03 10:00:00 UTC – ENDEX 2026-03-03 10:01:30 UTC"]
    assert '<tr class="is-overdue">' in page and '<span class="overdue">OVERDUE</span>' in page
    assert "Readings | posted &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<script" not in page
    assert not any(token in page for token in ("src=", "<link", "url(", "http://", "https://", "@import"))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media print" in page


# --------------------------------------------------------------------------- in a real browser


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class DevTools:
    """A page of headless Chromium driven over the DevTools protocol; records every request it sends."""

    def __init__(self, url: str, timeout: float) -> None:
        from websockets.sync.client import connect

        self.timeout = timeout
        self.requests: list[str] = []
        self.events: list[str] = []
        self._id = 0
        self._ws = connect(url, max_size=None, open_timeout=timeout)

    def close(self) -> None:
        self._ws.close()

    def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self._ws.recv(timeout=self.timeout))
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        if "method" in message:
            self.events.append(message["method"])
        return message

    def call(self, method: str, **params: object) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = self._next()
            if message.get("id") == self._id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def wait_for(self, event: str) -> None:
        while event not in self.events:
            self._next()

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["value"]


def open_in_chromium(page: Path, expressions: dict[str, str], *, width: int, timeout: float = 30.0) -> dict[str, Any]:
    """Load ``page`` in headless Chromium ``width`` CSS pixels wide; return its requests and expression values."""
    executable = chromium()
    assert executable is not None
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not port_file.exists() or "\n" not in port_file.read_text():
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.05)
            port = int(port_file.read_text().splitlines()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
                target = next(t for t in json.load(answer) if t["type"] == "page")
            tools = DevTools(target["webSocketDebuggerUrl"], timeout)
            try:
                tools.call("Network.enable")
                tools.call("Page.enable")
                tools.call(
                    "Emulation.setDeviceMetricsOverride", width=width, height=800, deviceScaleFactor=1, mobile=True
                )
                tools.call("Page.navigate", url=page.resolve().as_uri())
                tools.wait_for("Page.loadEventFired")
                values = {name: tools.evaluate(expression) for name, expression in expressions.items()}
                return {"requests": tools.requests, **values}
            finally:
                tools.close()
        finally:
            process.terminate()
            process.wait(timeout)


@pytest.mark.skipif(chromium() is None, reason="needs chromium (apt-get install chromium)")
def test_html_opens_in_headless_chromium_without_network_and_shows_the_objectives(
    report: AfterActionReport, tmp_path: Path
) -> None:
    """At phone width in Chromium: no request, every objective cell on screen, short inject cards, unbroken dates."""
    page = tmp_path / "aar.html"
    page.write_text(render_html(report), encoding="utf-8")
    seen = open_in_chromium(
        page,
        {
            "rows": "[...document.querySelectorAll('#objectives tbody tr')]"
            ".map(r => [...r.cells].map(c => c.innerText))",
            "visible": "document.querySelector('#objectives').getBoundingClientRect().height > 0",
            "title": "document.title",
            "overflow": "document.documentElement.scrollWidth - window.innerWidth",
            "cells_on_screen": "[...document.querySelectorAll('#objectives tbody td')].every(c => "
            "{ const r = c.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= innerWidth; })",
            "inject_cells_full_width": "[...document.querySelectorAll('#injects tbody td:not(.pair)')]"
            ".every(c => c.getBoundingClientRect().width >= 0.8 * innerWidth - 40)",
            "inject_short_cells_share_lines": "[...document.querySelectorAll('#injects tbody tr')].every(r => "
            "new Set([...r.querySelectorAll('td.pair')].map(c => c.getBoundingClientRect().top)).size <= 2)",
            "tallest_inject": "Math.max(...[...document.querySelectorAll('#injects tbody tr')]"
            ".map(r => r.getBoundingClientRect().height)) <= 320",
            "dates": "[...document.querySelectorAll('.date')].map(d => d.getClientRects().length)",
            "scenario": "[...document.querySelectorAll('#overview p.scenario')].map(p => p.innerText.includes('\\n'))",
        },
        width=390,
    )
    assert seen == {
        "requests": [page.resolve().as_uri()],
        "rows": OBJECTIVE_ROWS,
        "visible": True,
        "title": "AAR/IP: Lights out at lon-dc1: UPS fails to hand over to generators",
        "overflow": 0,
        "cells_on_screen": True,
        "inject_cells_full_width": True,
        "inject_short_cells_share_lines": True,
        "tallest_inject": True,
        "dates": [1] * 11,
        "scenario": [False],
    }


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
    """The seeded run in a database file, with an action long overdue and one due far ahead, and a real run."""
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}") as store:
        seed_played(store, due_overdue=date(2020, 1, 31), due_later=date(2999, 12, 31))
        create_real_run(store)
    return tmp_path


def test_cli_writes_markdown_and_html_and_prints_a_summary(seeded: Path) -> None:
    """`bcm report aar RUN --out x.md` and `--out x.html` write the report and say what is in it; exit 0."""
    summary = "wrote {}: 6 objectives (P 2, S 0, M 4, U 0, not rated 0), 2 corrective actions (1 overdue), 5 injects\n"
    for name in ("aar.md", "aar.html"):
        out = seeded / name
        result = bcm(seeded, "report", "aar", "e0e0e0e0", "--out", str(out), "--tz", "UTC")
        assert (result.returncode, result.stdout, result.stderr) == (0, summary.format(out), "")
    assert markdown_rows((seeded / "aar.md").read_text(encoding="utf-8"), "Ref")[0][-2:] == [
        "2020-01-31",
        "open OVERDUE",
    ]
    assert tables((seeded / "aar.html").read_text(encoding="utf-8"))["objectives"][1:] == OBJECTIVE_ROWS


def test_cli_without_out_prints_the_markdown(seeded: Path) -> None:
    """Without --out the Markdown report is printed on stdout, as `--out x.md` writes it; exit 0."""
    printed = bcm(seeded, "report", "aar", "e0e0e0e0", "--tz", "UTC")
    assert (printed.returncode, printed.stderr) == (0, "")
    assert printed.stdout.startswith("# After-action report and improvement plan: Lights out at lon-dc1")
    written = bcm(seeded, "report", "aar", "e0e0e0e0", "--out", str(seeded / "aar.md"), "--tz", "UTC")
    assert written.returncode == 0, written.stderr
    generated = "report generated "
    assert [line for line in printed.stdout.splitlines() if generated not in line] == [
        line for line in (seeded / "aar.md").read_text(encoding="utf-8").splitlines() if generated not in line
    ]


def test_cli_json_prints_the_report_data(seeded: Path) -> None:
    """`--json` prints the evaluation, the plan and the injects as one JSON document, seconds for durations."""
    result = bcm(seeded, "report", "aar", "e0e0e0e0", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    ack = doc["evaluation"]["objectives"][0]
    assert (ack["objective"], ack["suggested"], ack["rating"], ack["rated_by"]) == (
        "acknowledge-fast",
        "S",
        "M",
        "Edward Deming",
    )
    assert (ack["score"]["value_s"], ack["score"]["threshold_s"], ack["score"]["outcome"]) == (720.0, 900.0, "met")
    assert doc["evaluation"]["ratings"] == {"P": 2, "S": 0, "M": 4, "U": 0, "none": 0}
    assert [(a["ref"], a["overdue"]) for a in doc["improvement_plan"]] == [("CA-1", True), ("CA-2", False)]
    assert [(i["number"], i["status"]) for i in doc["injects"]] == [
        (1, "delivered"),
        (2, "delivered"),
        (3, "skipped"),
        (4, "delivered"),
        (5, "not delivered"),
    ]
    assert (doc["run"]["speed"], doc["exercise"]["sha256_played"] == doc["exercise"]["sha256_now"]) == (60.0, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["e0e0e0e0", "--out", "{tmp}/aar.pdf"],
            "--out {tmp}/aar.pdf: write the report to a .md (Markdown) or .html (one page) file",
        ),
        (
            ["e0e0e0e0", "--out", "{tmp}/no/such/aar.md"],
            "--out {tmp}/no/such/aar.md: folder {tmp}/no/such does not exist",
        ),
        (
            ["feedf00d", "--out", "{tmp}/aar.md"],
            "run feedf00d is a real run, not a run of an exercise: "
            "the after-action report is written for exercise runs",
        ),
        (
            ["nosuch", "--out", "{tmp}/aar.pdf"],
            "no run has an id starting with 'nosuch': give the run id, or its first 8 characters "
            "as printed when the run started",
        ),
        (
            ["le-emergency-disclosure-drill", "--out", "{tmp}/aar.md"],
            "exercise le-emergency-disclosure-drill has not been played yet: "
            "`bcm exercise run le-emergency-disclosure-drill`",
        ),
    ],
    ids=["pdf", "no-folder", "real-run", "unknown-ref", "never-played"],
)
def test_cli_refusals_exit_2_with_one_clear_line(seeded: Path, args: list[str], message: str) -> None:
    """Bad --out, no folder, not an exercise run, unknown ref (before --out), never played: exit 2, one line."""
    result = bcm(seeded, "report", "aar", *[a.format(tmp=seeded) for a in args])
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message.format(tmp=seeded) + "\n")
    assert not (seeded / "aar.md").exists() and not (seeded / "aar.pdf").exists()


def test_real_run_id_is_not_an_exercise(seeded: Path) -> None:
    """The real run seeded beside the exercise is a real run (a guard for the refusal test above)."""
    with Store.open(f"sqlite:///{seeded / 'bcm.db'}") as store:
        assert (store.get_run(REAL).mode, store.get_exercise_run(REAL)) == ("real", None)
