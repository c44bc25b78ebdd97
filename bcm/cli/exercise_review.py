"""``bcm exercise observe`` and ``bcm exercise hotwash``: what evaluators record on an exercise run.

Only a holder of one of the exercise's evaluator roles may record; each observation is audited.
A rating given here is the objective's final rating in the after-action report (``bcm report
aar``), shown beside the rating the timeline suggests.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bcm.cli.output import echo, fail
from bcm.cli.status import RunArgument, open_store
from bcm.config import load_settings
from bcm.exercises.observations import record_hotwash, record_observation
from bcm.vocabulary import RATING_MEANINGS, RATINGS

ByOption = Annotated[
    str, typer.Option("--by", help="Who records it (an evaluator of the exercise): name, Slack user id or email.")
]
NoteOption = Annotated[str, typer.Option("--note", help="What was observed.")]


def observe_cmd(
    run: RunArgument,
    objective: Annotated[str, typer.Option("--objective", help="The objective's id in the exercise.")],
    note: NoteOption,
    by: ByOption,
    rating: Annotated[
        str | None,
        typer.Option(
            "--rating",
            help="HSEEP rating, final in the report: "
            + ", ".join(f"{r} ({RATING_MEANINGS[r]})" for r in RATINGS)
            + ".",
        ),
    ] = None,
    strength: Annotated[bool, typer.Option("--strength", help="A strength.")] = False,
    improvement: Annotated[bool, typer.Option("--improvement", help="An area for improvement.")] = False,
    root_cause: Annotated[
        str | None, typer.Option("--root-cause", help="Why it happened (with --improvement).")
    ] = None,
) -> None:
    """Record an evaluator's observation on an objective, with an optional rating (audited)."""
    if strength and improvement:
        fail("give --strength or --improvement, not both: record them as two observations")
    kind = "strength" if strength else "improvement" if improvement else "note"
    settings = load_settings()
    with open_store(settings, write=True) as store:
        recorded = record_observation(
            store,
            run,
            objective_id=objective,
            note=note,
            who=by,
            kind=kind,
            rating=rating,
            root_cause=root_cause,
            library_root=settings.runbooks,
        )
    obs = recorded.observation
    what = {"strength": "strength", "improvement": "area for improvement", "note": "observation"}[obs.kind]
    rated = "" if obs.rating is None else f", rating {obs.rating} ({RATING_MEANINGS.get(obs.rating, '?')})"  # type: ignore[call-overload]
    echo(
        f"{what} {obs.id} recorded on run {recorded.run.short_id}, objective {obs.objective_id}{rated}, "
        f"by {obs.by} ({obs.role})"
    )
    if recorded.suggested is not None:
        final = "your rating is final; both are kept" if obs.rating else "the report shows it unless an evaluator rates"
        echo(f"the timeline suggests {recorded.suggested}: {recorded.suggested_detail} ({final})")


def hotwash_cmd(run: RunArgument, note: NoteOption, by: ByOption) -> None:
    """Record a hot-wash note: what players and evaluators said right after ENDEX (audited)."""
    settings = load_settings()
    with open_store(settings, write=True) as store:
        recorded = record_hotwash(store, run, note=note, who=by, library_root=settings.runbooks)
    obs = recorded.observation
    echo(f"hot-wash note {obs.id} recorded on run {recorded.run.short_id} by {obs.by} ({obs.role})")
