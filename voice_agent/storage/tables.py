"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/versions`` mirror it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# Stable constraint names let hand-written migrations refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, UTC datetimes out, on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no zone, so values are stored as
    naive UTC and given their zone back on the way out. Naive input is refused:
    guessing its zone would silently shift transcripts by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL so metadata can be indexed and queried later; plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")

calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False, server_default="default"),
    # "inbound" / "outbound"; "unknown" only on a placeholder row (see CallRepository).
    Column("direction", String(16), nullable=False),
    Column("from_number", String(32), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("pipeline", String(32), nullable=False),
    Column("status", String(32), nullable=False, server_default="in-progress"),
    Column("end_reason", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("metadata", JSONType, nullable=True),
    # Leading on tenant: serves the tenant filter and the newest-first listing together.
    Index(None, "tenant", "started_at"),
    Index(None, "started_at"),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "call_id",
        Integer,
        ForeignKey("calls.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("interrupted", Boolean, nullable=False, server_default=false()),
    # Milliseconds; see records.TurnRecord for what each one measures.
    Column("endpointing_ms", Float, nullable=True),
    Column("stt_ms", Float, nullable=True),
    Column("llm_first_token_ms", Float, nullable=True),
    Column("llm_ms", Float, nullable=True),
    Column("tts_first_byte_ms", Float, nullable=True),
    Column("total_ms", Float, nullable=True),
    Column("server_ms", Float, nullable=True),
    # Its index, led by call_id, is also the index for "all turns of a call".
    UniqueConstraint("call_id", "seq"),
)

LATENCY_COLUMNS: tuple[str, ...] = (
    "endpointing_ms",
    "stt_ms",
    "llm_first_token_ms",
    "llm_ms",
    "tts_first_byte_ms",
    "total_ms",
    "server_ms",
)
