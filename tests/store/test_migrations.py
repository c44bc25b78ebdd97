"""Schema migrations: applied once, appendable, atomic, and matching the live schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, select

from bcm.errors import IncompatibleSchema
from bcm.store import Store
from bcm.store.engine import create_store_engine
from bcm.store.migrations import MIGRATIONS, Migration, migrate, schema_version
from bcm.store.schema import metadata

APPLIED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _versions(url: str) -> list[tuple[int, str, datetime]]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(schema_version).order_by(schema_version.c.version)).all()
            return [(row.version, row.name, row.applied_at) for row in rows]
    finally:
        engine.dispose()


N = len(MIGRATIONS)
HISTORY = [(m.version, m.name, APPLIED) for m in MIGRATIONS]


def _add_findings(conn: Connection) -> None:
    Table("findings", MetaData(), Column("id", Integer, primary_key=True)).create(conn)


def _fail_halfway(conn: Connection) -> None:
    Table("half_built", MetaData(), Column("id", Integer, primary_key=True)).create(conn)
    raise RuntimeError(f"migration {N + 1} failed")


def test_fresh_database_gets_every_migration(db_url: str) -> None:
    """Migrating an empty database applies every migration and records each with its name and time."""
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine, clock=lambda: APPLIED) == list(range(1, N + 1))
    finally:
        engine.dispose()
    assert _versions(db_url) == HISTORY
    assert HISTORY[:2] == [(1, "initial schema", APPLIED), (2, "outbox", APPLIED)]


def test_reopening_an_up_to_date_database_applies_nothing(db_url: str) -> None:
    """A second migrate, and a second Store.open, apply no migration and record nothing new."""
    Store.open(db_url, clock=lambda: APPLIED).close()
    engine = create_store_engine(db_url)
    try:
        assert migrate(engine) == []
    finally:
        engine.dispose()
    Store.open(db_url).close()
    assert _versions(db_url) == HISTORY


def test_appended_migration_is_the_only_one_applied(db_url: str) -> None:
    """Appending a migration to the history applies just that one to an existing database."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, clock=lambda: APPLIED)
        history = [*MIGRATIONS, Migration(N + 1, "findings", _add_findings)]
        assert migrate(engine, migrations=history, clock=lambda: APPLIED) == [N + 1]
        assert migrate(engine, migrations=history) == []
        assert inspect(engine).has_table("findings")
    finally:
        engine.dispose()
    assert _versions(db_url) == [*HISTORY, (N + 1, "findings", APPLIED)]


def test_failing_migration_leaves_no_trace(db_url: str) -> None:
    """A migration that raises is rolled back whole: its DDL is undone and its version not recorded."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, clock=lambda: APPLIED)
        with pytest.raises(RuntimeError, match=rf"^migration {N + 1} failed$"):
            migrate(engine, migrations=[*MIGRATIONS, Migration(N + 1, "broken", _fail_halfway)])
        assert not inspect(engine).has_table("half_built")
    finally:
        engine.dispose()
    assert _versions(db_url) == HISTORY


def test_database_from_a_newer_bcm_is_refused(db_url: str) -> None:
    """Opening a database migrated past the versions this bcm knows raises IncompatibleSchema."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine, migrations=[*MIGRATIONS, Migration(N + 1, "findings", _add_findings)])
        with pytest.raises(IncompatibleSchema) as caught:
            migrate(engine)
    finally:
        engine.dispose()
    assert str(caught.value) == (
        f"the store's schema is at version {N + 1} but this bcm knows versions up to {N}: "
        "upgrade bcm before using this database"
    )


def test_history_must_be_numbered_without_gaps() -> None:
    """A migration list numbered other than 1, 2, 3, ... is rejected before touching the database."""
    engine = create_store_engine("sqlite://")
    try:
        with pytest.raises(ValueError, match=r"^migration versions must be 1, 2, 3, \.\.\. in order, got \[1, 3\]$"):
            migrate(engine, migrations=[MIGRATIONS[0], Migration(3, "findings", _add_findings)])
    finally:
        engine.dispose()


def test_migrated_database_matches_the_live_schema(db_url: str) -> None:
    """The tables the migrations build have exactly the columns, nullability and keys of schema.py."""
    engine = create_store_engine(db_url)
    try:
        migrate(engine)
        found = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in found.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            primary_key = found.get_pk_constraint(table.name)["constrained_columns"]
            assert primary_key == [c.name for c in table.primary_key.columns], table.name
        assert set(found.get_table_names()) == {*metadata.tables, "schema_version"}
    finally:
        engine.dispose()
