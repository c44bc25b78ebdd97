"""The ``metrics`` command: recovery-time figures per service or runbook, real disruptions and
exercises apart.

``--json`` prints one JSON document, ``--csv`` one row per group, people get a table per mode.
Times are stored in UTC and shown in the user's zone (``--tz``, else ``$BCM_TIMEZONE``, else the
machine's). No figure is called "MTTR": each says which "time to ..." it is. Exercise figures are
in exercise time: a run played at ``bcm exercise run --speed N`` counts N times its wall-clock
durations (``bcm.metrics``), and the output says so when such a run is among them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from bcm import clock
from bcm.cli.output import (
    JsonOption,
    Text,
    TzOption,
    echo,
    out,
    print_csv,
    print_json,
    resolve_timezone,
    seconds,
    shown_time,
)
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.errors import InputError, SpecError
from bcm.metrics import EXERCISE_TIME_NOTE, SUMMARISED_FIGURES, Distribution, GroupSummary, Mode, summarise
from bcm.spec import load_library
from bcm.store import Store
from bcm.timelines import TargetsFallback, library_targets, load_timelines

MODES: dict[str, str] = {"real": "Real disruptions", "exercise": "Exercises"}
_STATS = ("count", "median_s", "p90_s", "max_s")
CSV_COLUMNS = (
    "key",
    "mode",
    "runs",
    *(f"{f.key}_{stat}" for f in SUMMARISED_FIGURES for stat in _STATS),
    "within_rto",
    "rto_known",
    "share_within_rto",
    "mtpd_breaches",
    "time_to_recover_unknown",
)


def _parse_when(option: str, text: str, tz: tzinfo) -> datetime:
    """A date (midnight in ``tz``) or an ISO 8601 time (without an offset: in ``tz``)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=tz)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{option} {text}: not a date or time: write 2026-01-31 or 2026-01-31T09:00:00+00:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _fallback(settings_runbooks: Path) -> TargetsFallback | None:
    """Targets from the library for runs stored without any; none when the library cannot load."""
    try:
        return library_targets(load_library(settings_runbooks))
    except (InputError, SpecError) as exc:
        first = str(exc).splitlines()[0]
        echo(f"note: runs stored without targets are shown without them ({first})", stderr=True)
        return None


def _distribution_json(dist: Distribution) -> dict[str, Any]:
    return {
        "count": dist.count,
        "median_s": seconds(dist.median),
        "p90_s": seconds(dist.p90),
        "max_s": seconds(dist.max),
    }


def _group_json(group: GroupSummary) -> dict[str, Any]:
    return {
        "key": group.key,
        "mode": group.mode,
        "runs": group.count,
        **{f.key: _distribution_json(getattr(group, f.attribute)) for f in SUMMARISED_FIGURES},
        "within_rto": group.within_rto,
        "rto_known": group.rto_known,
        "share_within_rto": group.share_within_rto,
        "mtpd_breaches": group.mtpd_breaches,
        "time_to_recover_unknown": group.unknown_ttr,
        "runs_at_speed": group.at_speed,
    }


def _notes(groups: list[GroupSummary]) -> list[str]:
    """What the figures need said beside them: exercise time, when a run was played at a speed."""
    return [EXERCISE_TIME_NOTE] if any(g.mode == "exercise" and g.at_speed for g in groups) else []


def _csv_row(group: GroupSummary) -> list[object]:
    """One group as a CSV row (:data:`CSV_COLUMNS`): seconds, empty when unknown."""
    doc = _group_json(group)
    row: list[object] = [doc["key"] or "", doc["mode"], doc["runs"]]
    for definition in SUMMARISED_FIGURES:
        figure = doc[definition.key]
        row += ["" if figure[stat] is None else f"{figure[stat]:g}" for stat in _STATS]
    share = doc["share_within_rto"]
    row += [
        doc["within_rto"],
        doc["rto_known"],
        "" if share is None else f"{share:.4f}",
        doc["mtpd_breaches"],
        doc["time_to_recover_unknown"],
    ]
    return row


