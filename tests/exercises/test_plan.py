"""`bcm exercise plan`: the programme by service, the next scheduled exercise, and every kind of gap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bcm.exercises.library import load_exercises
from bcm.exercises.models import Schedule
from bcm.exercises.programme import (
    Programme,
    ScheduleError,
    next_fire,
    programme_document,
    read_programme,
)
from bcm.spec import load_library
from bcm.store import ExerciseRunRecord, Store
from tests.conftest import ROOT

AS_OF = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

SERVICES = """\
version: 1
services:
  - {id: voice-core, name: Voice core, owner: voice_ops, tier: 1, rto: 2h, rpo: 15m, mtpd: 8h,
     mbco: half the calls, recovery_strategy: warm-standby}
  - {id: dns, name: DNS resolvers, owner: network_ops, tier: 1, rto: 15m, rpo: 1h, mtpd: 2h,
     mbco: one site resolves, recovery_strategy: active-active}
  - {id: sso, name: Single sign-on, owner: network_ops, tier: 1, rto: 1h, rpo: 1h, mtpd: 4h,
     mbco: staff can log in, recovery_strategy: warm-standby}
  - {id: billing, name: Billing, owner: exec, tier: 2, rto: 1d, rpo: 1h, mtpd: 3d,
     mbco: bills go out, recovery_strategy: backup-restore}
  - {id: warehouse, name: Analytics warehouse, owner: exec, tier: 4, rto: 1d, rpo: 1d, mtpd: 7d,
     mbco: reports run, recovery_strategy: backup-restore}
"""

STAKEHOLDERS = """\
version: 1
roles:
  incident_commander: {name: Incident commander, members: [{name: Ada Lovelace, slack_user: U01ADA}]}
  voice_ops: {name: Voice operations, members: [{name: Alan Turing, slack_user: U01ALAN}]}
  network_ops: {name: Network operations, members: [{name: Edsger Dijkstra, slack_user: U01EDS}]}
  exec: {name: Executive on call, members: [{name: Barbara Liskov, slack_user: U01BARB}]}
"""

RUNBOOK = """\
version: 1
id: {id}
title: {title}
owner: voice_ops
severity: sev2
services: [{service}]
phases:
  communication:
    - id: declare
      notify: {{to: [exec], message: "Declared"}}
      marks: declared
  response:
    - id: confirm
      approve: {{by: incident_commander, prompt: "Go?"}}
      marks: acknowledged
  recovery:
    - id: restore
      manual: {{by: voice_ops, instructions: "Restore the service."}}
      marks: recovered
"""

EXERCISE = """\
version: 1
id: {id}
title: {title}
runbook: {runbook}
type: tabletop
scope: The on-call teams.
scenario: The service is down.
sponsor: exec
participants: [incident_commander, voice_ops]
evaluators: [network_ops]
{schedule}objectives:
{objectives}"""

VOICE_OBJECTIVES = """\
  - {id: ack-fast, title: Commander in charge fast, capability: operational-coordination,
     measure: {milestone: acknowledged, within: 15m}}
  - {id: confirm-fast, title: Go decision fast, capability: operational-coordination,
     measure: {step: confirm, within: 10m}}
  - {id: debrief, title: A useful hot wash, capability: planning}
"""

DNS_OBJECTIVES = """\
  - {id: recovered-fast, title: Resolution back within the hour, capability: infrastructure-systems,
     measure: {milestone: recovered, within: 1h}}
