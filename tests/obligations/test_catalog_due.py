"""Due times of every obligation in runbooks/catalog/obligations.yaml, computed by hand.

Calendars used below (2026 unless said): Brussels and London change to summer time on Sunday
29 March (01:00 UTC) and back on Sunday 25 October (01:00 UTC); New York changes back on Sunday
1 November. US federal holidays: Friday 3 July (Independence Day observed), Monday 25 May
(Memorial Day), Thursday 26 November (Thanksgiving). England: Good Friday 3 April, Easter Monday
6 April.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bcm.obligations import ObligationCatalog, load_obligations, parse_period
from bcm.spec import load_catalog

CATALOG_DIR = Path(__file__).resolve().parents[2] / "runbooks" / "catalog"
BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def catalog() -> ObligationCatalog:
    found, problems = load_catalog(CATALOG_DIR)
    assert problems == [] and found is not None
    obligations, problems = load_obligations(CATALOG_DIR, roles=found.roles)
    assert problems == [] and obligations is not None
    return obligations


def due(
    catalog: ObligationCatalog,
    obligation_id: str,
    marks: Mapping[str, datetime] | None = None,
    fulfilled: Mapping[str, datetime] | None = None,
) -> datetime | None:
    return catalog.due(catalog.obligation(obligation_id), marks=marks or {}, fulfilled=fulfilled or {})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_catalog_ships_every_obligation_of_the_issue(catalog: ObligationCatalog) -> None:
    """The ids are the stable, documented ones, in the file's order."""
    assert list(catalog.obligations) == [
        "gdpr-art33",
        "nis2-early-warning",
        "nis2-notification",
        "nis2-final",
        "dora-initial",
        "dora-intermediate",
        "dora-final",
        "sec-8k-item-1.05",
        "eu-ai-act-art73",
        "eu-ai-act-art73-critical",
        "eu-ai-act-art73-death",
        "vdp-acknowledge",
        "vdp-disclosure",
        "le-acknowledge",
        "le-decide",
    ]


# --------------------------------------------------------------------------- GDPR, NIS2


def test_gdpr_art33_is_72_real_hours_across_the_spring_change(catalog: ObligationCatalog) -> None:
    """Aware Friday 27 March 10:00 CET (09:00Z); +72 h = Monday 30 March 09:00Z, 11:00 on the
    Brussels wall clock because the clocks went forward on the Sunday."""
    found = due(catalog, "gdpr-art33", {"aware": utc(2026, 3, 27, 9)})
    assert found == utc(2026, 3, 30, 9)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-03-30T11:00:00+02:00"


def test_nis2_early_warning_is_24_real_hours_across_the_autumn_change(catalog: ObligationCatalog) -> None:
    """Aware Saturday 24 October 12:00 CEST (10:00Z); +24 h = Sunday 25 October 10:00Z, 11:00 CET
    on the wall clock (the clocks went back an hour that night)."""
    found = due(catalog, "nis2-early-warning", {"aware": utc(2026, 10, 24, 10)})
    assert found == utc(2026, 10, 25, 10)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-10-25T11:00:00+01:00"


def test_nis2_notification_is_72_real_hours_from_awareness(catalog: ObligationCatalog) -> None:
    """Aware Friday 23 October 18:00 CEST (16:00Z); +72 h = Monday 26 October 16:00Z (17:00 CET)."""
    found = due(catalog, "nis2-notification", {"aware": utc(2026, 10, 23, 16)})
    assert found == utc(2026, 10, 26, 16)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-10-26T17:00:00+01:00"


def test_nis2_final_is_one_month_after_the_notification_from_31_january(catalog: ObligationCatalog) -> None:
    """Notification sent 31 January 2026 15:00 CET (14:00Z); 2026 is not a leap year, so one month
    later is the last day of February, 28 February 15:00 CET (14:00Z)."""
    found = due(catalog, "nis2-final", {"aware": utc(2026, 1, 28, 9)}, {"nis2-notification": utc(2026, 1, 31, 14)})
    assert found == utc(2026, 2, 28, 14)


