"""The ``metrics``, ``incident`` and ``audit`` commands, registered on the ``bcm`` app by ``register``.

Conventions as in ``bcm.cli``: ``--json`` prints one JSON document on stdout, people get rich
tables, exit 0 ok, 1 failed (the audit chain is broken), 2 bad input (an ``InputError`` naming
what and where). Times are stored in UTC and shown in the user's zone: ``--tz``, else the
``BCM_TIMEZONE`` environment variable, else the machine's local zone. No figure is called
"MTTR": each says which "time to ..." it is.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bcm import clock
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.errors import InputError, SpecError
from bcm.incidents import import_csv, record_disruption
from bcm.metrics import (
    FIGURES,
    SUMMARISED_FIGURES,
    Distribution,
    GroupSummary,
    Mode,
    RunFigures,
    run_figures,
    summarise,
)
from bcm.spec import load_library
from bcm.spec.loader import Library
from bcm.spec.problems import display_path
from bcm.store import RunRecord, Store
from bcm.timelines import TargetsFallback, library_targets, load_timelines, run_timeline

__all__ = ["register", "resolve_timezone"]

# As in bcm.cli: data is printed as written (no emoji codes; data reaches markup only as a Text).
out = Console(highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)

_MODES: dict[str, str] = {"real": "Real disruptions", "exercise": "Exercises"}

TzOption = Annotated[
    str | None,
    typer.Option("--tz", help="Time zone to show times in, e.g. Europe/London (default: $BCM_TIMEZONE or local)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


# --------------------------------------------------------------------------- helpers


def resolve_timezone(name: str | None) -> tzinfo:
    """The zone to show times in: ``name``, else ``$BCM_TIMEZONE``, else the machine's local zone.

    Raises:
        InputError: ``name`` (or ``$BCM_TIMEZONE``) is not an IANA zone name.
    """
    chosen = name or os.environ.get("BCM_TIMEZONE") or None
    if chosen is None:
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC
    if chosen.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        where = "--tz" if name else "BCM_TIMEZONE"
        raise InputError(
            f"{where} {chosen}: unknown time zone: use an IANA name such as Europe/London or UTC"
        ) from None


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


def _show(at: datetime | None, tz: tzinfo) -> str:
    return "-" if at is None else at.astimezone(tz).isoformat(timespec="seconds")


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _fallback(settings_runbooks: Path) -> TargetsFallback | None:
    """Targets from the library for runs stored without any; none when the library cannot load."""
    try:
        return library_targets(load_library(settings_runbooks))
    except (InputError, SpecError) as exc:
        first = str(exc).splitlines()[0]
        err.print(f"note: runs stored without targets are shown without them ({first})", markup=False)
        return None


def _library() -> Library:
    return load_library(load_settings().runbooks)


def _who(by: str | None) -> str:
    return by or os.environ.get("USER") or "unknown"


# --------------------------------------------------------------------------- metrics


def _distribution_json(dist: Distribution) -> dict[str, Any]:
    return {
        "count": dist.count,
        "median_s": _seconds(dist.median),
        "p90_s": _seconds(dist.p90),
        "max_s": _seconds(dist.max),
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
    }


_CSV_COLUMNS = (
    "key",
    "mode",
    "runs",
    *(f"{f.key}_{stat}" for f in SUMMARISED_FIGURES for stat in ("count", "median_s", "p90_s", "max_s")),
    "within_rto",
    "rto_known",
    "share_within_rto",
    "mtpd_breaches",
    "time_to_recover_unknown",
)


def _csv_text(groups: list[GroupSummary]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for group in groups:
        doc = _group_json(group)
        row: list[object] = [doc["key"] or "", doc["mode"], doc["runs"]]
        for definition in SUMMARISED_FIGURES:
            figure = doc[definition.key]
            row += [
                "" if figure[stat] is None else f"{figure[stat]:g}" for stat in ("count", "median_s", "p90_s", "max_s")
            ]
        share = doc["share_within_rto"]
        row += [
            doc["within_rto"],
            doc["rto_known"],
            "" if share is None else f"{share:.4f}",
            doc["mtpd_breaches"],
            doc["time_to_recover_unknown"],
        ]
        writer.writerow(row)
    return buffer.getvalue()


def _median_p90(dist: Distribution) -> str:
    if dist.count == 0:
        return "-"
    return f"{format_duration(dist.median)} / {format_duration(dist.p90)}"


def _print_groups(groups: list[GroupSummary], *, by: str, window: str) -> None:
    if not groups:
        out.print(f"No runs {window}.", markup=False)
        return
    for mode, title in _MODES.items():
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
    out.print(
        "time to recover: impact started (else declared) → recovered (MBCO reached); "
        "p90: 90th percentile (nearest rank); within RTO: runs recovered within their RTO / runs where both are known",
        markup=False,
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
    if mode is not None and mode not in _MODES:
        raise InputError(f"--mode {mode}: use real or exercise")
    if by not in ("service", "runbook"):
        raise InputError(f"--by {by}: use service or runbook")
    if json_out and csv_out:
        raise InputError("--json and --csv: choose one")
    tz = resolve_timezone(tz_name)
    end = _parse_when("--until", until, tz) if until else clock.now()
    start = _parse_when("--since", since, tz) if since else end - timedelta(days=365)
    if start >= end:
        raise InputError(f"--since {_show(start, tz)} is not before --until {_show(end, tz)}")
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
        sys.stdout.write(_csv_text(groups))
        return
    if json_out:
        doc = {
            "window": {"since": start.astimezone(UTC).isoformat(), "until": end.astimezone(UTC).isoformat()},
            "filters": {"runbook": runbook, "service": service, "mode": mode},
            "by": by,
            "figures": {f.key: {"label": f.label, "from_to": f.definition} for f in SUMMARISED_FIGURES},
            "groups": [_group_json(g) for g in groups],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    _print_groups(groups, by=by, window=f"{_show(start, tz)} to {_show(end, tz)}")


# --------------------------------------------------------------------------- incidents

incident_app = typer.Typer(
    help="Record disruptions handled outside bcm, so the figures cover every disruption.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_TimeOption = Annotated[str | None, typer.Option(help="ISO 8601 time with a UTC offset.")]


def _figures_json(figures: RunFigures) -> dict[str, Any]:
    return {
        "time_to_detect_s": _seconds(figures.ttd.value),
        "time_to_acknowledge_s": _seconds(figures.tta.value),
        "time_to_mitigate_s": _seconds(figures.time_to_mitigate.value),
        "time_to_recover_s": _seconds(figures.ttr.value),
        "time_to_recover_from": figures.ttr_basis,
        "rto_attained": figures.rto_attained,
        "rto_margin_s": _seconds(figures.rto_margin),
        "mtpd_breached": figures.mtpd_breached,
        "rpo_attained": figures.rpo_attained,
        "problems": list(figures.problems),
    }


def _recorded_json(store: Store, run: RunRecord) -> dict[str, Any]:
    timeline = run_timeline(store, run.id)
    assert timeline is not None
    figures = run_figures(timeline)
    return {
        "id": run.id,
        "short_id": run.short_id,
        "runbook": run.runbook_id,
        "title": run.runbook_title,
        "services": list(run.services),
        "severity": run.severity,
        "source": run.source,
        "milestones": {m.milestone: m.at.isoformat() for m in timeline.marks},
        "targets": run.targets.to_json(),
        "figures": _figures_json(figures),
    }


@incident_app.command("record")
def record_cmd(
    service: Annotated[
        list[str] | None, typer.Option("--service", help="A disrupted service id (repeat for several).")
    ] = None,
    impact_started: _TimeOption = None,
    detected: _TimeOption = None,
    acknowledged: _TimeOption = None,
    declared: _TimeOption = None,
    mitigated: _TimeOption = None,
    recovered: _TimeOption = None,
    resolved: _TimeOption = None,
    stood_down: _TimeOption = None,
    runbook: Annotated[str | None, typer.Option(help="The runbook that applied (its id).")] = None,
    severity: Annotated[str | None, typer.Option(help="sev1, sev2, sev3 or sev4.")] = None,
    data_loss: Annotated[str | None, typer.Option(help="The data-loss window, e.g. 15m (for RPO).")] = None,
    title: Annotated[str | None, typer.Option(help="A short description.")] = None,
    reference: Annotated[str | None, typer.Option(help="Your ticket or incident id.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who records it (default: $USER).")] = None,
    json_out: JsonOption = False,
    tz_name: TzOption = None,
) -> None:
    """Record one real disruption handled outside bcm (times in ISO 8601 with an offset)."""
    tz = resolve_timezone(tz_name)
    values = {
        "service": ";".join(service or []),
        "impact_started": impact_started,
        "detected": detected,
        "acknowledged": acknowledged,
        "declared": declared,
        "mitigated": mitigated,
        "recovered": recovered,
        "resolved": resolved,
        "stood_down": stood_down,
        "runbook": runbook,
        "severity": severity,
        "data_loss": data_loss,
        "title": title,
        "reference": reference,
    }
    library = _library()
    with Store.open(load_settings().database_url) as store:
        run = record_disruption(store, library, values, by=_who(by))
        doc = _recorded_json(store, run)
    if json_out:
        sys.stdout.write(json.dumps({"recorded": doc}, indent=2) + "\n")
        return
    out.print(
        f"recorded disruption {run.short_id} ({run.runbook_id}, {run.severity}) of {', '.join(run.services)}",
        markup=False,
    )
    table = Table(title="Timeline")
    table.add_column("milestone")
    table.add_column("at")
    for milestone, at in doc["milestones"].items():
        table.add_row(milestone, _show(datetime.fromisoformat(at), tz))
    out.print(table)
    out.print(run_timeline_figures(doc), markup=False)


def run_timeline_figures(doc: dict[str, Any]) -> str:
    """One line with a recorded disruption's figures, from its JSON document."""
    figures = doc["figures"]
    bits = []
    for definition in (f for f in FIGURES if f.summarised):
        value = figures[f"{definition.key}_s"]
        bits.append(f"{definition.label} {format_duration(None if value is None else timedelta(seconds=value))}")
    rto_s = doc["targets"]["rto_s"]
    rto = None if rto_s is None else timedelta(seconds=rto_s)
    margin = figures["rto_margin_s"]
    if figures["rto_attained"] is None or margin is None:
        bits.append(f"RTO {format_duration(rto)}: not known")
    elif figures["rto_attained"]:
        bits.append(f"RTO {format_duration(rto)} attained with {format_duration(timedelta(seconds=margin))} to spare")
    else:
        bits.append(f"RTO {format_duration(rto)} missed by {format_duration(timedelta(seconds=-margin))}")
    if figures["mtpd_breached"]:
        bits.append("MTPD breached")
    return "; ".join(bits)


