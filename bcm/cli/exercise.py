"""``bcm exercise``: the exercise programme's commands, gathered from the modules that hold them.

exercise_play    run, end: play an exercise (injects on the exercise clock), stop it early
exercise_review  observe, hotwash: evaluators' observations and ratings, the hot wash
exercise_plan    plan: the programme by service, next scheduled, coverage gaps
"""

from __future__ import annotations

import typer

from bcm.cli import exercise_plan, exercise_play, exercise_review

group = typer.Typer(
    help="The exercise programme: run exercises, record observations, see the plan.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

group.command("run")(exercise_play.run_cmd)
group.command("end")(exercise_play.end_cmd)
group.command("observe")(exercise_review.observe_cmd)
group.command("hotwash")(exercise_review.hotwash_cmd)
group.command("plan")(exercise_plan.plan_cmd)
