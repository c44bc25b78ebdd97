"""The after-action report and improvement plan (AAR/IP) of one exercise run, as HSEEP lays it out.

Sections: the exercise overview (name, dates, duration, scope, type, mission areas and core
capabilities, objectives, scenario, sponsor, participants, evaluators, speed); the analysis of
each objective (final and suggested rating, the figure against the threshold, strengths, areas for
improvement with their root cause); the improvement plan (the corrective actions recorded for the
run, overdue ones flagged); the inject timeline (each inject, when it was due and delivered, and
whether and when the expected action came, or why it was not sent; expected actions rendered with
the names the inject messages use); and the hot-wash notes.

:func:`build_report` assembles it from the records (pure); :func:`render_markdown` (Git, Slack)
and :func:`render_html` (one self-contained page: inline CSS, no scripts, no network, readable on
a phone: under 600 px each row of a wide table is a card and no date breaks over two lines; prints
cleanly) render it with the Jinja2 templates in ``bcm/reports/templates/``, in an environment of
their own: HTML autoescaped; Markdown with ``&``, ``<`` and ``>`` escaped in every value printed
and table cells escaped by a filter. Runbook templates use the sandbox in :mod:`bcm.templates`;
these templates are part of bcm, not user input. The scenario is printed as flowing paragraphs
(the file's line breaks within a paragraph joined).
Missing data is said in words ("no observations recorded"), never made up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from bcm.durations import format_duration
from bcm.exercises.evaluation import (
    OUTCOME_LABELS,
    Evaluation,
    ExerciseRecords,
    InjectRow,
    ObjectiveResult,
    evaluate,
    inject_timeline,
    offset_text,
)
from bcm.exercises.library import LoadedExercise
from bcm.store import CorrectiveActionRecord, ObservationRecord
from bcm.vocabulary import DISCUSSION_BASED, RATING_MEANINGS, RATINGS

__all__ = ["AfterActionReport", "build_report", "render_html", "render_markdown", "report_context", "report_json"]

#: The suggested-rating rule in one line, printed under the analysis.
RATING_RULE = (
    "Suggested ratings come from the timeline: met with at least 25% of the threshold to spare → P; "
    "met within its last 25% → S; missed but within twice the threshold → M; never, or later than "
    "twice the threshold → U. Cadence: share of the updates due that went out on time (a due update "
    "never sent counts as missed) ≥ the share required → P (S with any late or missed update); below it "
    "→ M when at least half the share required, else U. When a person ended play early, what was not "
    "due yet and had not happened is not scored. An evaluator's rating is final; the suggestion is kept "
    "beside it."
)


@dataclass(frozen=True)
class AfterActionReport:
    """Everything the AAR/IP shows about one exercise run.

    Attributes:
        loaded: the exercise as it is in the library now, with its runbook and catalog.
        records: the run's records.
        evaluation: the objectives scored and rated.
        injects: the inject timeline.
        actions: the corrective actions recorded for the run.
        today: the date overdue actions are judged on.
        generated_at: when the report was made.
        tz: the zone times are shown in.
    """

    loaded: LoadedExercise
    records: ExerciseRecords
    evaluation: Evaluation
    injects: tuple[InjectRow, ...]
    actions: tuple[CorrectiveActionRecord, ...]
    today: date
    generated_at: datetime
    tz: tzinfo

    @property
    def file_changed(self) -> bool:
        """Whether the exercise file differs from the one played (its sha256 changed)."""
        return self.loaded.sha256 != self.records.exercise_run.exercise_hash


def build_report(
    loaded: LoadedExercise,
    records: ExerciseRecords,
    actions: list[CorrectiveActionRecord],
    *,
    now: datetime,
    tz: tzinfo,
) -> AfterActionReport:
    """Assemble the AAR/IP of one exercise run (pure: the records are read by the caller).

    Args:
        loaded: the exercise the run played.
        records: the run's records (:func:`bcm.exercises.evaluation.read_records`).
        actions: the run's corrective actions (``Store.list_actions(run_id=...)``).
        now: when the report is made: the evaluation's ``as_of``; its date in ``tz`` judges overdue actions.
        tz: the zone times are shown in.
    """
    return AfterActionReport(
        loaded=loaded,
        records=records,
        evaluation=evaluate(loaded.exercise, records, as_of=now),
        injects=tuple(inject_timeline(loaded.exercise, records, loaded=loaded)),
        actions=tuple(actions),
        today=now.astimezone(tz).date(),
        generated_at=now,
        tz=tz,
    )


# --------------------------------------------------------------------------- the context the templates see


def _time(at: datetime | None, tz: tzinfo) -> str:
    return "-" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _paragraphs(text: str) -> list[str]:
    """``text`` as flowing paragraphs: the lines within a paragraph joined, blank lines parting them."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]


