"""Readiness checks as a Prefect flow: each runbook's prevention steps, concurrently per runbook."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from bcm.comms import make_notifier
from bcm.config import load_settings
from bcm.engine.readiness import check_parameters, run_checks
from bcm.spec import load_library, load_one
from bcm.store import Store


@task(cache_policy=NO_CACHE, persist_result=False, task_run_name="check:{runbook}")
def check_runbook(runbook: str, given: dict[str, str]) -> list[dict[str, Any]]:
    """Run one runbook's readiness checks and record them."""
    settings = load_settings()
    loaded, catalog = load_one(runbook, library_root=settings.runbooks)
    with Store.open(settings.database_url) as store:
        results = run_checks(
            loaded,
            catalog,
            check_parameters(loaded, given),
            store=store,
            notifier=make_notifier(settings, store, catalog),
        )
    return [r.as_dict() for r in results]


@flow(name="readiness-checks", persist_result=False)
def readiness_checks(
    runbooks: list[str] | None = None, parameters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run the prevention steps of ``runbooks`` (default: every runbook that has some).

    Returns:
        One result per check: runbook, step, ok, status, detail.
    """
    settings = load_settings()
    if not runbooks:
        library = load_library(settings.runbooks)
        runbooks = [str(item.path) for item in library.runbooks.values() if item.runbook.phases.prevention]
    futures = [check_runbook.submit(ref, dict(parameters or {})) for ref in runbooks]
    return [result for future in futures for result in future.result()]
