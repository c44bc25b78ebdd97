"""A small runbook library for the metrics, incident and audit tests (the fixture catalog plus one runbook)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import FIXTURES

DNS_RUNBOOK = """\
version: 1
id: dns-outage
title: DNS outage
owner: network_ops
severity: sev2
services: [dns]
targets: {rto: 10m}
communication: {cadence: 30m}
phases:
  recovery:
    - id: restore
      manual: {by: network_ops, instructions: "Restore DNS."}
      marks: recovered
"""


def make_library(root: Path) -> Path:
    """Write the library under ``root/runbooks`` and return its path.

    Catalog (tests/fixtures/catalog): voice-core (RTO 2h, RPO 15m, MTPD 8h) and dns (RTO 15m,
    RPO 1h, MTPD 2h). Runbook dns-outage: RTO 10m, cadence 30m.
    """
    library = root / "runbooks"
    shutil.copytree(FIXTURES / "catalog", library / "catalog")
    (library / "dns-outage.yaml").write_text(DNS_RUNBOOK, encoding="utf-8")
    return library