def _role(report: AfterActionReport, role_id: str) -> str:
    role = report.loaded.catalog.roles.get(role_id)
    return role_id if role is None else f"{role.name} ({role_id})"


def _observation(o: ObservationRecord, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": o.id,
        "note": o.note,
        "rating": o.rating,
        "root_cause": o.root_cause,
        "by": f"{o.by} ({o.role})",
        "at": _time(o.at, tz),
    }


def _figure(result: ObjectiveResult) -> tuple[str, str]:
    score = result.score
    if score.share is not None or score.at_least is not None:
        figure = "-" if score.share is None else f"{score.share * 100:.0f}% on time"
        threshold = "-" if score.at_least is None else f"≥ {score.at_least * 100:.0f}%"
        return figure, threshold
    figure = "-" if score.value is None else format_duration(score.value)
    return figure, "-" if score.threshold is None else format_duration(score.threshold)


def _rating_line(result: ObjectiveResult) -> str:
    """``M (performed with major challenges), rated by ...; the timeline suggested U (...)``."""
    suggested = result.suggested
    suggestion = f"{suggested} ({RATING_MEANINGS[suggested]})" if suggested else "no rating (not scored)"
    if result.rated_by is not None and result.rating is not None:
        return (
            f"{result.rating} ({RATING_MEANINGS[result.rating]}), rated by {result.rated_by} ({result.rated_role}); "
            f"the timeline suggested {suggestion}"
        )
    if result.rating is not None:
        return f"{result.rating} ({RATING_MEANINGS[result.rating]}), as the timeline suggests; no evaluator rating yet"
    return "not rated: no suggestion from the timeline and no evaluator rating yet"


def _objective(result: ObjectiveResult, tz: tzinfo) -> dict[str, Any]:
    figure, threshold = _figure(result)
    if result.rated_by is not None:
        rated_by = f"{result.rated_by} ({result.rated_role})"
    elif result.rating is not None:
        rated_by = "suggested from the timeline"
    else:
        rated_by = "not rated"
    return {
        "id": result.objective.id,
        "title": result.objective.title,
        "capability": result.objective.capability,
        "description": result.objective.description,
        "measure": result.measure,
        "outcome": result.score.outcome,
        "outcome_label": OUTCOME_LABELS[result.score.outcome],
        "detail": result.score.detail,
        "figure": figure,
        "threshold": threshold,
        "suggested": result.suggested or "-",
        "suggested_meaning": RATING_MEANINGS[result.suggested] if result.suggested else "no suggestion",
        "rating": result.rating or "-",
        "rating_meaning": RATING_MEANINGS[result.rating] if result.rating else "not rated",
        "rated_by": rated_by,
        "rating_line": _rating_line(result),
        "observed": bool(result.observations),
        "strengths": [_observation(o, tz) for o in result.strengths],
        "improvements": [_observation(o, tz) for o in result.improvements],
        "notes": [_observation(o, tz) for o in result.notes],
    }


