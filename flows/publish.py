"""Publish a finished run to Prefect: a table artifact, a markdown summary and events.

Called by the runbook flow when a run ends. The artifacts show in the flow run's page; the events
let Prefect automations react (see ``prefect/automations/rto-breached.yaml``):

- ``bcm.run.completed`` for every run;
- ``bcm.rto.breached`` when the time to recover exceeded the RTO;
- ``bcm.milestone.<name>`` for each milestone reached, at the time it was reached.

Each event's resource is ``bcm.run.<run id>`` (labels ``bcm.mode``, ``bcm.runbook``,
``bcm.status``, ``bcm.services``); its related resources are ``bcm.service.<id>`` (role
``service``) for each service, ``bcm.runbook.<id>`` (role ``runbook``) and ``bcm.mode.<mode>``
(role ``mode``). Publishing never fails a run: any error is logged and the run's result stands.
"""

from __future__ import annotations

import logging

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from bcm.config import load_settings
from bcm.metrics import run_figures
from bcm.reports.run_summary import artifact_key, run_events, summary_markdown, timeline_table
from bcm.spec import load_one
from bcm.spec.targets import runbook_targets
from bcm.store import Store
from bcm.timelines import run_timeline

__all__ = ["publish_run_results"]

logger = logging.getLogger("bcm.publish")


def publish_run_results(run_id: str) -> None:
    """Create the run's artifacts and emit its events; log and carry on when anything fails."""
    try:
        _publish(run_id)
    except Exception:
        logger.exception("could not publish the results of run %s to Prefect; the run itself is unaffected", run_id)


def _publish(run_id: str) -> None:
    settings = load_settings()
    with Store.open(settings.database_url) as store:
        record = store.get_run(run_id)
        fallback = None
        if record.targets.empty and record.runbook_path:
            loaded, catalog = load_one(record.runbook_path, library_root=settings.runbooks)
            targets = runbook_targets(loaded, catalog)
            fallback = lambda run: targets  # noqa: E731
        timeline = run_timeline(store, record.id, fallback=fallback)
    if timeline is None:  # a dry run: nothing was measured
        return
    figures = run_figures(timeline)
    create_table_artifact(
        table=timeline_table(timeline, figures),
        key=artifact_key(record.id),
        description=f"Timeline and figures of {record.runbook_id} run {record.short_id} ({record.mode})",
    )
    create_markdown_artifact(
        markdown=summary_markdown(record, timeline, figures),
        key=artifact_key(record.id, "summary"),
        description=f"Summary of {record.runbook_id} run {record.short_id} ({record.mode})",
    )
    for event in run_events(record, timeline, figures):
        emit_event(**event)