"""


def write_library(root: Path) -> Path:
    """Voice-core and dns with a runbook and an exercise each, billing a runbook only, sso and warehouse none."""
    (root / "catalog").mkdir(parents=True)
    (root / "exercises").mkdir()
    (root / "catalog" / "services.yaml").write_text(SERVICES)
    (root / "catalog" / "stakeholders.yaml").write_text(STAKEHOLDERS)
    for rid, title, service in (
        ("voice-outage", "Voice outage", "voice-core"),
        ("dns-outage", "DNS outage", "dns"),
        ("billing-outage", "Billing outage", "billing"),
    ):
        (root / f"{rid}.yaml").write_text(RUNBOOK.format(id=rid, title=title, service=service))
    voice = 'schedule: {cron: "0 10 * 3,9 2#1", timezone: Europe/London}\n'
    (root / "exercises" / "voice-tabletop.yaml").write_text(
        EXERCISE.format(
            id="voice-tabletop",
            title="Voice tabletop",
            runbook="voice-outage",
            schedule=voice,
            objectives=VOICE_OBJECTIVES,
        )
    )
    (root / "exercises" / "dns-drill.yaml").write_text(
        EXERCISE.format(id="dns-drill", title="DNS drill", runbook="dns-outage", schedule="", objectives=DNS_OBJECTIVES)
    )
    return root


class Seeder:
    """Writes exercise runs into a store the way the exercise flow does: a run, STARTEX, marks, steps, ENDEX."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.count = 0

    def run(
        self,
        runbook: str,
        service: str,
        at: datetime,
        *,
        exercise: str | None = None,
        mode: str = "exercise",
        status: str = "succeeded",
        ended_by: str | None = "played out",
        marks: dict[str, timedelta] | None = None,
        confirmed_after: timedelta | None = None,
    ) -> str:
        self.count += 1
        run_id = f"{self.count:08d}" + "0" * 24
        self.store.create_run(
            run_id=run_id,
            runbook_id=runbook,
            runbook_title=runbook,
            runbook_hash="ab" * 32,
            runbook_path=f"{runbook}.yaml",
            mode=mode,
            parameters={},
            triggered_by="schedule",
            services=[service],
            severity="sev2",
            started_at=at,
            status=status,
        )
        if exercise is not None:
            self.store.start_exercise(
                ExerciseRunRecord(
                    run_id=run_id,
                    exercise_id=exercise,
                    exercise_title=exercise,
                    exercise_hash="cd" * 32,
                    exercise_path=f"exercises/{exercise}.yaml",
                    speed=1.0,
                    auto_respond=False,
                    startex_at=at,
                    endex_at=None,
                    ended_by=None,
                )
            )
        for milestone, after in (marks or {}).items():
            self.store.add_mark(run_id, milestone, at + after, "step")
        if confirmed_after is not None:
            self.store.upsert_step(
                run_id,
                "confirm",
                phase="response",
                kind="approve",
                status="succeeded",
                started_at=at,
                ended_at=at + confirmed_after,
            )
        if exercise is not None and ended_by is not None:
            self.store.end_exercise(run_id, at + timedelta(minutes=30), ended_by)
        return run_id


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return write_library(tmp_path / "library")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'bcm.db'}", clock=lambda: AS_OF) as opened:
        yield opened


def seed_history(store: Store) -> None:
    """Voice: two tabletops missing ack-fast, the second stopped early; DNS: a drill in 2024; billing: a real run."""
    seed = Seeder(store)
    first = seed.run(
        "voice-outage",
        "voice-core",
        datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        exercise="voice-tabletop",
        marks={"acknowledged": timedelta(minutes=20)},
        confirmed_after=timedelta(minutes=5),
    )
    store.add_observation(
        first,
        objective_id="debrief",
        kind="strength",
        note="Frank and quick",
        by="Edsger Dijkstra",
        role="network_ops",
        at=datetime(2026, 3, 3, 11, 0, tzinfo=UTC),
        rating="S",
    )
    seed.run(
        "voice-outage",
        "voice-core",
        datetime(2026, 9, 1, 9, 0, tzinfo=UTC),
        exercise="voice-tabletop",
        status="cancelled",
        ended_by="Ada Lovelace",
        confirmed_after=timedelta(minutes=8),
    )
    seed.run(
        "dns-outage",
        "dns",
        datetime(2024, 11, 5, 14, 0, tzinfo=UTC),
        exercise="dns-drill",
        marks={"recovered": timedelta(minutes=30)},
    )
    seed.run("billing-outage", "billing", datetime(2026, 6, 1, 8, 0, tzinfo=UTC), mode="real")


def plan(library: Path, store: Store, as_of: datetime = AS_OF) -> Programme:
    runbooks = load_library(library)
    return read_programme(store, runbooks, load_exercises(library, runbooks), as_of=as_of)


def lines(programme: Programme) -> list[str]:
    return [gap.line for gap in programme.gaps]


def test_every_kind_of_gap_on_one_line(library: Path, store: Store) -> None:
    """Each gap of the seeded programme is one line, in the documented order."""
    seed_history(store)
    assert lines(plan(library, store)) == [
        "tier-1 service dns (DNS resolvers): not exercised in the last 12 months (last exercised 2024-11-05)",
        "tier-1 service sso (Single sign-on): not exercised in the last 12 months (never exercised)",
        "runbook billing-outage: never exercised (no exercise run)",
        "exercise voice-tabletop: objective ack-fast missed in its last two runs (2026-03-03 and 2026-09-01)",
        "service sso (Single sign-on, tier 1): no runbook covers it",
        "service warehouse (Analytics warehouse, tier 4): no runbook covers it",
        "runbook billing-outage: no exercise file tests it",
    ]


