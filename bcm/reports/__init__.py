"""Reports from bcm's records: the run summary (``run_summary``), the after-action report and
improvement plan (``aar``, templates in ``templates/``); the continuity report next.

Each report is data assembly (pure functions over the store's records and the metrics) plus
rendering; nothing here imports Prefect or talks to Slack: flows/ and the CLI publish them.
"""