def _action(action: CorrectiveActionRecord, today: date) -> dict[str, Any]:
    return {
        "ref": action.ref,
        "finding": action.finding,
        "root_cause": action.root_cause,
        "action": action.action,
        "element": action.element,
        "owner": action.owner,
        "objective": action.objective_id or "-",
        "start_on": action.start_on.isoformat(),
        "due_on": action.due_on.isoformat(),
        "status": action.status.replace("_", " "),
        "overdue": action.overdue(today),
        "closed_on": "-" if action.closed_at is None else action.closed_at.date().isoformat(),
    }


def _inject(row: InjectRow, tz: tzinfo, *, in_play: bool) -> dict[str, Any]:
    if row.at is None or row.at_offset is None:
        played = "not delivered yet" if in_play else "not delivered (play ended first)"
    else:
        played = f"{row.status} at {offset_text(row.at_offset)} ({row.at.astimezone(tz):%H:%M:%S})"
        if row.reason:
            played += f": {row.reason}"
    return {
        "number": row.number,
        "due": offset_text(row.due),
        "status": row.status,
        "played": played,
        "recipient": row.recipient,
        "delivery": row.delivery,
        "message": row.message,
        "expected_action": row.expected_action,
        "response": row.response,
        "responded": row.response_offset is not None,
        "objective": row.objective or "-",
    }


def _duration(report: AfterActionReport) -> str:
    records = report.records
    end = records.play_ended_at
    if end is None:
        return "still in play"
    wall = end - records.exercise_run.startex_at
    if records.speed == 1:
        return format_duration(wall)
    return f"{format_duration(wall)} on the wall clock ({format_duration(wall * records.speed)} of exercise time)"


def _speed(speed: float) -> str:
    if speed == 1:
        return "1× (real time)"
    shown = f"{speed:g}"
    return f"{shown}× (one wall-clock second is {shown} seconds of exercise time; figures are in exercise time)"


def _people(report: AfterActionReport) -> list[str]:
    """Who acted on the run's steps (answered, approved, did): the people on the record."""
    seen: dict[str, None] = {}
    for step in report.records.steps:
        if step.actor:
            seen[step.actor] = None
    return list(seen)


def _game_day(report: AfterActionReport) -> dict[str, Any] | None:
    game_day = report.loaded.exercise.game_day
    if game_day is None:
        return None
    return {
        "hypothesis": game_day.hypothesis.strip(),
        "blast_radius": game_day.blast_radius.strip(),
        "abort_when": [condition.strip() for condition in game_day.abort_when],
    }


def _file_note(report: AfterActionReport) -> str | None:
    if not report.file_changed:
        return None
    played = report.records.exercise_run.exercise_hash[:12]
    return (
        f"the exercise file has changed since this run played it (sha256 {played}… then, "
        f"{report.loaded.sha256[:12]}… now): objectives and injects are shown as the file is now"
    )


