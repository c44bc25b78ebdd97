"""Reading obligations.yaml: every problem at once, located, with the full message text."""

from __future__ import annotations

from pathlib import Path

from bcm.obligations import OBLIGATIONS_FILE, load_obligations, parse_obligations
from bcm.obligations.models import Fulfilment

ROLES = ("privacy", "ciso", "legal")

JURISDICTIONS = """\
version: 1
jurisdictions:
  EU: {name: European Union, timezone: Europe/Brussels, holidays: BE}
obligations:
"""


def entry(ob_id: str, *, starts: str = "{milestone: aware}", period: str = "72 hours", owner: str = "privacy") -> str:
    """One obligation in flow style, on a single line (so problems are easy to place)."""
    return (
        f"  - {{id: {ob_id}, name: N, regime: R, jurisdiction: EU, deliverable: D,"
        f' source: {{document: Doc, url: "https://example.org"}},'
        f" starts: {starts}, period: {period}, owner: {owner}}}\n"
    )


def problems(text: str) -> list[str]:
    catalog, found = parse_obligations(text, "obligations.yaml", roles=ROLES)
    assert (catalog is None) == bool(found)
    return [str(p) for p in found]


def test_a_valid_file_gives_the_catalog_by_id() -> None:
    """Two chained obligations load with their defaults: fulfilled by a step, reminders at 50/75/90 % and due."""
    text = JURISDICTIONS + entry("first") + entry("second", starts="{fulfilled: first}", period="1 month")
    catalog, found = parse_obligations(text, "obligations.yaml", roles=ROLES)
    assert found == [] and catalog is not None
    second = catalog.obligation("second")
    assert (second.chained_from, str(second.period), second.fulfilled_by, second.reminders) == (
        ("first",),
        "1 month",
        Fulfilment(milestone=None),
        (50, 75, 90, 100),
    )


def test_a_bad_period_an_unknown_role_and_an_unknown_key_are_reported_together() -> None:
    """The model's problems do not hide the cross-checks of the obligations valid on their own."""
    text = (
        JURISDICTIONS
        + entry("first", period="72 hrs")
        + entry("second", owner="privacyy")
        + "  - id: third\n    name: N\n    regime: R\n    jurisdiction: EU\n    deliverable: D\n"
        + '    source: {document: Doc, url: "https://example.org"}\n'
        + "    starts: {milestone: aware}\n    period: 4 business days\n    owner: legal\n    remindres: [due]\n"
    )
    assert problems(text) == [
        "obligations.yaml:5:160: obligations[0].period: '72 hrs' is not a period: write a whole number and a unit, "
        "such as 72 hours, 15 days, 4 business days, 1 month or 15 minutes",
        "obligations.yaml:6:178: obligations[1].owner: unknown role 'privacyy' (did you mean 'privacy'?) "
        "in stakeholders.yaml",
        "obligations.yaml:16:5: obligations[2]: unknown key 'remindres' (did you mean 'reminders'?)",
    ]


def test_a_chained_clock_must_name_another_obligation_of_the_catalog() -> None:
    """An unknown id gets the nearest suggested; a clock chained to itself is refused; the second
    bound is checked the same way."""
    text = (
        JURISDICTIONS
        + entry("nis2-notification")
        + entry("nis2-final", starts="{fulfilled: nis2-notificaton}")
        + entry("loop", starts="{fulfilled: loop}")
        + entry("bounded")[:-2]
        + ", not_later_than: {starts: {fulfilled: nowhere}, period: 24 hours}}\n"
    )
    assert problems(text) == [
        "obligations.yaml:6:149: obligations[1].starts.fulfilled: unknown obligation 'nis2-notificaton' "
        "(did you mean 'nis2-notification'?)",
        "obligations.yaml:7:143: obligations[2].starts.fulfilled: 'loop' cannot start when it is itself fulfilled",
        "obligations.yaml:8:225: obligations[3].not_later_than.starts.fulfilled: unknown obligation 'nowhere'",
    ]


def test_chained_clocks_in_a_cycle_are_reported_once_with_the_cycle() -> None:
    """a waits for b, b for c, c for a: none could ever start."""
    text = (
        JURISDICTIONS
        + entry("a", starts="{fulfilled: b}")
        + entry("b", starts="{fulfilled: c}")
        + entry("c", starts="{fulfilled: a}")
    )
    assert problems(text) == [
        "obligations.yaml:5:140: obligations[0].starts.fulfilled: chained clocks form a cycle: a → b → c → a "
        "(each starts when the next one is fulfilled)",
    ]


def test_a_chained_clock_naming_an_invalid_obligation_is_not_told_it_is_unknown() -> None:
    """The obligation it names is written but refused by the model: one problem, not two."""
    text = JURISDICTIONS + entry("first", period="soon") + entry("second", starts="{fulfilled: first}")
    assert problems(text) == [
        "obligations.yaml:5:160: obligations[0].period: 'soon' is not a period: write a whole number and a unit, "
        "such as 72 hours, 15 days, 4 business days, 1 month or 15 minutes",
    ]