def test_services_by_tier_with_last_and_next(library: Path, store: Store) -> None:
    """Services come tier 1 first; each shows its runbooks, last exercise with result, and next one."""
    seed_history(store)
    rows = [
        (
            sp.service.tier,
            sp.service.id,
            sp.runbooks,
            None if sp.last is None else (sp.last.at.isoformat(), sp.last.label, sp.last.result()),
            None if sp.next is None else (sp.next.at.isoformat(), sp.next.exercise_id),
        )
        for sp in plan(library, store).services
    ]
    assert rows == [
        (
            1,
            "dns",
            ("dns-outage",),
            ("2024-11-05T14:00:00+00:00", "dns-drill", "succeeded; objectives 1 met, 0 missed"),
            None,
        ),
        (1, "sso", (), None, None),
        (
            1,
            "voice-core",
            ("voice-outage",),
            (
                "2026-09-01T09:00:00+00:00",
                "voice-tabletop",
                "cancelled, stopped early by Ada Lovelace; objectives 1 met, 1 missed (ack-fast), 1 not scored",
            ),
            ("2027-03-02T10:00:00+00:00", "voice-tabletop"),
        ),
        (2, "billing", ("billing-outage",), None, None),
        (4, "warehouse", (), None, None),
    ]


def test_stopped_early_still_counts_as_held(library: Path, store: Store) -> None:
    """An exercise ended early keeps its service covered, and the plan says it was stopped early."""
    seed = Seeder(store)
    seed.run(
        "voice-outage", "voice-core", AS_OF - timedelta(days=3), exercise="voice-tabletop", ended_by="Grace Hopper"
    )
    programme = plan(library, store)
    voice = next(sp for sp in programme.services if sp.service.id == "voice-core")
    assert voice.last is not None
    assert (voice.last.stopped_early, voice.last.result()) == (
        True,
        "succeeded, stopped early by Grace Hopper; objectives 0 met, 2 missed (ack-fast, confirm-fast), 1 not scored",
    )
    assert "voice-core" not in {gap.subject for gap in programme.gaps if gap.kind == "not-exercised"}


def test_library_without_any_exercise_run(library: Path, store: Store) -> None:
    """With no exercise run at all, every tier-1 service and every runbook is a gap; schedules still show."""
    programme = plan(library, store)
    assert lines(programme) == [
        "tier-1 service dns (DNS resolvers): not exercised in the last 12 months (never exercised)",
        "tier-1 service sso (Single sign-on): not exercised in the last 12 months (never exercised)",
        "tier-1 service voice-core (Voice core): not exercised in the last 12 months (never exercised)",
        "runbook billing-outage: never exercised (no exercise run)",
        "runbook dns-outage: never exercised (no exercise run)",
        "runbook voice-outage: never exercised (no exercise run)",
        "service sso (Single sign-on, tier 1): no runbook covers it",
        "service warehouse (Analytics warehouse, tier 4): no runbook covers it",
        "runbook billing-outage: no exercise file tests it",
    ]
    assert [(sp.service.id, sp.last, sp.next and sp.next.at.isoformat()) for sp in programme.services] == [
        ("dns", None, None),
        ("sso", None, None),
        ("voice-core", None, "2027-03-02T10:00:00+00:00"),
        ("billing", None, None),
        ("warehouse", None, None),
    ]


def test_objective_met_again_closes_the_gap(library: Path, store: Store) -> None:
    """A miss followed by a met run is no gap; a run still in play does not count as one of the last two."""
    seed = Seeder(store)
    for day, acknowledged in ((3, 20), (4, 10)):
        seed.run(
            "voice-outage",
            "voice-core",
            datetime(2026, 11, day, 10, 0, tzinfo=UTC),
            exercise="voice-tabletop",
            marks={"acknowledged": timedelta(minutes=acknowledged)},
            confirmed_after=timedelta(minutes=5),
        )
    seed.run(
        "voice-outage",
        "voice-core",
        AS_OF - timedelta(minutes=5),
        exercise="voice-tabletop",
        status="running",
        ended_by=None,
    )
    programme = plan(library, store)
    voice = next(p for p in programme.exercises if p.exercise.id == "voice-tabletop")
    assert [(h.at.isoformat(), h.finished, h.result()) for h in voice.held] == [
        ("2026-11-03T10:00:00+00:00", True, "succeeded; objectives 1 met, 1 missed (ack-fast), 1 not scored"),
        ("2026-11-04T10:00:00+00:00", True, "succeeded; objectives 2 met, 0 missed, 1 not scored"),
        ("2026-12-02T11:55:00+00:00", False, "in progress; objectives 0 met, 0 missed, 3 not scored"),
    ]
    assert [gap.kind for gap in programme.gaps if gap.subject == "voice-tabletop"] == []


