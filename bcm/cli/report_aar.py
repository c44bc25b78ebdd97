"""``bcm report aar``: the after-action report and improvement plan of an exercise run, to a file or stdout."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from bcm import clock
from bcm.cli.output import JsonOption, TzOption, echo, fail, print_json, resolve_timezone
from bcm.cli.status import open_store
from bcm.config import load_settings
from bcm.errors import RunNotFound
from bcm.exercises.evaluation import load_played_exercise, read_records, require_exercise_run
from bcm.exercises.library import exercise_files
from bcm.reports.aar import build_report, render_html, render_markdown, report_json
from bcm.spec.reading import read_file
from bcm.store import RunRecord, Store

ExerciseRunArgument = Annotated[
    str,
    typer.Argument(
        help="The exercise run (its id; the 8-character short id is enough), or an exercise id for its latest run."
    ),
]

#: The formats ``--out`` may have, by suffix.
FORMATS = {".md": render_markdown, ".markdown": render_markdown, ".html": render_html, ".htm": render_html}


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a half-written report is never left behind)."""
    if not path.parent.is_dir():
        fail(f"--out {path}: folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        fail(f"--out {path}: cannot write it: {exc.strerror or exc}")


def _the_run(store: Store, ref: str, library_root: Path) -> RunRecord:
    """The run ``ref`` names; failing that, when ``ref`` is an exercise id, that exercise's latest run.

    Raises:
        RunNotFound: no run has that id and no exercise of that id was played.
    """
    try:
        return store.get_run(ref)
    except RunNotFound:
        exercise_id = ref.strip()
        played = store.list_exercise_runs(exercise_id)
        if played:
            return store.get_run(played[-1].run_id)
        if _is_exercise(exercise_id, library_root):
            fail(f"exercise {exercise_id} has not been played yet: `bcm exercise run {exercise_id}`")
        raise


def _is_exercise(exercise_id: str, library_root: Path) -> bool:
    """Whether an exercise file of the library gives ``exercise_id`` as its id (the files are only read)."""
    for path in exercise_files(library_root):
        document = read_file(path).document
        if document is not None and isinstance(document.data, dict) and document.data.get("id") == exercise_id:
            return True
    return False


def aar_cmd(
    run: ExerciseRunArgument,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the report here: FILE.md (Markdown) or FILE.html (one page). Without it, the Markdown "
            "is printed on stdout.",
        ),
    ] = None,
    json_out: JsonOption = False,
    tz: TzOption = None,
) -> None:
    """Write the after-action report and improvement plan (HSEEP AAR/IP) of an exercise run.

    Objectives scored from the timeline with the evaluators' ratings, the improvement plan from the
    run's corrective actions (overdue ones flagged), the inject timeline and the hot wash. Without
    --out or --json the Markdown is printed on stdout. ``--json`` prints the report's data on stdout.
    RUN may be an exercise id: its latest run.
    """
    zone = resolve_timezone(tz)
    settings = load_settings()
    with open_store(settings) as store:
        record = _the_run(store, run, settings.runbooks)
        exercise_run = require_exercise_run(store, record, why="the after-action report is written for exercise runs")
        render = None
        if out is not None:
            render = FORMATS.get(out.suffix.lower())
            if render is None:
                fail(f"--out {out}: write the report to a .md (Markdown) or .html (one page) file")
        loaded = load_played_exercise(exercise_run, library_root=settings.runbooks)
        records = read_records(store, record, exercise_run, loaded)
        actions = store.list_actions(run_id=record.id)
    report = build_report(loaded, records, actions, now=clock.now(), tz=zone)
    if out is not None and render is not None:
        _write(out, render(report))
    if json_out:
        print_json(report_json(report))
        return
    if out is None:
        sys.stdout.write(render_markdown(report))
        return
    counts = report.evaluation.rating_counts()
    ratings = ", ".join(f"{r} {counts[r]}" for r in ("P", "S", "M", "U"))
    overdue = sum(1 for a in report.actions if a.overdue(report.today))
    echo(
        f"wrote {out}: {len(report.evaluation.objectives)} objectives ({ratings}, not rated {counts['none']}), "
        f"{len(report.actions)} corrective actions ({overdue} overdue), {len(report.injects)} injects"
    )
