"""tenants, numbers, opt-outs, scheduled calls, leads, SMS, users; call outcome columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Feature migrations branch off this revision; the app upgrades to "heads".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from voice_agent.storage.tables import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("lead_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("answered_by", sa.String(32), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("price", sa.Float(), nullable=True))
        batch.add_column(sa.Column("price_unit", sa.String(8), nullable=True))
        batch.add_column(sa.Column("recording_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))
        batch.add_column(sa.Column("summary", sa.Text(), nullable=True))
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("outbound_agent", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), server_default="America/New_York", nullable=False),
        sa.Column("calling_start_min", sa.Integer(), server_default="540", nullable=False),
        sa.Column("calling_end_min", sa.Integer(), server_default="1200", nullable=False),
        sa.Column("calling_days", sa.String(7), server_default="123456", nullable=False),
        sa.Column("retry_attempts", sa.Integer(), server_default="2", nullable=False),
        sa.Column("retry_interval_min", sa.Integer(), server_default="30", nullable=False),
        sa.Column("recording_retention_days", sa.Integer(), server_default="90", nullable=False),
        sa.Column("sms_help_text", sa.Text(), nullable=True),
        sa.Column("sms_max_segments", sa.Integer(), server_default="3", nullable=False),
        sa.Column("brand_color", sa.String(16), server_default="#2563eb", nullable=False),
        sa.Column("logo_url", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
    )
    op.create_table(
        "tenant_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_numbers"),
        sa.UniqueConstraint("number", name="uq_tenant_numbers_number"),
        sa.ForeignKeyConstraint(
            ["tenant"],
            ["tenants.slug"],
            name="fk_tenant_numbers_tenant_tenants",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_tenant_numbers_tenant", "tenant_numbers", ["tenant"])
    op.create_table(
        "opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_opt_outs"),
        sa.UniqueConstraint("tenant", "number", name="uq_opt_outs_tenant_number"),
    )
    op.create_table(
        "scheduled_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("context", _JSON, nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_calls"),
    )
    op.create_index("ix_scheduled_calls_status_due_at", "scheduled_calls", ["status", "due_at"])
    op.create_index(
        "ix_scheduled_calls_tenant_to_number", "scheduled_calls", ["tenant", "to_number"]
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), server_default="", nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("source", sa.String(100), nullable=True),
        sa.Column("fields", _JSON, nullable=True),
        sa.Column("status", sa.String(32), server_default="new", nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
    )
    op.create_index("ix_leads_tenant_created_at", "leads", ["tenant", "created_at"])
    op.create_index("ix_leads_tenant_phone", "leads", ["tenant", "phone"])
    op.create_index("ix_leads_tenant_email", "leads", ["tenant", "email"])
    op.create_table(
        "sms_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("business_number", sa.String(32), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), server_default="agent", nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_message_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sms_threads"),
        sa.UniqueConstraint("tenant", "number", name="uq_sms_threads_tenant_number"),
    )
    op.create_index(
        "ix_sms_threads_tenant_last_message_at", "sms_threads", ["tenant", "last_message_at"]
    )
    op.create_table(
        "sms_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("media_urls", _JSON, nullable=True),
        sa.Column("message_sid", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("segments", sa.Integer(), server_default="1", nullable=False),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sms_messages"),
        sa.UniqueConstraint("message_sid", name="uq_sms_messages_message_sid"),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["sms_threads.id"],
            name="fk_sms_messages_thread_id_sms_threads",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_sms_messages_thread_id_created_at", "sms_messages", ["thread_id", "created_at"]
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("sms_messages")
    op.drop_table("sms_threads")
    op.drop_table("leads")
    op.drop_table("scheduled_calls")
    op.drop_table("opt_outs")
    op.drop_table("tenant_numbers")
    op.drop_table("tenants")
    with op.batch_alter_table("calls") as batch:
        for name in (
            "summary",
            "outcome",
            "recording_path",
            "price_unit",
            "price",
            "duration_s",
            "answered_by",
            "lead_id",
        ):
            batch.drop_column(name)