def test_objective_not_due_when_play_was_ended_early_is_not_missed(library: Path, store: Store) -> None:
    """Two drills ended by a person 30m in, before their 1h objective was due: not scored, no missed-twice gap."""
    seed = Seeder(store)
    for day in (3, 4):
        seed.run(
            "dns-outage",
            "dns",
            datetime(2026, 11, day, 10, 0, tzinfo=UTC),
            exercise="dns-drill",
            ended_by="Ada Lovelace",
        )
    programme = plan(library, store)
    dns = next(p for p in programme.exercises if p.exercise.id == "dns-drill")
    assert [h.result() for h in dns.held] == [
        "succeeded, stopped early by Ada Lovelace; objectives 0 met, 0 missed, 1 not scored",
        "succeeded, stopped early by Ada Lovelace; objectives 0 met, 0 missed, 1 not scored",
    ]
    assert [gap.line for gap in programme.gaps if gap.kind == "objective-missed-twice"] == []


def test_runbook_run_in_exercise_mode_counts_as_held(library: Path, store: Store) -> None:
    """`bcm run --mode exercise` exercises the runbook and its services, without an exercise file or objectives."""
    Seeder(store).run("billing-outage", "billing", datetime(2026, 10, 1, 8, 0, tzinfo=UTC))
    programme = plan(library, store)
    billing = next(sp for sp in programme.services if sp.service.id == "billing")
    assert billing.last is not None
    assert (billing.last.label, billing.last.result()) == ("runbook billing-outage (exercise mode)", "succeeded")
    assert [gap.line for gap in programme.gaps if gap.subject == "billing-outage"] == [
        "runbook billing-outage: no exercise file tests it"
    ]


def test_unreadable_schedule_is_a_gap(library: Path, store: Store) -> None:
    """A schedule that cannot be computed (the library refuses one on load) gives no next date and a gap line."""
    runbooks = load_library(library)
    exercises = load_exercises(library, runbooks)
    voice = exercises.exercises["voice-tabletop"]
    odd = voice.exercise.model_copy(update={"schedule": Schedule(cron="0 10 * 3,9 2#1", timezone="Mars/Olympus_Mons")})
    exercises.exercises["voice-tabletop"] = replace(voice, exercise=odd)
    programme = read_programme(store, runbooks, exercises, as_of=AS_OF)
    assert lines(programme)[-1] == (
        "exercise voice-tabletop: schedule cannot be computed: unknown time zone 'Mars/Olympus_Mons': "
        "use an IANA name such as Europe/London"
    )
    assert next(sp for sp in programme.services if sp.service.id == "voice-core").next is None


def test_next_fire_in_the_schedule_zone_across_summer_time() -> None:
    """The first Tuesday of March and September at 10:00 London is 10:00 UTC in March, 09:00 UTC in September."""
    schedule = Schedule(cron="0 10 * 3,9 2#1", timezone="Europe/London")
    march = next_fire(schedule, AS_OF)
    september = next_fire(schedule, march)
    assert (march.isoformat(), september.isoformat()) == ("2027-03-02T10:00:00+00:00", "2027-09-07T09:00:00+00:00")


def test_next_fire_uses_cron_or_rule_for_day_fields() -> None:
    """Day-of-month and day-of-week both restricted fire on either, as in cron and Prefect: 1 March 2027 is a Monday."""
    schedule = Schedule(cron="0 10 1-7 3,9 2", timezone="Europe/London")
    assert next_fire(schedule, AS_OF).isoformat() == "2027-03-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 10 * * 1", "cron '0 0 10 * * 1' has 6 fields: write five (minute hour day-of-month month day-of-week)"),
        ("0 25 * * *", "cron '0 25 * * *': bad hour"),
        ("0 0 30 2 *", "cron '0 0 30 2 *': bad day-of-month"),
    ],
)
def test_next_fire_refuses_what_prefect_would_not_schedule(cron: str, message: str) -> None:
    """A cron Prefect's scheduler could not run is refused with the reason."""
    with pytest.raises(ScheduleError) as raised:
        next_fire(Schedule(cron=cron), AS_OF)
    assert str(raised.value) == message


