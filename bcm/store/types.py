"""Column types shared by the schema and the migrations, and the value helpers the store writes with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Row
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from bcm.clock import as_utc

MAX_TEXT_CHARS = 4000
"""Longest string kept in step output and check output; longer ones are cut to this length."""

TRUNCATION_SUFFIX = "…[truncated]"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware in UTC.

    SQLite has no timezone-aware type and hands back naive values; PostgreSQL's ``timestamptz``
    hands them back in the session's time zone. Normalising here means no caller ever compares a
    naive time with an aware one. Naive inputs are refused: a time without an offset is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert ``value`` to UTC; SQLite gets it naive because its DATETIME text has no offset."""
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return ``value`` aware and in UTC (naive values are UTC because we wrote them so)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _json_default(value: object) -> object:
    """Make the values steps commonly return JSON-able instead of failing the write."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    # A step's Python entry point may return anything; a readable string beats a lost record.
    return str(value)


def canonical_json(value: object) -> str:
    """Serialise ``value`` the one way the audit chain hashes it: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    )


def sha256_json(value: object) -> str | None:
    """The sha256 of ``value``'s canonical JSON (``None`` for ``None``): what the audit keeps of bulky data."""
    return None if value is None else hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def optional_utc(value: datetime | None) -> datetime | None:
    """``as_utc`` for a time that may not be known yet."""
    return None if value is None else as_utc(value)


def truncate_text(text: str) -> str:
    """Cut ``text`` to at most ``MAX_TEXT_CHARS`` characters, ending with a visible marker when cut."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[: MAX_TEXT_CHARS - len(TRUNCATION_SUFFIX)] + TRUNCATION_SUFFIX


def _truncate_strings(value: object) -> object:
    if isinstance(value, str):
        return truncate_text(value)
    if isinstance(value, list):
        return [_truncate_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _truncate_strings(item) for key, item in value.items()}
    return value


def to_stored_json(value: object) -> object:
    """Return ``value`` as plain JSON data with every long string truncated.

    Step outputs hold whatever a command printed or an HTTP call returned; a multi-megabyte body
    in every row would make the store slow to read and the reports slow to build.
    """
    if value is None:
        return None
    plain: object = json.loads(canonical_json(value))
    return _truncate_strings(plain)


R = TypeVar("R")


def record_of(cls: type[R], row: Row[Any]) -> R:
    """A record dataclass from a row whose columns are named as its fields (extra columns ignored)."""
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def row_values(record: object) -> dict[str, Any]:
    """A record dataclass's fields as insert values (its fields are named as the table's columns)."""
    return asdict(record)  # type: ignore[call-overload, no-any-return]