def test_nis2_final_keeps_the_wall_clock_time_across_the_spring_change(catalog: ObligationCatalog) -> None:
    """Notification 10 March 09:00 CET (08:00Z); one month later is 10 April 09:00 CEST, 07:00Z."""
    found = due(catalog, "nis2-final", fulfilled={"nis2-notification": utc(2026, 3, 10, 8)})
    assert found == utc(2026, 4, 10, 7)


def test_nis2_final_does_not_start_before_the_notification_is_fulfilled(catalog: ObligationCatalog) -> None:
    """A chained clock has no due time while the obligation it follows is open."""
    assert due(catalog, "nis2-final", {"aware": utc(2026, 1, 28, 9)}) is None


# --------------------------------------------------------------------------- DORA


def test_dora_initial_four_hours_from_classification_win_when_classified_early(catalog: ObligationCatalog) -> None:
    """Aware 1 June 08:00Z, classified major 12:00Z: 12:00 + 4 h = 16:00Z is earlier than
    08:00 + 24 h = 2 June 08:00Z, so 16:00Z."""
    found = due(catalog, "dora-initial", {"aware": utc(2026, 6, 1, 8), "classified_major": utc(2026, 6, 1, 12)})
    assert found == utc(2026, 6, 1, 16)


def test_dora_initial_24_hours_from_awareness_win_when_classified_late(catalog: ObligationCatalog) -> None:
    """Aware 1 June 08:00Z, classified major 2 June 06:00Z: 06:00 + 4 h = 10:00Z is later than
    aware + 24 h = 2 June 08:00Z, so 08:00Z."""
    found = due(catalog, "dora-initial", {"aware": utc(2026, 6, 1, 8), "classified_major": utc(2026, 6, 2, 6)})
    assert found == utc(2026, 6, 2, 8)


def test_dora_initial_without_awareness_recorded_is_four_hours(catalog: ObligationCatalog) -> None:
    """Classified 2 June 06:00Z and no aware milestone: the second bound cannot apply, 10:00Z."""
    assert due(catalog, "dora-initial", {"classified_major": utc(2026, 6, 2, 6)}) == utc(2026, 6, 2, 10)


def test_dora_initial_starts_at_classification_not_awareness(catalog: ObligationCatalog) -> None:
    """Awareness alone starts no DORA clock: the incident may never be classified major."""
    assert due(catalog, "dora-initial", {"aware": utc(2026, 6, 1, 8)}) is None


def test_dora_intermediate_is_72_hours_from_the_initial_notification(catalog: ObligationCatalog) -> None:
    """Initial notification sent Saturday 28 March 09:00Z (10:00 CET); +72 h = Tuesday 31 March
    09:00Z (11:00 CEST): the chained clock starts at the fulfilment, not at awareness."""
    marks = {"aware": utc(2026, 3, 28, 1), "classified_major": utc(2026, 3, 28, 6)}
    found = due(catalog, "dora-intermediate", marks, {"dora-initial": utc(2026, 3, 28, 9)})
    assert found == utc(2026, 3, 31, 9)
    assert due(catalog, "dora-intermediate", marks) is None


def test_dora_final_is_one_month_after_the_intermediate_report_in_a_leap_year(catalog: ObligationCatalog) -> None:
    """Intermediate report 31 January 2024 16:00 CET (15:00Z); 2024 is a leap year, so one month
    later is 29 February 16:00 CET (15:00Z)."""
    found = due(catalog, "dora-final", fulfilled={"dora-intermediate": utc(2024, 1, 31, 15)})
    assert found == utc(2024, 2, 29, 15)


def test_dora_chain_from_classification_to_final_report(catalog: ObligationCatalog) -> None:
    """Each report starts the next clock when it is sent: initial due 4 h after classification
    (Monday 1 June 12:00Z -> 16:00Z), sent 15:30Z; intermediate due 72 h later (Thursday 4 June
    15:30Z), sent 4 June 14:00Z (16:00 CEST); final due one month later, 4 July 16:00 CEST (14:00Z)."""
    marks = {"aware": utc(2026, 6, 1, 8), "classified_major": utc(2026, 6, 1, 12)}
    fulfilled = {"dora-initial": utc(2026, 6, 1, 15, 30), "dora-intermediate": utc(2026, 6, 4, 14)}
    assert [due(catalog, ob, marks, fulfilled) for ob in ("dora-initial", "dora-intermediate", "dora-final")] == [
        utc(2026, 6, 1, 16),
        utc(2026, 6, 4, 15, 30),
        utc(2026, 7, 4, 14),
    ]