@incident_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A CSV file; the columns are listed in the README.")],
    by: Annotated[str | None, typer.Option("--by", help="Who imports it (default: $USER).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Import past disruptions from a CSV file: all rows or none; every bad row named by line."""
    library = _library()
    with Store.open(load_settings().database_url) as store:
        runs = import_csv(store, library, file, by=_who(by))
    if json_out:
        sys.stdout.write(
            json.dumps(
                {
                    "imported": [
                        {"id": r.id, "services": list(r.services), "started_at": r.started_at.isoformat()} for r in runs
                    ]
                },
                indent=2,
            )
            + "\n"
        )
        return
    out.print(f"imported {len(runs)} disruption{'s' if len(runs) != 1 else ''} from {display_path(file)}", markup=False)


# --------------------------------------------------------------------------- audit

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify the chain, export evidence.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@audit_app.command("verify")
def verify_cmd(json_out: JsonOption = False) -> None:
    """Recompute the audit chain; name the first entry changed or removed (exit 1 when broken)."""
    with Store.open(load_settings().database_url) as store:
        result = store.verify_audit()
    if json_out:
        doc = {
            "ok": result.ok,
            "checked": result.checked,
            "first_broken_seq": result.first_broken_seq,
            "reason": result.reason,
            "head_hash": result.head_hash,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif result.ok:
        head = f"; head hash {result.head_hash} (keep it: removing entries from the end is only visible against it)"
        out.print(f"audit chain intact: {result.checked} entries{head if result.head_hash else ''}", markup=False)
    else:
        err.print(f"audit chain broken at entry {result.first_broken_seq}: {result.reason}", markup=False)
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("export")
def export_cmd(
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run's entries (id or 8-character prefix).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write audit entries with their hashes as JSON lines: evidence for auditors."""
    with Store.open(load_settings().database_url) as store:
        run_id = store.get_run(run).id if run is not None else None
        entries = store.export_audit(run_id=run_id)
    text = "".join(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n" for entry in entries)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out_file}: cannot write it: {exc.strerror}") from None
    err.print(f"wrote {len(entries)} audit entries to {display_path(out_file)}", markup=False)


# --------------------------------------------------------------------------- wiring


def register(app: typer.Typer) -> None:
    """Add ``metrics``, ``incident record|import`` and ``audit verify|export`` to ``app``."""
    app.command("metrics")(metrics_cmd)
    app.add_typer(incident_app, name="incident")
    app.add_typer(audit_app, name="audit")
