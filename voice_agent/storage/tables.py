"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/versions`` mirror it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
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
    func,
    literal_column,
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
    # Filled in after the start, from status callbacks, the recorder and the lead.
    Column("lead_id", Integer, nullable=True),
    Column("answered_by", String(32), nullable=True),  # human | machine_* | fax | unknown
    Column("duration_s", Integer, nullable=True),
    Column("price", Float, nullable=True),
    Column("price_unit", String(8), nullable=True),
    Column("recording_path", Text, nullable=True),  # starts at started_at
    Column("outcome", String(32), nullable=True),
    Column("summary", Text, nullable=True),
    # 0006a: the tenant agent version the call ran (None: the template), a portal test call.
    Column("agent_version", Integer, nullable=True),
    Column("is_test", Boolean, nullable=False, server_default=false()),
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

# --- Tenants, their numbers, opt-outs and the outbound call schedule (0002) ---

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    # Agent definition slugs (prompts/*.toml) for calls in and out.
    Column("agent", String(64), nullable=False),
    Column("outbound_agent", String(64), nullable=False),
    # IANA zone used when a lead's own zone cannot be told from its number.
    Column("timezone", String(64), nullable=False, server_default="America/New_York"),
    # Local wall-clock window for outbound calls, minutes after midnight, [start, end).
    Column("calling_start_min", Integer, nullable=False, server_default="540"),
    Column("calling_end_min", Integer, nullable=False, server_default="1200"),
    # ISO weekdays allowed for outbound calls, e.g. "12345" for Monday to Friday.
    Column("calling_days", String(7), nullable=False, server_default="123456"),
    Column("retry_attempts", Integer, nullable=False, server_default="2"),
    Column("retry_interval_min", Integer, nullable=False, server_default="30"),
    Column("recording_retention_days", Integer, nullable=False, server_default="90"),
    Column("sms_help_text", Text, nullable=True),
    Column("sms_max_segments", Integer, nullable=False, server_default="3"),
    Column("brand_color", String(16), nullable=False, server_default="#2563eb"),
    Column("logo_url", Text, nullable=True),
    # #16: this tenant's longest call in seconds (None: MAX_CALL_S).
    Column("max_call_s", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # 0006a: publishing the tenant's agent waits for an admin.
    Column("require_approval", Boolean, nullable=False, server_default=false()),
    # Where this tenant's events go instead of EVENTS_WEBHOOK_URL (#12, 0006e); read and
    # written by storage/event_targets.py only, never part of the Tenant record.
    Column("events_webhook_url", Text, nullable=True),
    Column("events_webhook_secret", Text, nullable=True),
)

# The phone numbers a tenant owns: the called number of an inbound call or SMS picks
# the tenant (and, when set, an agent other than the tenant's default).
tenant_numbers = Table(
    "tenant_numbers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column(
        "tenant",
        String(64),
        ForeignKey("tenants.slug", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("agent", String(64), nullable=True),
    Index(None, "tenant"),
)

# One row per (tenant, number) that ever sent an opt-out or opt-in keyword; the latest wins.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("number", String(32), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("keyword", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "number"),
)

# Outbound calls waiting for their time: first attempts of leads, retries, callbacks asked
# for by SMS, calls placed by hand. Stored so a restart loses none of them.
scheduled_calls = Table(
    "scheduled_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("agent", String(64), nullable=True),
    Column("reason", String(32), nullable=False),  # lead | retry | callback | manual
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("lead_id", Integer, nullable=True),
    Column("context", JSONType, nullable=True),  # fields the agent's prompt is rendered with
    Column("due_at", UTCDateTime, nullable=False),
    # pending -> placing -> placed | failed | cancelled
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("call_sid", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status", "due_at"),
    Index(None, "tenant", "to_number"),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False, server_default=""),
    Column("email", String(320), nullable=True),
    Column("phone", String(32), nullable=False),  # E.164
    Column("source", String(100), nullable=True),
    Column("fields", JSONType, nullable=True),  # the form's optional extras, as sent
    # new -> calling -> contacted | voicemail | no-answer | opted-out | failed
    Column("status", String(32), nullable=False, server_default="new"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "tenant", "created_at"),
    Index(None, "tenant", "phone"),
    Index(None, "tenant", "email"),
)

