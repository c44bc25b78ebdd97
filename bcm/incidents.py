"""Disruptions handled outside bcm: record one, or import many from a CSV file.

So that the recovery-time figures cover every disruption, not only those run through bcm, a
disruption handled by other means is stored as a run: mode ``real``, runbook ``external`` (or the
runbook given), triggered by whoever recorded it, status ``recorded``, with a milestone for every
time given. Its targets are those of the runbook given, else the tightest of its services' BIA,
as they are when it is recorded. Every recorded disruption is audited (``incident.recorded`` or
``incident.imported``, the latter with the file and line it came from).

CSV columns (a header row is required; column order is free; names are lowercase):

==================  =========  ==========================================================
column              required   meaning
==================  =========  ==========================================================
``service``         yes [1]_   the service id from the catalog; several separated by ``;``
``impact_started``  yes [2]_   when the impact began
``detected``                   when the disruption was detected
``acknowledged``               when someone took it on
``declared``        yes [2]_   when it was declared an incident / continuity event
``mitigated``                  when the impact was mitigated
``recovered``                  when the service was back at its MBCO (time to recover ends)
``resolved``                   when full service was back
``stood_down``                 when the response stood down
``runbook``                    the runbook that applied (an id from the library)
``severity``                   ``sev1`` … ``sev4`` (default: the runbook's, else ``unknown``)
``data_loss``                  the data-loss window, a duration such as ``15m`` (for RPO)
``title``                      a short description
``reference``                  your ticket or incident id, kept with the run
==================  =========  ==========================================================

.. [1] unless ``runbook`` is given: then the runbook's services are used.
.. [2] at least one of ``impact_started`` and ``declared``.

Times are ISO 8601 with a UTC offset or ``Z`` (``2026-03-29T02:30:00+01:00``,
``2026-03-29T01:30:00Z``); a time without an offset is refused because it is ambiguous (twice a
year a local clock shows the same hour twice). Times are stored in UTC.

An import is all or nothing: every row is checked first, every problem is reported as
``FILE:LINE: column: message`` (the line where the row starts), and nothing is written unless
every row is good. A disruption already stored (same services and the same first milestone) is
refused, so importing a file twice does not count its disruptions twice.
"""

from __future__ import annotations

import csv
import difflib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bcm import clock as bcm_clock
from bcm.clock import Clock, as_utc
from bcm.durations import DurationError, parse_duration
from bcm.errors import DisruptionError, InputError
from bcm.spec import Library, LoadedRunbook, Service
from bcm.spec.problems import display_path
from bcm.spec.summary import effective_targets
from bcm.store import RunImport, RunRecord, RunTargets, Store
from bcm.vocabulary import DISRUPTION_MILESTONES as MILESTONES
from bcm.vocabulary import MILESTONE_ORDER, RECORDED

__all__ = [
    "COLUMNS",
    "EXTERNAL_RUNBOOK",
    "Disruption",
    "DisruptionError",
    "check_disruption",
    "import_csv",
    "parse_time",
    "record_disruption",
]

EXTERNAL_RUNBOOK = "external"
"""The runbook id of a disruption recorded without a runbook."""

RECORDED_STATUS = RECORDED
"""The status of a run that records a disruption handled outside bcm."""

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")

COLUMNS: tuple[str, ...] = (
    "service",
    *MILESTONES,
    "runbook",
    "severity",
    "data_loss",
    "title",
    "reference",
)
"""The CSV columns, as documented in the module docstring."""

_ORDER = MILESTONE_ORDER