def test_jurisdictions_need_a_real_zone_and_holiday_calendar() -> None:
    """A misspelt time zone, a holidays country the library does not know, an unknown subdivision
    and an obligation counted in a jurisdiction that is not in the table."""
    text = (
        "version: 1\n"
        "jurisdictions:\n"
        "  EU: {name: European Union, timezone: Europe/Brusels, holidays: BE}\n"
        "  XX: {name: Nowhere, timezone: UTC, holidays: QQ}\n"
        "  GB: {name: England, timezone: Europe/London, holidays: GB, subdivision: ENGL}\n"
        "obligations:\n" + entry("first").replace("jurisdiction: EU", "jurisdiction: EUR")
    )
    assert problems(text) == [
        "obligations.yaml:3:40: jurisdictions.EU.timezone: unknown time zone 'Europe/Brusels' "
        "(did you mean 'Europe/Brussels'?): use an IANA name such as Europe/Brussels",
        "obligations.yaml:4:48: jurisdictions.XX.holidays: unknown holidays country 'QQ': "
        "use a country code of the holidays library (US, GB, BE...)",
        "obligations.yaml:5:75: jurisdictions.GB.subdivision: unknown subdivision 'ENGL' of GB "
        "(known: ENG, NIR, SCT, WLS)",
        "obligations.yaml:7:51: obligations[0].jurisdiction: unknown jurisdiction 'EUR' (did you mean 'EU'?) "
        "(add it under jurisdictions)",
    ]


def test_duplicate_ids_reminders_out_of_order_and_a_bad_fulfilment_are_located() -> None:
    """A repeated id, reminders that do not go up to due, and a fulfilment that is neither a step
    nor a milestone."""
    text = (
        JURISDICTIONS
        + entry("first")
        + entry("first")
        + entry("second")[:-2]
        + ", reminders: [90%, 50%, due], fulfilled_by: stepp}\n"
        + entry("third")[:-2]
        + ", reminders: [0%], fulfilled_by: {milestone: awre}}\n"
    )
    assert problems(text) == [
        "obligations.yaml:6:10: obligations[1].id: duplicate obligation id 'first'",
        "obligations.yaml:7:198: obligations[2].reminders: reminder points go from the earliest to due, "
        "each once: [50%, 75%, 90%, due]",
        "obligations.yaml:7:229: obligations[2].fulfilled_by: expected 'step' or 'milestone: NAME', got 'stepp'",
        "obligations.yaml:8:198: obligations[3].reminders[0]: '0%' is not a reminder point: write a share of the "
        "time from 1% to 99%, or due",
        "obligations.yaml:8:229: obligations[3].fulfilled_by.milestone: expected impact_started, detected, "
        "acknowledged, declared, mitigated, recovered, resolved, stood_down, aware, classified_major, "
        "materiality_determined, received, startex, inject_delivered or endex, got 'awre'",
    ]


def test_a_start_names_a_milestone_or_an_obligation_not_both() -> None:
    """Two starts in one mapping is one problem at the mapping."""
    text = JURISDICTIONS + entry("first", starts="{milestone: aware, fulfilled: other}")
    assert problems(text) == [
        "obligations.yaml:5:132: obligations[0].starts: write either 'milestone: NAME' or 'fulfilled: OBLIGATION' "
        "(when that one is fulfilled)",
    ]


def test_duplicate_yaml_keys_are_problems() -> None:
    """PyYAML would keep the last of two period keys; the reader reports the second."""
    text = JURISDICTIONS + entry("first")[:-2] + ", period: 24 hours}\n"
    assert problems(text) == [
        "obligations.yaml:5:186: obligations[0].period: duplicate key 'period' (first defined on line 5): remove one",
    ]


def test_a_catalog_folder_without_obligations_has_none(tmp_path: Path) -> None:
    """No obligations.yaml is an empty catalog, not a problem (older libraries have none)."""
    catalog, found = load_obligations(tmp_path, roles=ROLES)
    assert found == [] and catalog is not None
    assert (catalog.obligations, catalog.jurisdictions) == ({}, {})


def test_problems_name_the_file_as_given(tmp_path: Path) -> None:
    """A file on disk is named in its problems and read with the same checks."""
    (tmp_path / OBLIGATIONS_FILE).write_text(JURISDICTIONS + entry("first", owner="nobody"), encoding="utf-8")
    catalog, found = load_obligations(tmp_path, roles=ROLES)
    assert catalog is None
    assert [p.message for p in found] == ["unknown role 'nobody' in stakeholders.yaml"]
    assert [(p.line, p.column, p.where) for p in found] == [(5, 177, "obligations[0].owner")]