def test_json_document(library: Path, store: Store) -> None:
    """The JSON document has the services by tier (last and next exercise), the exercises and the gaps."""
    seed_history(store)
    document = programme_document(plan(library, store))
    assert (document["as_of"], document["exercised_since"]) == (
        "2026-12-02T12:00:00+00:00",
        "2025-12-02T12:00:00+00:00",
    )
    assert [s["id"] for s in document["services"]] == ["dns", "sso", "voice-core", "billing", "warehouse"]
    voice = document["services"][2]
    assert voice["last"] == {
        "run_id": "00000002" + "0" * 24,
        "exercise": "voice-tabletop",
        "runbook": "voice-outage",
        "startex_at": "2026-09-01T09:00:00+00:00",
        "endex_at": "2026-09-01T09:30:00+00:00",
        "status": "cancelled",
        "stopped_early": True,
        "ended_by": "Ada Lovelace",
        "objectives": {"met": ["confirm-fast"], "missed": ["ack-fast"], "unscored": ["debrief"]},
        "result": "cancelled, stopped early by Ada Lovelace; objectives 1 met, 1 missed (ack-fast), 1 not scored",
    }
    assert voice["next"] == {
        "exercise": "voice-tabletop",
        "runbook": "voice-outage",
        "at": "2027-03-02T10:00:00+00:00",
        "cron": "0 10 * 3,9 2#1",
        "timezone": "Europe/London",
    }
    assert [(e["id"], e["runs"], e["schedule"]) for e in document["exercises"]] == [
        ("dns-drill", 1, None),
        ("voice-tabletop", 2, {"cron": "0 10 * 3,9 2#1", "timezone": "Europe/London"}),
    ]
    assert [(g["kind"], g["subject"]) for g in document["gaps"]] == [
        ("not-exercised", "dns"),
        ("not-exercised", "sso"),
        ("never-exercised", "billing-outage"),
        ("objective-missed-twice", "voice-tabletop"),
        ("no-runbook", "sso"),
        ("no-runbook", "warehouse"),
        ("no-exercise", "billing-outage"),
    ]


def bcm(tmp_path: Path, library: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BCM_HOME": str(tmp_path / "home"),
        "BCM_DATABASE_URL": f"sqlite:///{tmp_path / 'bcm.db'}",
        "BCM_RUNBOOKS": str(library),
    }
    return subprocess.run([sys.executable, "-m", "bcm", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_command_prints_services_and_gaps(tmp_path: Path, library: Path, store: Store) -> None:
    """`bcm exercise plan` (a real process) lists the services and the gaps; --json prints the document."""
    held = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    Seeder(store).run(
        "voice-outage",
        "voice-core",
        held,
        exercise="voice-tabletop",
        ended_by="Ada Lovelace",
        confirmed_after=timedelta(minutes=5),
    )
    shown = bcm(tmp_path, library, "exercise", "plan", "--tz", "UTC")
    assert (shown.returncode, shown.stderr) == (0, "")
    voice_row = next(line for line in shown.stdout.splitlines() if "voice-core" in line)
    # The result cell wraps in the table: the start of its first line is enough here, the JSON has it whole.
    cells = [cell.strip() for cell in voice_row.strip("│ ").split("│")]
    assert cells[:4] == ["1", "voice-core", "voice-outage", f"{held:%Y-%m-%d %H:%M:%S} voice-tabletop"]
    assert cells[4].startswith("succeeded, stopped early by Ada Lovelace; objectives 1 met, 1 missed")
    assert "+00:00" not in shown.stdout and f"{held:%Y-%m-%dT}" not in shown.stdout
    assert shown.stdout.split("Gaps (7):\n")[1].splitlines() == [
        "  tier-1 service dns (DNS resolvers): not exercised in the last 12 months (never exercised)",
        "  tier-1 service sso (Single sign-on): not exercised in the last 12 months (never exercised)",
        "  runbook billing-outage: never exercised (no exercise run)",
        "  runbook dns-outage: never exercised (no exercise run)",
        "  service sso (Single sign-on, tier 1): no runbook covers it",
        "  service warehouse (Analytics warehouse, tier 4): no runbook covers it",
        "  runbook billing-outage: no exercise file tests it",
    ]
    as_json = bcm(tmp_path, library, "exercise", "plan", "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["services"][2]["last"]["startex_at"] == held.isoformat()
    assert [g["line"] for g in document["gaps"]] == [
        line.strip() for line in shown.stdout.split("Gaps (7):\n")[1].splitlines()
    ]
    assert document["services"][2]["last"]["result"] == (
        "succeeded, stopped early by Ada Lovelace; objectives 1 met, 1 missed (ack-fast), 1 not scored"
    )