# One SMS conversation per (tenant, the other party's number).
sms_threads = Table(
    "sms_threads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("number", String(32), nullable=False),  # the lead's or caller's number
    Column("business_number", String(32), nullable=False),  # ours, that they texted
    Column("agent", String(64), nullable=False),
    # "agent" while the agent answers; "handoff" once a human has been asked for.
    Column("state", String(16), nullable=False, server_default="agent"),
    Column("lead_id", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_message_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "number"),
    Index(None, "tenant", "last_message_at"),
)

sms_messages = Table(
    "sms_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "thread_id",
        Integer,
        ForeignKey("sms_threads.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("direction", String(16), nullable=False),  # inbound | outbound
    Column("body", Text, nullable=False),
    Column("media_urls", JSONType, nullable=True),
    Column("message_sid", String(64), nullable=True, unique=True),
    # received | queued | sending | sent | delivered | undelivered | failed
    Column("status", String(16), nullable=False),
    Column("segments", Integer, nullable=False, server_default="1"),
    Column("error_code", String(16), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "thread_id", "created_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("password_hash", Text, nullable=False),  # argon2
    Column("role", String(16), nullable=False),  # admin | staff
    Column("tenant", String(64), nullable=True),  # None for admins
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

# --- Dashboard: full-text search over transcripts (0003c) ---
# PostgreSQL only; on SQLite the migration builds an FTS5 table (turns_fts) kept in step by
# triggers instead, which SQLAlchemy has no construct for.
TURNS_TEXT_TSVECTOR = func.to_tsvector(literal_column("'english'"), turns.c.text)
# An index on an expression alone names no column, so it is bound to its table explicitly.
turns.append_constraint(
    Index("ix_turns_text_fts", TURNS_TEXT_TSVECTOR, postgresql_using="gin").ddl_if(
        dialect="postgresql"
    )
)

# --- Issue 12: the outbox (0004) ---
# One row per message to leave the process (events, Twenty, Stripe...). Delivered and
# rejected rows stay, so `voice-agent events replay` can send them again with the same id.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("topic", String(32), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("key", String(200), nullable=False),  # ordering key within the topic
    Column("dedupe", String(200), nullable=False),  # idempotency key within the topic
    Column("payload", JSONType, nullable=False),
    # pending | delivered | rejected
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCDateTime, nullable=False),  # not claimed before this
    Column("lease_token", String(32), nullable=True),  # the claim that holds it
    Column("lease_until", UTCDateTime, nullable=True),  # when a silent claim lapses
    Column("last_error", Text, nullable=True),
    Column("attempted_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),  # delivered or rejected
    UniqueConstraint("topic", "dedupe"),
    Index(None, "topic", "state", "next_at"),
    Index(None, "topic", "key", "id"),
)

# --- Usage metering, cost and billing (#14, 0005c) ---

# One row per thing measured that costs money: a caller turn's audio sent to STT, one LLM
# response's tokens, one sentence's TTS characters, a call's seconds on the phone, an SMS's
# segments. A call's and a month's totals are sums of these rows, nothing estimated after.
usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True),
    # Idempotency key: the write queue may write a row twice; Stripe sees it once.
    Column("key", String(200), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False),
    Column("call_sid", String(64), nullable=True),  # None for SMS
    Column("meter", String(40), nullable=False),  # see voice_agent.billing.meters
    # Thousandths of the meter's unit, so sums are exact integers on every backend.
    Column("quantity_milli", BigInteger, nullable=False),
    Column("model", String(64), nullable=False, server_default=""),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "tenant", "at"),
    Index(None, "call_sid"),
)

