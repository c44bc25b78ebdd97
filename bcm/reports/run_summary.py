"""The summary of one finished run: the timeline table, the markdown summary, and the events.

Pure functions over a run's record, timeline and figures (no Prefect, no I/O): ``flows/publish.py``
turns them into Prefect artifacts and events, and the reports to come (after-action report,
continuity report) start from the same pieces. Every label and definition comes from the one
figures table, :data:`bcm.metrics.FIGURES`.

The figures are :func:`bcm.metrics.run_figures`'s, so an exercise played at ``--speed N`` is
summarised in exercise time (its durations N times the wall clock's, as in its after-action
report); the summary, the table and the events say so (``exercise_time_line``, payload ``speed``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bcm.durations import format_duration
from bcm.metrics import FIGURES, SUMMARISED_FIGURES, Figure, RunFigures, Timeline
from bcm.store import RunRecord

__all__ = ["artifact_key", "exercise_time_line", "rto_line", "run_events", "summary_markdown", "timeline_table"]


def artifact_key(run_id: str, suffix: str = "") -> str:
    """The artifact key of a run: ``bcm-run-<short id>[-suffix]`` (lowercase letters, digits, dashes)."""
    return f"bcm-run-{run_id[:8].lower()}" + (f"-{suffix}" if suffix else "")


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat(timespec="seconds")


def _figure_text(figure: Figure) -> str:
    return format_duration(figure.value) if figure.value is not None else f"unknown: {figure.unknown_reason}"


def exercise_time_line(timeline: Timeline) -> str | None:
    """Says the durations are in exercise time, for a run played at a speed other than 1; else ``None``."""
    if timeline.speed == 1.0 or not timeline.speed > 0:  # run_figures counts a speed that is not positive as 1
        return None
    speed = f"{timeline.speed:g}"
    return (
        f"Durations are in exercise time: played at --speed {speed}, each wall-clock duration counts "
        f"{speed} times (milestone times are on the wall clock)."
    )


def rto_line(timeline: Timeline, figures: RunFigures) -> str:
    """``RTO 2h attained: recovered in 1h 12m, 48m to spare`` (or MISSED by how much, or not known)."""
    rto = format_duration(timeline.rto)
    if figures.rto_attained is None or figures.rto_margin is None:
        why = "no RTO set" if timeline.rto is None else f"time to recover {_figure_text(figures.ttr)}"
        return f"RTO {rto}: not known ({why})"
    took = format_duration(figures.ttr.value)
    if figures.rto_attained:
        return f"RTO {rto} attained: recovered in {took}, {format_duration(figures.rto_margin)} to spare"
    return f"RTO {rto} MISSED by {format_duration(-figures.rto_margin)}: recovered in {took}"


def _mtpd_line(timeline: Timeline, figures: RunFigures) -> str:
    if figures.mtpd_breached is None:
        return f"MTPD {format_duration(timeline.mtpd)}: not known"
    return f"MTPD {format_duration(timeline.mtpd)} {'BREACHED' if figures.mtpd_breached else 'not breached'}"


def timeline_table(timeline: Timeline, figures: RunFigures) -> list[dict[str, Any]]:
    """The rows of the table artifact: milestones in time order, steps, then the figures."""
    rows: list[dict[str, Any]] = []
    for mark in sorted(timeline.marks, key=lambda m: m.at):
        rows.append({"kind": "milestone", "name": mark.milestone, "at": _iso(mark.at), "duration": "", "detail": ""})
    steps = sorted(timeline.steps, key=lambda s: (s.started_at is None, s.started_at or datetime.min, s.step_id))
    for step in steps:
        took = figures.step_durations.get(step.step_id)
        rows.append(
            {
                "kind": "step",
                "name": step.step_id,
                "at": _iso(step.started_at),
                "duration": format_duration(took.value) if took is not None and took.value is not None else "",
                "detail": f"{step.phase} {step.kind}: {step.status}",
            }
        )
    for definition in FIGURES:
        figure: Figure = getattr(figures, definition.attribute)
        rows.append(
            {
                "kind": "figure",
                "name": definition.label,
                "at": "",
                "duration": format_duration(figure.value) if figure.value is not None else "",
                "detail": "" if figure.value is not None else f"unknown: {figure.unknown_reason}",
            }
        )
    rows.append(
        {
            "kind": "target",
            "name": "RTO",
            "at": "",
            "duration": format_duration(timeline.rto),
            "detail": rto_line(timeline, figures),
        }
    )
    rows.append(
        {
            "kind": "target",
            "name": "MTPD",
            "at": "",
            "duration": format_duration(timeline.mtpd),
            "detail": _mtpd_line(timeline, figures),
        }
    )
    note = exercise_time_line(timeline)
    if note is not None:
        rows.append({"kind": "note", "name": "exercise time", "at": "", "duration": "", "detail": note})
    return rows


def summary_markdown(record: RunRecord, timeline: Timeline, figures: RunFigures) -> str:
    """The markdown artifact: RTO attained or missed, MTPD, and the "time to ..." figures."""
    lines = [
        f"# {record.runbook_title}: run {record.short_id} ({record.mode}, {record.status})",
        "",
        f"**{rto_line(timeline, figures)}**",
        "",
        f"**{_mtpd_line(timeline, figures)}**",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for definition in FIGURES:
        lines.append(f"| {definition.label} | {_figure_text(getattr(figures, definition.attribute))} |")
    basis = figures.ttr_basis or "-"
    lines += [
        "",
        f"Time to recover counts from {basis} to recovered (MBCO reached). "
        f"Runbook `{record.runbook_id}`; services: {', '.join(record.services) or '-'}.",
    ]
    note = exercise_time_line(timeline)
    if note is not None:
        lines += ["", note]
    if figures.problems:
        lines += ["", "Problems in the timeline:", *(f"- {problem}" for problem in figures.problems)]
    return "\n".join(lines) + "\n"


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def run_events(record: RunRecord, timeline: Timeline, figures: RunFigures) -> list[dict[str, Any]]:
    """The events of a finished run, as keyword arguments for ``emit_event``."""
    resource = {
        "prefect.resource.id": f"bcm.run.{record.id}",
        "prefect.resource.name": f"{record.runbook_id}/{record.mode}/{record.short_id}",
        "bcm.mode": record.mode,
        "bcm.runbook": record.runbook_id,
        "bcm.status": record.status,
        "bcm.services": ",".join(record.services),
    }
    related = [
        *({"prefect.resource.id": f"bcm.service.{s}", "prefect.resource.role": "service"} for s in record.services),
        {"prefect.resource.id": f"bcm.runbook.{record.runbook_id}", "prefect.resource.role": "runbook"},
        {"prefect.resource.id": f"bcm.mode.{record.mode}", "prefect.resource.role": "mode"},
    ]
    payload = {
        "status": record.status,
        **{f"{f.key}_s": _seconds(getattr(figures, f.attribute).value) for f in SUMMARISED_FIGURES},
        "time_to_recover_from": figures.ttr_basis,
        "rto_s": _seconds(timeline.rto),
        "rto_attained": figures.rto_attained,
        "rto_margin_s": _seconds(figures.rto_margin),
        "mtpd_s": _seconds(timeline.mtpd),
        "mtpd_breached": figures.mtpd_breached,
        "speed": timeline.speed,
        "summary": rto_line(timeline, figures),
    }
    events: list[dict[str, Any]] = [
        {
            "event": f"bcm.milestone.{mark.milestone}",
            "resource": resource,
            "related": related,
            "occurred": mark.at,
            "payload": {"milestone": mark.milestone, "at": mark.at.isoformat()},
        }
        for mark in sorted(timeline.marks, key=lambda m: m.at)
    ]
    if figures.rto_attained is False:
        events.append({"event": "bcm.rto.breached", "resource": resource, "related": related, "payload": payload})
    events.append({"event": "bcm.run.completed", "resource": resource, "related": related, "payload": payload})
    return events