def report_context(report: AfterActionReport) -> dict[str, Any]:
    """What the templates render: every value already in words, times in the report's zone."""
    exercise = report.loaded.exercise
    records = report.records
    run = records.run
    tz = report.tz
    capabilities = list(dict.fromkeys(o.capability for o in exercise.objectives))
    kind = "discussion-based" if exercise.type in DISCUSSION_BASED else "operations-based"
    counts = report.evaluation.rating_counts()
    return {
        "exercise": {
            "id": exercise.id,
            "title": exercise.title,
            "type": f"{exercise.type} ({kind})",
            "scope": exercise.scope.strip(),
            "scenario": _paragraphs(exercise.scenario),
            "mission_areas": ", ".join(exercise.mission_areas) or "-",
            "capabilities": capabilities,
            "sponsor": _role(report, exercise.sponsor),
            "participants": [_role(report, r) for r in exercise.participants],
            "evaluators": [_role(report, r) for r in exercise.evaluators],
            "controller": "-" if exercise.controller is None else _role(report, exercise.controller),
            "objectives": [{"id": o.id, "title": o.title, "capability": o.capability} for o in exercise.objectives],
            "runbook": f"{report.loaded.runbook.runbook.title} ({exercise.runbook})",
            "game_day": _game_day(report),
        },
        "run": {
            "id": run.id,
            "short_id": run.short_id,
            "status": run.status,
            "startex": _time(records.exercise_run.startex_at, tz),
            "endex": _time(records.exercise_run.endex_at, tz),
            "dates": f"STARTEX {_time(records.exercise_run.startex_at, tz)} – "
            + (
                "ENDEX not recorded (still in play)"
                if records.exercise_run.endex_at is None
                else f"ENDEX {_time(records.exercise_run.endex_at, tz)}"
            ),
            "ended_by": records.exercise_run.ended_by or "-",
            "duration": _duration(report),
            "speed": _speed(records.speed),
            "in_play": report.evaluation.in_play,
            "people": _people(report),
        },
        "file_note": _file_note(report),
        "objectives": [_objective(r, tz) for r in report.evaluation.objectives],
        "ratings": [{"rating": r, "meaning": RATING_MEANINGS[r], "count": counts[r]} for r in RATINGS],
        "unrated": counts["none"],
        "rating_rule": RATING_RULE,
        "actions": [_action(a, report.today) for a in report.actions],
        "overdue": sum(1 for a in report.actions if a.overdue(report.today)),
        "injects": [_inject(row, tz, in_play=report.evaluation.in_play) for row in report.injects],
        "hotwash": [_observation(o, tz) for o in report.evaluation.hotwash],
        "generated": _time(report.generated_at, tz),
        "today": report.today.isoformat(),
    }


def report_json(report: AfterActionReport) -> dict[str, object]:
    """The report's data as JSON (``bcm report aar --json``): durations in seconds, times ISO 8601 UTC."""
    records = report.records
    exercise = report.loaded.exercise
    return {
        "exercise": {
            "id": exercise.id,
            "title": exercise.title,
            "type": exercise.type,
            "runbook": exercise.runbook,
            "sha256_played": records.exercise_run.exercise_hash,
            "sha256_now": report.loaded.sha256,
        },
        "run": {
            "id": records.run.id,
            "status": records.run.status,
            "startex": records.exercise_run.startex_at.isoformat(),
            "endex": None if records.exercise_run.endex_at is None else records.exercise_run.endex_at.isoformat(),
            "ended_by": records.exercise_run.ended_by,
            "speed": records.speed,
        },
        "evaluation": report.evaluation.to_json(),
        "improvement_plan": [a.to_json(report.today) for a in report.actions],
        "injects": [row.to_json() for row in report.injects],
        "generated_at": report.generated_at.isoformat(),
    }


# --------------------------------------------------------------------------- rendering


def _md_text(value: object) -> object:
    """Every value a Markdown template prints: ``&``, ``<`` and ``>`` as entities, as Slack requires
    and Git hosts render, so a note's ``<b>`` or ``<!channel>`` stays text."""
    if not isinstance(value, str):
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_cell(value: object) -> str:
    """A value safe in a Markdown table cell: pipes escaped, line breaks folded into spaces."""
    text = "-" if value is None else str(value)
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split()) or "-"


def _loader() -> PackageLoader:
    return PackageLoader("bcm.reports", "templates")


@cache
def _markdown_environment() -> Environment:
    """Markdown: not HTML-escaped; every printed value goes through :func:`_md_text` (``finalize``)."""
    env = Environment(
        loader=_loader(),
        autoescape=False,
        finalize=_md_text,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _md_cell
    return env


@cache
def _html_environment() -> Environment:
    """HTML: autoescaped, always."""
    return Environment(
        loader=_loader(),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_markdown(report: AfterActionReport) -> str:
    """The AAR/IP as Markdown (Git, Slack)."""
    return _markdown_environment().get_template("aar.md.j2").render(**report_context(report))


def render_html(report: AfterActionReport) -> str:
    """The AAR/IP as one self-contained HTML page: inline CSS, no scripts, nothing fetched."""
    return _html_environment().get_template("aar.html.j2").render(**report_context(report))