# A tenant's billing state beside its row in tenants, so other features' tenant columns
# and these never collide. No row: no Stripe customer, no markup, never suspended.
tenant_billing = Table(
    "tenant_billing",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("stripe_customer_id", String(64), nullable=True, unique=True),
    Column("markup", Float, nullable=False, server_default="1.0"),  # price = cost * markup
    Column("monthly_cap_usd", Float, nullable=True),  # None: no cap
    Column("grace_days", Integer, nullable=False, server_default="7"),
    # Set by the first unpaid invoice, cleared when one is paid.
    Column("payment_failed_at", UTCDateTime, nullable=True),
    Column("suspended_at", UTCDateTime, nullable=True),
    Column("suspended_reason", String(64), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Stripe webhook events already handled, so a redelivered event changes nothing.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)
# --- Post-call analysis and caller memory (#12, 0005h) ---
# The analysis of a finished call: {"summary", "outcome", "fields"} as the contract shows it,
# plus how it was made ("source", "reason" when it failed, the request's time and tokens).
# Its summary and outcome are also written to calls.summary / calls.outcome, which the
# calls list filters on.
calls.append_column(Column("analysis", JSONType, nullable=True))
# Set once the call is analysed (or, for calls older than analysis, at migration time):
# ended calls without it are the analyses still to do, found again after a restart.
calls.append_column(Column("analyzed_at", UTCDateTime, nullable=True))
# Taken by the worker analysing the call; an old claim is a dead worker's, taken over.
calls.append_column(Column("analysis_claimed_at", UTCDateTime, nullable=True))
calls.append_constraint(Index("ix_calls_analyzed_at_ended_at", "analyzed_at", "ended_at"))
# Caller memory: a caller's earlier calls, by the number they call from.
calls.append_constraint(Index("ix_calls_tenant_from_number", "tenant", "from_number"))

# --- The built-in CRM (#12, 0006c) ---
# One row per person a tenant knows, found by email or by phone (each unique per tenant;
# NULLs never collide). ``twenty_id`` is the same person's id in Twenty once mirrored.
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("first_name", String(100), nullable=False, server_default=""),
    Column("last_name", String(100), nullable=False, server_default=""),
    Column("email", String(320), nullable=True),  # lower-case
    Column("phone", String(32), nullable=True),  # E.164
    Column("twenty_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "email"),
    UniqueConstraint("tenant", "phone"),
    Index(None, "tenant", "updated_at"),
)

# Notes on a person (a call's summary and fields, ...); ``key`` makes a note idempotent.
person_notes = Table(
    "person_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("fields", JSONType, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "key"),
    Index(None, "person_id", "created_at"),
)

# What happened with a person: a lead captured, a call, a text; (kind, ref) names it in
# its own table (lead id, CallSid, SMS thread), so recording it twice is once.
activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # lead | call | sms
    Column("ref", String(100), nullable=False),
    Column("summary", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "kind", "ref"),
    Index(None, "person_id", "at"),
)

# --- Per-tenant agents, their versions, drafts, approvals; the tenant audit log (0006a) ---

# A tenant's own agent, started as a copy of a template in prompts/ (slug = the template's).
tenant_agents = Table(
    "tenant_agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), ForeignKey("tenants.slug", ondelete="CASCADE"), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("template", String(64), nullable=False),
    # The version calls use; None until the first publish.
    Column("current_version", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "slug"),
)

# Every published version is kept: rollback publishes an old one again.
agent_versions = Table(
    "agent_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("agent_id", Integer, ForeignKey("tenant_agents.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSONType, nullable=False),
    Column("published_by", String(320), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("approved_by", String(320), nullable=True),
    Column("note", Text, nullable=False, server_default=""),
    UniqueConstraint("agent_id", "version"),
)

# The one draft staff edit; it is validated on every save and before any publish.
agent_drafts = Table(
    "agent_drafts",
    metadata,
    Column(
        "agent_id", Integer, ForeignKey("tenant_agents.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("data", JSONType, nullable=False),
    Column("updated_by", String(320), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A publish waiting for an admin (tenants.require_approval); holds the draft as asked.
agent_approvals = Table(
    "agent_approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("agent_id", Integer, ForeignKey("tenant_agents.id", ondelete="CASCADE"), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("data", JSONType, nullable=False),
    Column("requested_by", String(320), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("decided_by", String(320), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=True),
    Index(None, "status", "requested_at"),
)

# Who changed what of a tenant, when, from what to what.
tenant_audit = Table(
    "tenant_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("action", String(64), nullable=False),
    Column("before", JSONType, nullable=True),
    Column("after", JSONType, nullable=True),
    Index(None, "tenant", "at"),
)
