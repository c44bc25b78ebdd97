"""``bcm exercise plan``: the exercise programme by service, the next scheduled exercises, the gaps.

Reads the runbook library, its exercise files and the store's exercise runs; runs nothing and
imports no Prefect. The programme itself (what counts as held, the gaps, the next fire times) is
:mod:`bcm.exercises.programme`.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.table import Table

from bcm import clock
from bcm.cli.output import JsonOption, Text, TzOption, echo, out, print_json, resolve_timezone
from bcm.config import load_settings
from bcm.exercises.library import load_exercises
from bcm.exercises.programme import HeldExercise, NextExercise, Programme, programme_document, read_programme
from bcm.spec import load_library
from bcm.store import Store


def plan_cmd(json_out: JsonOption = False, tz_name: TzOption = None) -> None:
    """The exercise programme: per service (tier 1 first) the last exercise and the next, and the gaps."""
    tz = resolve_timezone(tz_name)
    settings = load_settings()
    library = load_library(settings.runbooks)
    exercises = load_exercises(settings.runbooks, library)
    with Store.open(settings.database_url) as store:
        programme = read_programme(store, library, exercises, as_of=clock.now(), tz=tz)
    if json_out:
        print_json(programme_document(programme))
        return
    _print(programme, tz)


def _when(at: datetime, tz: tzinfo) -> str:
    """``at`` in ``tz`` as the other tables show times: ``2026-12-02 13:23:40`` (the zone is in the title)."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _zone(at: datetime, tz: tzinfo) -> str:
    """The zone the table's times are in: its IANA name, else its abbreviation (``UTC``, ``CET``)."""
    return getattr(tz, "key", None) or at.astimezone(tz).tzname() or str(tz)


def _last(held: HeldExercise | None, tz: tzinfo) -> str:
    return "never" if held is None else f"{_when(held.at, tz)} {held.label}"


def _next(upcoming: NextExercise | None, tz: tzinfo) -> str:
    return "not scheduled" if upcoming is None else f"{_when(upcoming.at, tz)} {upcoming.exercise_id}"


def _print(programme: Programme, tz: tzinfo) -> None:
    table = Table(
        title=Text(
            f"Exercise programme at {_when(programme.as_of, tz)} "
            f"(times in {_zone(programme.as_of, tz)}; tier 1 exercised since {_when(programme.covered_since, tz)})"
        )
    )
    for column in ("tier", "service", "runbooks", "last exercise", "result", "next scheduled"):
        table.add_column(column)
    for sp in programme.services:
        cells = (
            str(sp.service.tier),
            sp.service.id,
            ", ".join(sp.runbooks) or "-",
            _last(sp.last, tz),
            "-" if sp.last is None else sp.last.result(),
            _next(sp.next, tz),
        )
        table.add_row(*(Text(cell) for cell in cells))
    out.print(table)
    if not programme.gaps:
        echo("No gaps.")
        return
    echo(f"Gaps ({len(programme.gaps)}):")
    for gap in programme.gaps:
        echo(f"  {gap.line}")