@dataclass(frozen=True)
class Disruption:
    """A disruption handled outside bcm, checked and ready to store.

    Attributes:
        services: the services it concerned (ids from the catalog).
        marks: milestone → when (timezone-aware).
        runbook_id: the runbook that applied, or ``external``.
        title: a short description.
        severity: ``sev1`` … ``sev4`` or ``unknown``.
        targets: the targets it is measured against (and its data-loss window, when known).
        reference: the ticket or incident id it has elsewhere.
        runbook_hash: sha256 of the runbook's text when one applied, else empty.
        runbook_path: the runbook's file when one applied, else empty.
    """

    services: tuple[str, ...]
    marks: dict[str, datetime]
    runbook_id: str = EXTERNAL_RUNBOOK
    title: str = ""
    severity: str = "unknown"
    targets: RunTargets = field(default_factory=RunTargets)
    reference: str | None = None
    runbook_hash: str = ""
    runbook_path: str = ""

    @property
    def first(self) -> datetime:
        """The earliest milestone: when the disruption is counted as having started."""
        return min(self.marks.values())

    @property
    def last(self) -> datetime:
        """The latest milestone."""
        return max(self.marks.values())


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time that has a UTC offset (or ``Z``).

    Raises:
        ValueError: with a message for people, when ``text`` is not such a time.
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO 8601 time: write it like 2026-03-29T02:30:00+01:00 or 2026-03-29T01:30:00Z"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        example = value if "T" in value or " " in value else f"{value}T00:00:00"  # a date alone: give a time too
        raise ValueError(
            f"{value!r} has no UTC offset, so it is ambiguous: add one, like {example}+01:00, or {example}Z for UTC"
        )
    return parsed


def check_disruption(
    values: Mapping[str, str | None], library: Library, *, now: datetime
) -> tuple[Disruption | None, list[tuple[str, str]]]:
    """Check one disruption given as column → text (empty text and ``None`` mean not given).

    Returns:
        The disruption (``None`` when there are problems) and every problem as (column, message).
    """
    problems: list[tuple[str, str]] = []

    def given(name: str) -> str | None:
        text = values.get(name)
        return text.strip() if text is not None and text.strip() else None

    loaded = None
    runbook_ref = given("runbook")
    if runbook_ref is not None:
        loaded = library.runbooks.get(runbook_ref)
        if loaded is None:
            problems.append(("runbook", _unknown("runbook", runbook_ref, library.runbooks)))
    services = _check_services(given("service"), loaded, library, problems)
    marks = _check_marks(values, given, now, problems)
    severity = given("severity")
    if severity is not None and severity not in SEVERITIES:
        problems.append(("severity", f"{severity!r} is not a severity: use {', '.join(SEVERITIES)}"))
    data_loss: timedelta | None = None
    data_loss_text = given("data_loss")
    if data_loss_text is not None:
        try:
            data_loss = parse_duration(data_loss_text)
        except DurationError as exc:
            problems.append(("data_loss", str(exc)))
    if problems:
        return None, problems
    title = given("title") or (loaded.runbook.title if loaded else f"Disruption of {', '.join(services)}")
    return (
        Disruption(
            services=tuple(services),
            marks=marks,
            runbook_id=loaded.runbook.id if loaded else EXTERNAL_RUNBOOK,
            title=title,
            severity=severity or (loaded.runbook.severity if loaded else "unknown"),
            targets=_targets(loaded, [library.catalog.services[s] for s in services], library, data_loss),
            reference=given("reference"),
            runbook_hash=loaded.sha256 if loaded else "",
            runbook_path=str(loaded.path) if loaded else "",
        ),
        [],
    )


def _check_services(
    text: str | None, loaded: LoadedRunbook | None, library: Library, problems: list[tuple[str, str]]
) -> list[str]:
    """The services named (``;``-separated), else the runbook's; problems for unknown or none."""
    services: list[str] = []
    if text is not None:
        for service_id in (s.strip() for s in text.split(";")):
            if not service_id:
                continue
            if service_id not in library.catalog.services:
                problems.append(("service", _unknown("service", service_id, library.catalog.services)))
            elif service_id not in services:
                services.append(service_id)
    elif loaded is not None:
        services = list(loaded.runbook.services)
    if not services and not any(column == "service" for column, _ in problems):
        problems.append(("service", "no service given: name the disrupted service from the catalog"))
    return services


