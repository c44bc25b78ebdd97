"""The obligations catalog: ``obligations.yaml`` in the catalog folder, read with located problems.

Beyond the model (:mod:`bcm.spec.obligations`), the catalog is checked as a whole: obligation
ids are unique; owners are roles of ``stakeholders.yaml``; each obligation's jurisdiction is in
the ``jurisdictions`` table, whose time zones are IANA names and whose holidays are a country (and
subdivision) of the ``holidays`` library; chained clocks (``starts: {fulfilled: ID}``, in
``not_later_than`` too) name another obligation of the catalog and form no cycle. As for runbooks,
a document the model refuses is still cross-checked: each obligation and jurisdiction that is
valid on its own is, so a bad period and an unknown role are reported in the same pass.

A catalog folder without ``obligations.yaml`` has no obligations; that is not a problem. The
clocks (due times in each jurisdiction's calendar) are :class:`bcm.obligations.ObligationCatalog`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib
from pydantic import BaseModel, ValidationError

from bcm.spec.graph import find_cycle
from bcm.spec.obligations import Jurisdiction, Obligation, Obligations, Start
from bcm.spec.problems import Findings, Path_, Problem, did_you_mean, unknown
from bcm.spec.reading import ReadFile, read_file, read_string
from bcm.spec.validation import check_model

OBLIGATIONS_FILE = "obligations.yaml"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CatalogObligations:
    """The obligations of a library by id, and the jurisdictions their clocks are counted in."""

    obligations: dict[str, Obligation] = field(default_factory=dict)
    jurisdictions: dict[str, Jurisdiction] = field(default_factory=dict)

    def obligation(self, obligation_id: str) -> Obligation:
        """The obligation with ``obligation_id``.

        Raises:
            KeyError: when there is none; the message suggests the nearest id.
        """
        try:
            return self.obligations[obligation_id]
        except KeyError:
            raise KeyError(unknown("obligation", obligation_id, self.obligations)) from None


def load_obligations(directory: Path, *, roles: Collection[str]) -> tuple[CatalogObligations | None, list[Problem]]:
    """Load and check ``obligations.yaml`` from a catalog folder.

    Args:
        directory: the catalog folder (``runbooks/catalog``).
        roles: the stakeholder roles (owners must be among them).

    Returns:
        The obligations (None when there are problems; none when the folder has no obligations
        file) and every problem found, in file order.
    """
    path = directory / OBLIGATIONS_FILE
    if not path.exists():
        return CatalogObligations(), []
    return check_obligations(read_file(path), roles=roles)


def parse_obligations(
    text: str, file: str, *, roles: Collection[str]
) -> tuple[CatalogObligations | None, list[Problem]]:
    """:func:`load_obligations` for YAML text (``file`` names it in problems)."""
    return check_obligations(read_string(text, file), roles=roles)


def check_obligations(read: ReadFile, *, roles: Collection[str]) -> tuple[CatalogObligations | None, list[Problem]]:
    """Check a read obligations file: the model, then the catalog as a whole."""
    if read.document is None:
        return None, sorted(read.problems)
    checked = check_model(Obligations, read.document, read.file)
    data = read.document.data
    findings = Findings(read.file, read.document.source, reported=checked.reported)
    if checked.value is not None:
        jurisdictions = dict(checked.value.jurisdictions)
        entries = list(enumerate(checked.value.obligations))
    else:
        jurisdictions = {
            code: j for code, j in _valid_items(data, "jurisdictions", Jurisdiction) if isinstance(code, str)
        }
        entries = [(i, o) for i, o in _valid_items(data, "obligations", Obligation) if isinstance(i, int)]
    for code, jurisdiction in jurisdictions.items():
        check_jurisdiction(("jurisdictions", code), jurisdiction, findings)
    by_id = check_entries(entries, written_ids=_written(data, "obligations"), findings=findings, roles=roles)
    known_codes = _written(data, "jurisdictions")
    for i, obligation in entries:
        if obligation.jurisdiction not in known_codes:
            message = unknown("jurisdiction", obligation.jurisdiction, known_codes) + " (add it under jurisdictions)"
            findings.add(("obligations", i, "jurisdiction"), message)
    problems = sorted([*read.problems, *checked.problems, *findings.problems])
    if problems or checked.value is None:
        return None, problems
    return CatalogObligations(obligations=by_id, jurisdictions=jurisdictions), []


def check_entries(
    entries: list[tuple[int, Obligation]], *, written_ids: Collection[str], findings: Findings, roles: Collection[str]
) -> dict[str, Obligation]:
    """Check the obligations against each other and the roles; return them by id.

    Args:
        entries: (position in the file, obligation) for each obligation valid on its own.
        written_ids: every id written in the file, valid or not (a chained clock naming an
            obligation the model refused is not told it is unknown).
        findings: where the problems go.
        roles: the stakeholder roles.
    """
    by_id: dict[str, Obligation] = {}
    where: dict[str, int] = {}
    for i, obligation in entries:
        if obligation.id in by_id:
            findings.add(("obligations", i, "id"), f"duplicate obligation id '{obligation.id}'")
            continue
        by_id[obligation.id] = obligation
        where[obligation.id] = i
    for i, obligation in entries:
        findings.check_role(("obligations", i, "owner"), obligation.owner, roles)
        for path, start in _starts(("obligations", i), obligation):
            if start.fulfilled is None:
                continue
            if start.fulfilled == obligation.id:
                findings.add(path, f"'{obligation.id}' cannot start when it is itself fulfilled")
            elif start.fulfilled not in written_ids:
                findings.add(path, unknown("obligation", start.fulfilled, written_ids))
    chains = {ob_id: tuple(o for o in ob.chained_from if o != ob_id and o in by_id) for ob_id, ob in by_id.items()}
    cycle = find_cycle(chains)
    if cycle:
        first, after = by_id[cycle[0]], cycle[1]
        path = next(p for p, s in _starts(("obligations", where[first.id]), first) if s.fulfilled == after)
        findings.add(
            path,
            f"chained clocks form a cycle: {' → '.join(cycle)} (each starts when the next one is fulfilled)",
        )
    return by_id


def check_jurisdiction(path: Path_, jurisdiction: Jurisdiction, findings: Findings) -> None:
    """Record a problem for a time zone or holiday calendar that does not exist."""
    try:
        ZoneInfo(jurisdiction.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(jurisdiction.timezone, available_timezones())
        findings.add(
            (*path, "timezone"),
            f"unknown time zone '{jurisdiction.timezone}'{hint}: use an IANA name such as Europe/Brussels",
        )
    supported: dict[str, list[str]] = holidays_lib.list_supported_countries()
    country = jurisdiction.holidays
    if country not in supported:
        message = unknown("holidays country", country, supported)
        findings.add((*path, "holidays"), f"{message}: use a country code of the holidays library (US, GB, BE...)")
        return
    subdivisions = supported[country]
    if jurisdiction.subdivision is not None and jurisdiction.subdivision not in subdivisions:
        known = f" (known: {', '.join(subdivisions)})" if subdivisions else f" ({country} has none)"
        message = f"unknown subdivision '{jurisdiction.subdivision}' of {country}{known}"
        findings.add((*path, "subdivision"), message)


def _starts(base: Path_, obligation: Obligation) -> list[tuple[Path_, Start]]:
    """The clock's start and its second bound's, with where each is written."""
    found: list[tuple[Path_, Start]] = [((*base, "starts", "fulfilled"), obligation.starts)]
    if obligation.not_later_than is not None:
        found.append(((*base, "not_later_than", "starts", "fulfilled"), obligation.not_later_than.starts))
    return found


def _section(data: object, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _valid_items(data: object, key: str, model: type[M]) -> list[tuple[object, M]]:
    """The items of a list or mapping section that the model accepts on their own."""
    section = _section(data, key)
    pairs: list[tuple[object, object]] = []
    if isinstance(section, list):
        pairs = list(enumerate(section))
    elif isinstance(section, dict):
        pairs = list(section.items())
    valid: list[tuple[object, M]] = []
    for where, item in pairs:
        try:
            valid.append((where, model.model_validate(item)))
        except ValidationError:
            continue
    return valid


def _written(data: object, key: str) -> list[str]:
    """The ids (a list section's ``id`` keys) or codes (a mapping section's keys) as written."""
    section = _section(data, key)
    if isinstance(section, dict):
        return [k for k in section if isinstance(k, str)]
    if isinstance(section, list):
        return [item["id"] for item in section if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return []
