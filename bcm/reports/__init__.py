"""Reports from bcm's records: the run summary today; the after-action and continuity reports next.

Each report is data assembly (pure functions over the store's records and the metrics) plus
rendering; nothing here imports Prefect or talks to Slack: flows/ and the CLI publish them.
"""