def _check_marks(
    values: Mapping[str, str | None],
    given: Callable[[str], str | None],
    now: datetime,
    problems: list[tuple[str, str]],
) -> dict[str, datetime]:
    """The milestones given, parsed, in the past and in order; problems for the rest."""
    marks: dict[str, datetime] = {}
    for milestone in MILESTONES:
        text = given(milestone)
        if text is None:
            continue
        try:
            at = parse_time(text)
        except ValueError as exc:
            problems.append((milestone, str(exc)))
            continue
        if at > now:
            problems.append((milestone, f"{text} is in the future"))
            continue
        marks[milestone] = at
    if "impact_started" not in marks and "declared" not in marks and not any(p[0] in MILESTONES for p in problems):
        problems.append(
            ("impact_started", "give impact_started or declared: the time to recover is counted from one of them")
        )
    for earlier, later in _ORDER:
        if earlier in marks and later in marks and marks[later] < marks[earlier]:
            problems.append(
                (
                    later,
                    f"{later} ({values.get(later)}) is before {earlier} ({values.get(earlier)}): "
                    "the times are out of order",
                )
            )
    return marks


def _targets(
    loaded: LoadedRunbook | None, services: Sequence[Service], library: Library, data_loss: timedelta | None
) -> RunTargets:
    """The targets a recorded disruption is judged against: the runbook's where one is named (a
    service it does not list keeps its BIA), else the tightest of the services' BIA."""
    if loaded is None:
        return RunTargets(
            rto=min(s.rto for s in services),
            rpo=min(s.rpo for s in services),
            mtpd=min(s.mtpd for s in services),
            data_loss=data_loss,
        )
    found = effective_targets(loaded.runbook, library.catalog)
    rto, rpo, mtpd = found.rto, found.rpo, found.mtpd
    others = [s for s in services if s.id not in loaded.runbook.services]
    if others:
        rto = min([s.rto for s in others] + ([rto] if rto else []))
        rpo = min([s.rpo for s in others] + ([rpo] if rpo else []))
        mtpd = min([s.mtpd for s in others] + ([mtpd] if mtpd else []))
    return RunTargets(rto=rto, rpo=rpo, mtpd=mtpd, data_loss=data_loss, cadence=loaded.runbook.communication.cadence)


def record_disruption(
    store: Store,
    library: Library,
    values: Mapping[str, str | None],
    *,
    by: str,
    clock: Clock = bcm_clock.now,
) -> RunRecord:
    """Check and store one disruption (``bcm incident record``), audited as ``incident.recorded``.

    Args:
        values: column → text, with the columns of the CSV format.
        by: who records it (the run's ``triggered_by``).

    Raises:
        DisruptionError: every problem, as ``--option: message``; nothing is stored.
    """
    disruption, problems = check_disruption(values, library, now=clock())
    if disruption is None:
        raise DisruptionError(f"--{column.replace('_', '-')}: {message}" for column, message in problems)
    duplicate = _already_stored(store, [disruption])[0]
    if duplicate is not None:
        raise DisruptionError([f"--{_first_milestone(disruption).replace('_', '-')}: {duplicate}"])
    item = _run_import(disruption, by=by, source="record", audit={"reference": disruption.reference})
    store.import_runs([item], audit_kind="incident.recorded")
    return item.run


def import_csv(
    store: Store,
    library: Library,
    path: Path,
    *,
    by: str,
    clock: Clock = bcm_clock.now,
) -> list[RunRecord]:
    """Import every disruption in a CSV file in one transaction, or none.

    Raises:
        DisruptionError: every problem as ``FILE:LINE: column: message``; nothing is stored.
        InputError: the file cannot be read.
    """
    name = display_path(path)
    text = _read_text(path, name)
    problems: list[str] = []
    rows: list[tuple[int, Disruption]] = []
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        columns = _check_header(next(reader, None), name)
        now = clock()
        previous_line = reader.line_num
        for cells in reader:
            line = previous_line + 1
            previous_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                problems.append(f"{name}:{line}: the row has {len(cells)} fields, the header {len(columns)}")
                continue
            disruption, found = check_disruption(dict(zip(columns, cells, strict=True)), library, now=now)
            problems.extend(f"{name}:{line}: {column}: {message}" for column, message in found)
            if disruption is not None:
                rows.append((line, disruption))
    except csv.Error as exc:
        problems.append(f"{name}:{reader.line_num}: not valid CSV: {exc}")
    problems += _duplicates(store, rows, name)
    if not rows and not problems:
        problems.append(f"{name}: no disruptions in the file, only the header")
    if problems:
        count = len(problems)
        raise DisruptionError(
            problems, summary=f"{name}: {count} problem{'s' if count != 1 else ''}; nothing was imported"
        )
    items = [
        _run_import(
            disruption, by=by, source="import", audit={"file": name, "line": line, "reference": disruption.reference}
        )
        for line, disruption in rows
    ]
    store.import_runs(items, audit_kind="incident.imported")
    return [item.run for item in items]


