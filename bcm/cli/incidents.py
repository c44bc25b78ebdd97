"""``incident record`` and ``incident import``: disruptions handled outside bcm, so the figures
cover every disruption.

Times are given in ISO 8601 with an offset and shown in the user's zone (``--tz``, else
``$BCM_TIMEZONE``, else the machine's). A bad value is an ``InputError`` naming the option, or for
an import every bad row by line: exit 2, nothing recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bcm.cli.output import JsonOption, TzOption, echo, out, print_json, resolve_timezone, seconds, shown_time
from bcm.cli.output import who as who_is
from bcm.config import load_settings
from bcm.durations import format_duration
from bcm.incidents import import_csv, record_disruption
from bcm.metrics import FIGURES, RunFigures, run_figures
from bcm.spec import Library, load_library
from bcm.spec.problems import display_path
from bcm.store import RunRecord, Store
from bcm.timelines import run_timeline

group = typer.Typer(
    help="Record disruptions handled outside bcm, so the figures cover every disruption.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_TimeOption = Annotated[str | None, typer.Option(help="ISO 8601 time with a UTC offset.")]


def _library() -> Library:
    return load_library(load_settings().runbooks)


def _who(by: str | None) -> str:
    return who_is(by)


def _figures_json(figures: RunFigures) -> dict[str, Any]:
    return {
        "time_to_detect_s": seconds(figures.ttd.value),
        "time_to_acknowledge_s": seconds(figures.tta.value),
        "time_to_mitigate_s": seconds(figures.time_to_mitigate.value),
        "time_to_recover_s": seconds(figures.ttr.value),
        "time_to_recover_from": figures.ttr_basis,
        "rto_attained": figures.rto_attained,
        "rto_margin_s": seconds(figures.rto_margin),
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


@group.command("record")
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
        print_json({"recorded": doc})
        return
    echo(f"recorded disruption {run.short_id} ({run.runbook_id}, {run.severity}) of {', '.join(run.services)}")
    table = Table(title="Timeline")
    table.add_column("milestone")
    table.add_column("at")
    for milestone, at in doc["milestones"].items():
        table.add_row(milestone, shown_time(datetime.fromisoformat(at), tz))
    out.print(table)
    echo(run_timeline_figures(doc))


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


@group.command("import")
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
        imported = [{"id": r.id, "services": list(r.services), "started_at": r.started_at.isoformat()} for r in runs]
        print_json({"imported": imported})
        return
    echo(f"imported {len(runs)} disruption{'s' if len(runs) != 1 else ''} from {display_path(file)}")