def _median_p90(dist: Distribution) -> str:
    if dist.count == 0:
        return "-"
    return f"{format_duration(dist.median)} / {format_duration(dist.p90)}"


def _print_groups(groups: list[GroupSummary], *, by: str, window: str) -> None:
    if not groups:
        echo(f"No runs {window}.")
        return
    for mode, title in MODES.items():
        rows = [g for g in groups if g.mode == mode]
        if not rows:
            continue
        table = Table(title=f"{title} by {by}, {window}", title_justify="left")
        for column in (
            by,
            "runs",
            "time to recover median / p90",
            "max",
            "within RTO",
            "MTPD breached",
            "time to detect median / p90",
            "time to acknowledge median / p90",
            "time to mitigate median / p90",
        ):
            table.add_column(column, justify="left" if column == by else "right")
        for group in rows:
            share = f" ({group.share_within_rto:.0%})" if group.share_within_rto is not None else ""
            within = f"{group.within_rto}/{group.rto_known}{share}" if group.rto_known else "-"
            ttr = _median_p90(group.ttr)
            if group.unknown_ttr:
                ttr += f" ({group.unknown_ttr} unknown)"
            table.add_row(
                Text(group.key or "(none)"),
                str(group.count),
                ttr,
                format_duration(group.ttr.max),
                within,
                str(group.mtpd_breaches),
                _median_p90(group.ttd),
                _median_p90(group.tta),
                _median_p90(group.time_to_mitigate),
            )
        out.print(table)
        if mode == "exercise":
            for note in _notes(rows):
                echo(note)
    echo(
        "time to recover: impact started (else declared) → recovered (MBCO reached); "
        "p90: 90th percentile (nearest rank); within RTO: runs recovered within their RTO / runs where both are known"
    )


def metrics_cmd(
    runbook: Annotated[str | None, typer.Option("--runbook", help="Only runs of this runbook id.")] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only runs concerning this service id.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="real or exercise (default: both, shown apart).")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start of the window, a date or ISO time (default: a year before --until)."),
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="End of the window, exclusive (default: now).")] = None,
    by: Annotated[str, typer.Option("--by", help="Group by service or runbook.")] = "service",
    json_out: JsonOption = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout, one row per group.")] = False,
    tz_name: TzOption = None,
) -> None:
    """Recovery-time figures per service (or runbook): real disruptions and exercises apart."""
    if mode is not None and mode not in MODES:
        raise InputError(f"--mode {mode}: use real or exercise")
    if by not in ("service", "runbook"):
        raise InputError(f"--by {by}: use service or runbook")
    if json_out and csv_out:
        raise InputError("--json and --csv: choose one")
    tz = resolve_timezone(tz_name)
    end = _parse_when("--until", until, tz) if until else clock.now()
    start = _parse_when("--since", since, tz) if since else end - timedelta(days=365)
    if start >= end:
        raise InputError(f"--since {shown_time(start, tz)} is not before --until {shown_time(end, tz)}")
    settings = load_settings()
    fallback = _fallback(settings.runbooks)
    with Store.open(settings.database_url) as store:
        timelines = load_timelines(
            store,
            since=start,
            until=end,
            mode=cast(Mode | None, mode),
            runbook_id=runbook,
            service=service,
            fallback=fallback,
        )
    groups = summarise(timelines, by=cast(Any, by), since=start, until=end)
    if service is not None and by == "service":
        # A run concerning several services counts under each; --service asks for one of them.
        groups = [g for g in groups if g.key == service]
    if csv_out:
        print_csv(CSV_COLUMNS, [_csv_row(g) for g in groups])
        return
    if json_out:
        print_json(
            {
                "window": {"since": start.astimezone(UTC).isoformat(), "until": end.astimezone(UTC).isoformat()},
                "filters": {"runbook": runbook, "service": service, "mode": mode},
                "by": by,
                "figures": {f.key: {"label": f.label, "from_to": f.definition} for f in SUMMARISED_FIGURES},
                "groups": [_group_json(g) for g in groups],
                "notes": _notes(groups),
            }
        )
        return
    _print_groups(groups, by=by, window=f"{shown_time(start, tz)} to {shown_time(end, tz)}")