# --------------------------------------------------------------------------- SEC


def test_sec_8k_four_business_days_over_memorial_day_weekend(catalog: ObligationCatalog) -> None:
    """Determined material Thursday 21 May 10:00 EDT (14:00Z). Friday 22 is business day 1; the
    weekend and Memorial Day (Monday 25) are skipped; Tuesday 26 is 2, Wednesday 27 is 3, Thursday
    28 is 4: due Thursday 28 May 10:00 EDT (14:00Z), seven calendar days later."""
    found = due(catalog, "sec-8k-item-1.05", {"materiality_determined": utc(2026, 5, 21, 14)})
    assert found == utc(2026, 5, 28, 14)


def test_sec_8k_four_business_days_over_thanksgiving(catalog: ObligationCatalog) -> None:
    """Determined Wednesday 25 November 17:00 EST (22:00Z). Thanksgiving (Thursday 26) is skipped;
    Friday 27 is 1 (not a federal holiday), Monday 30 is 2, Tuesday 1 December 3, Wednesday 2
    December 4: due 2 December 17:00 EST (22:00Z)."""
    found = due(catalog, "sec-8k-item-1.05", {"materiality_determined": utc(2026, 11, 25, 22)})
    assert found == utc(2026, 12, 2, 22)


def test_sec_8k_skips_a_holiday_observed_on_the_friday(catalog: ObligationCatalog) -> None:
    """Independence Day 2026 is a Saturday, observed Friday 3 July. Determined Thursday 2 July
    09:00 EDT (13:00Z): Monday 6 is 1, Tuesday 7 is 2, Wednesday 8 is 3, Thursday 9 is 4 (13:00Z)."""
    found = due(catalog, "sec-8k-item-1.05", {"materiality_determined": utc(2026, 7, 2, 13)})
    assert found == utc(2026, 7, 9, 13)


def test_sec_8k_keeps_eastern_wall_clock_time_across_the_autumn_change(catalog: ObligationCatalog) -> None:
    """Determined Thursday 29 October 16:00 EDT (20:00Z). Friday 30 is 1, Monday 2 November 2,
    Tuesday 3 (election day, not a federal holiday) 3, Wednesday 4 is 4: 16:00 EST, now 21:00Z."""
    found = due(catalog, "sec-8k-item-1.05", {"materiality_determined": utc(2026, 10, 29, 20)})
    assert found == utc(2026, 11, 4, 21)
    assert found.astimezone(NEW_YORK).isoformat() == "2026-11-04T16:00:00-05:00"


def test_sec_8k_counts_days_in_new_york_not_in_utc(catalog: ObligationCatalog) -> None:
    """Determined Thursday 21 May 23:30 EDT, already Friday 22 03:30 in UTC: day 1 is Friday in New
    York, so the due time is Thursday 28 May 23:30 EDT (Friday 29 03:30Z), not a day later."""
    found = due(catalog, "sec-8k-item-1.05", {"materiality_determined": utc(2026, 5, 22, 3, 30)})
    assert found == utc(2026, 5, 29, 3, 30)


# --------------------------------------------------------------------------- EU AI Act


def test_ai_act_art73_is_15_calendar_days_at_the_same_brussels_time(catalog: ObligationCatalog) -> None:
    """Aware Tuesday 20 October 09:00 CEST (07:00Z); 15 days later is Wednesday 4 November 09:00
    CET (08:00Z): 361 real hours, because the clocks went back in between."""
    found = due(catalog, "eu-ai-act-art73", {"aware": utc(2026, 10, 20, 7)})
    assert found == utc(2026, 11, 4, 8)


def test_ai_act_art73_critical_is_two_calendar_days(catalog: ObligationCatalog) -> None:
    """Aware Saturday 28 March 14:00 CET (13:00Z); two days later is Monday 30 March 14:00 CEST
    (12:00Z): 47 real hours across the spring change."""
    found = due(catalog, "eu-ai-act-art73-critical", {"aware": utc(2026, 3, 28, 13)})
    assert found == utc(2026, 3, 30, 12)


