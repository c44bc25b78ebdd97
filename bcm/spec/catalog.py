"""The catalog: services with their business-impact analysis, stakeholder roles, obligations.

It lives in ``catalog/`` at the top of a runbook library (``services.yaml``,
``stakeholders.yaml``, and ``obligations.yaml`` when the library runs deadline clocks); runbooks
are checked against the nearest catalog at or above their folder.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from bcm.durations import format_duration
from bcm.spec.models import Role, Service, Services, Stakeholders
from bcm.spec.obligation_catalog import load_obligations
from bcm.spec.obligations import Jurisdiction, Obligation
from bcm.spec.problems import Findings, Path_, Problem, unknown
from bcm.spec.reading import ReadFile, read_file
from bcm.spec.validation import check_model

CATALOG_DIR = "catalog"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Catalog:
    """Services (with their BIA), stakeholder roles, and the obligations (deadline clocks) with
    the jurisdictions their clocks are counted in (none when the catalog has no obligations.yaml)."""

    services: dict[str, Service]
    roles: dict[str, Role]
    directory: Path
    obligations: dict[str, Obligation] = field(default_factory=dict)
    jurisdictions: dict[str, Jurisdiction] = field(default_factory=dict)


def find_catalog(start: Path, fallback: Path | None = None) -> Path:
    """The catalog folder for runbooks in ``start``: the nearest ``catalog/`` at or above it."""
    for folder in [start, *start.parents]:
        if (folder / CATALOG_DIR / "services.yaml").exists():
            return folder / CATALOG_DIR
    if fallback is not None and (fallback / CATALOG_DIR).exists():
        return fallback / CATALOG_DIR
    return start / CATALOG_DIR


def load_catalog(directory: Path) -> tuple[Catalog | None, list[Problem]]:
    """Load ``services.yaml``, ``stakeholders.yaml`` and ``obligations.yaml`` (when there is one)
    from ``directory`` and check them together.

    Returns:
        The catalog (None when there are problems) and every problem found.
    """
    services, services_file, problems = _load(directory / "services.yaml", Services)
    stakeholders, _, found = _load(directory / "stakeholders.yaml", Stakeholders)
    problems += found
    # Owners of obligations are roles: with no readable roles, none is called unknown.
    obligations, found = load_obligations(directory, roles=stakeholders.roles if stakeholders else _ANY_ROLE)
    problems += found
    if services is None or stakeholders is None or services_file.document is None or obligations is None:
        return None, problems
    roles: dict[str, Role] = dict(stakeholders.roles)
    findings = Findings(services_file.file, services_file.document.source)
    by_id = check_services(services.services, roles, findings)
    problems += findings.problems
    if problems:
        return None, problems
    catalog = Catalog(
        services=by_id,
        roles=roles,
        directory=directory,
        obligations=obligations.obligations,
        jurisdictions=obligations.jurisdictions,
    )
    return catalog, problems


class _AnyRole(frozenset[str]):
    """Holds every role: obligations are checked against it when stakeholders.yaml has problems."""

    def __contains__(self, role: object) -> bool:
        return True


_ANY_ROLE: Collection[str] = _AnyRole()


def _load(path: Path, model: type[M]) -> tuple[M | None, ReadFile, list[Problem]]:
    read = read_file(path, needed_by=": the catalog needs it")
    if read.document is None:
        return None, read, list(read.problems)
    checked = check_model(model, read.document, read.file)
    return checked.value, read, [*read.problems, *checked.problems]


def check_services(services: list[Service], roles: dict[str, Role], findings: Findings) -> dict[str, Service]:
    """Check the services against each other and the roles; return them by id.

    Ids are unique, owners and BIA approvers are roles, the RTO is below the MTPD, and
    dependencies name other services.
    """
    by_id: dict[str, Service] = {}
    for i, service in enumerate(services):
        if service.id in by_id:
            findings.add(("services", i, "id"), f"duplicate service id '{service.id}'")
        by_id[service.id] = service
    for i, service in enumerate(services):
        base: Path_ = ("services", i)
        findings.check_role((*base, "owner"), service.owner, roles)
        if service.bia is not None:
            findings.check_role((*base, "bia", "approved_by"), service.bia.approved_by, roles)
        if service.rto >= service.mtpd:
            findings.add(
                (*base, "rto"),
                f"RTO {format_duration(service.rto)} must be below the MTPD "
                f"{format_duration(service.mtpd)} (the maximum tolerable period of disruption)",
            )
        for j, dep in enumerate(service.dependencies.services):
            if dep not in by_id:
                findings.add((*base, "dependencies", "services", j), unknown("service", dep, by_id))
            elif dep == service.id:
                findings.add((*base, "dependencies", "services", j), "a service cannot depend on itself")
    return by_id