def _read_text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start}): save the CSV as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read it: {exc.strerror}") from None


def _check_header(header: list[str] | None, name: str) -> list[str]:
    """The columns, lower-cased; every problem with them at once (nothing is read further)."""
    if header is None or not any(cell.strip() for cell in header):
        raise DisruptionError([f"{name}:1: the file is empty: the first line must name the columns"])
    columns = [cell.strip().lower() for cell in header]
    problems = [
        f"{name}:1: {cell or '(empty)'}: {_unknown('column', cell, COLUMNS)}" for cell in columns if cell not in COLUMNS
    ]
    problems += [
        f"{name}:1: {cell}: the column appears more than once"
        for cell in sorted({c for c in columns if columns.count(c) > 1})
    ]
    if "service" not in columns and "runbook" not in columns:
        problems.append(f"{name}:1: service: the service column is missing (columns: {', '.join(COLUMNS)})")
    if "impact_started" not in columns and "declared" not in columns:
        problems.append(f"{name}:1: impact_started: the impact_started (or declared) column is missing")
    if problems:
        raise DisruptionError(problems, summary=f"{name}: nothing was imported")
    return columns


def _duplicates(store: Store, rows: Sequence[tuple[int, Disruption]], name: str) -> list[str]:
    """Rows that repeat an earlier row, or a disruption already stored (same services and start)."""
    problems: list[str] = []
    seen: dict[tuple[tuple[str, ...], datetime], int] = {}
    for line, disruption in rows:
        key = (tuple(sorted(disruption.services)), disruption.first)
        if key in seen:
            problems.append(
                f"{name}:{line}: {_first_milestone(disruption)}: the same disruption as line {seen[key]} "
                "(same services and start)"
            )
        else:
            seen[key] = line
    for (line, disruption), duplicate in zip(rows, _already_stored(store, [d for _, d in rows]), strict=True):
        if duplicate:
            problems.append(f"{name}:{line}: {_first_milestone(disruption)}: {duplicate}")
    return problems


def _first_milestone(disruption: Disruption) -> str:
    first = disruption.first
    return next(m for m in MILESTONES if m in disruption.marks and disruption.marks[m] == first)


def _already_stored(store: Store, disruptions: Sequence[Disruption]) -> list[str | None]:
    """For each disruption, why it is already stored (a message), or ``None``."""
    if not disruptions:
        return []
    starts = [d.first for d in disruptions]
    existing: dict[tuple[tuple[str, ...], datetime], str] = {}
    for run in store.list_runs(mode="real", since=min(starts), until=max(starts) + timedelta(microseconds=1)):
        if run.source in ("record", "import"):
            existing[(tuple(sorted(run.services)), run.started_at)] = run.short_id
    found: list[str | None] = []
    for disruption in disruptions:
        short_id = existing.get((tuple(sorted(disruption.services)), disruption.first))
        found.append(
            None
            if short_id is None
            else f"already recorded as run {short_id} (same services and start): nothing to add"
        )
    return found


def _run_import(disruption: Disruption, *, by: str, source: str, audit: dict[str, object]) -> RunImport:
    run = RunRecord(
        id=uuid.uuid4().hex,
        runbook_id=disruption.runbook_id,
        runbook_title=disruption.title,
        runbook_hash=disruption.runbook_hash,
        runbook_path=disruption.runbook_path,
        mode="real",
        parameters={} if disruption.reference is None else {"reference": disruption.reference},
        triggered_by=by,
        services=disruption.services,
        severity=disruption.severity,
        status=RECORDED_STATUS,
        flow_run_id=None,
        error=None,
        started_at=as_utc(disruption.first),
        ended_at=as_utc(disruption.last),
        targets=disruption.targets,
        source=source,
    )
    marks = tuple(sorted(disruption.marks.items(), key=lambda item: (item[1], MILESTONES.index(item[0]))))
    return RunImport(run=run, marks=marks, audit={k: v for k, v in audit.items() if v is not None})


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{hint} (known: {', '.join(names)})"