def test_ai_act_art73_death_landing_in_the_skipped_hour_moves_forward(catalog: ObligationCatalog) -> None:
    """Aware Thursday 19 March 02:30 CET (01:30Z); ten days later, 29 March 02:30, does not exist in
    Brussels (02:00 -> 03:00): the due time moves forward by the gap to 03:30 CEST, 01:30Z."""
    found = due(catalog, "eu-ai-act-art73-death", {"aware": utc(2026, 3, 19, 1, 30)})
    assert found == utc(2026, 3, 29, 1, 30)
    assert found.astimezone(BRUSSELS).isoformat() == "2026-03-29T03:30:00+02:00"


# --------------------------------------------------------------------------- vulnerability disclosure


def test_vdp_acknowledge_skips_the_english_easter_holidays(catalog: ObligationCatalog) -> None:
    """Report received Thursday 2 April 16:00 BST (15:00Z). Good Friday (3), the weekend and Easter
    Monday (6) are skipped: Tuesday 7 is 1, Wednesday 8 is 2, Thursday 9 is 3: 9 April 15:00Z."""
    found = due(catalog, "vdp-acknowledge", {"received": utc(2026, 4, 2, 15)})
    assert found == utc(2026, 4, 9, 15)


def test_vdp_acknowledge_takes_a_programmes_own_target(catalog: ObligationCatalog) -> None:
    """Adjusted to 5 business days, the same report is due Monday 13 April (Tue 7, Wed 8, Thu 9,
    Fri 10, Mon 13) at 16:00 BST, 15:00Z."""
    adjusted = catalog.obligation("vdp-acknowledge").adjusted(parse_period("5 business days"))
    found = catalog.due(adjusted, marks={"received": utc(2026, 4, 2, 15)}, fulfilled={})
    assert found == utc(2026, 4, 13, 15)


def test_vdp_disclosure_is_90_calendar_days_at_the_same_london_time(catalog: ObligationCatalog) -> None:
    """Received 15 January 10:00 GMT (10:00Z). 16 days to 31 January, 28 to 28 February (44), 31 to
    31 March (75), 15 to 15 April (90): 15 April 10:00 BST, 09:00Z."""
    found = due(catalog, "vdp-disclosure", {"received": utc(2026, 1, 15, 10)})
    assert found == utc(2026, 4, 15, 9)


# --------------------------------------------------------------------------- law-enforcement emergency disclosure


def test_le_acknowledge_and_decide_are_exact_minutes_in_the_repeated_hour(catalog: ObligationCatalog) -> None:
    """Request received Sunday 25 October 01:50 BST (00:50Z), ten minutes before London's clocks go
    back from 02:00 BST to 01:00 GMT: acknowledge 15 real minutes later (01:05Z, 01:05 GMT, the
    second 01:05 of the night), decide one real hour later (01:50Z, 01:50 GMT)."""
    marks = {"received": utc(2026, 10, 25, 0, 50)}
    assert due(catalog, "le-acknowledge", marks) == utc(2026, 10, 25, 1, 5)
    assert due(catalog, "le-decide", marks) == utc(2026, 10, 25, 1, 50)


def test_a_fixed_period_cannot_be_adjusted(catalog: ObligationCatalog) -> None:
    """Periods set by law refuse a programme's own period; the message says which."""
    with pytest.raises(ValueError) as caught:
        catalog.obligation("gdpr-art33").adjusted(parse_period("96 hours"))
    assert str(caught.value) == (
        "obligation 'gdpr-art33' has a fixed period (72 hours): only adjustable ones take another"
    )


def test_an_unknown_obligation_id_suggests_the_nearest(catalog: ObligationCatalog) -> None:
    """Looking up a misspelt id says which one was meant."""
    with pytest.raises(KeyError) as caught:
        catalog.obligation("gdpr-art-33")
    assert caught.value.args == ("unknown obligation 'gdpr-art-33' (did you mean 'gdpr-art33'?)",)
