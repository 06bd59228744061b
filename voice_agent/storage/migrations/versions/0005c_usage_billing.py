"""usage rows, tenants' billing state (Stripe customer, markup, cap, suspension), Stripe
webhook events handled

Revision ID: 0005c
Revises: 0003c
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from voice_agent.storage.tables import UTCDateTime

revision: str = "0005c"
down_revision: str | None = "0003c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("meter", sa.String(40), nullable=False),
        sa.Column("quantity_milli", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(64), server_default="", nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage"),
        sa.UniqueConstraint("key", name="uq_usage_key"),
    )
    op.create_index("ix_usage_tenant_at", "usage", ["tenant", "at"])
    op.create_index("ix_usage_call_sid", "usage", ["call_sid"])
    op.create_table(
        "tenant_billing",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("stripe_customer_id", sa.String(64), nullable=True),
        sa.Column("markup", sa.Float(), server_default="1.0", nullable=False),
        sa.Column("monthly_cap_usd", sa.Float(), nullable=True),
        sa.Column("grace_days", sa.Integer(), server_default="7", nullable=False),
        sa.Column("payment_failed_at", UTCDateTime(), nullable=True),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("suspended_reason", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_tenant_billing"),
        sa.UniqueConstraint("stripe_customer_id", name="uq_tenant_billing_stripe_customer_id"),
    )
    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_stripe_events"),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_table("tenant_billing")
    op.drop_index("ix_usage_call_sid", table_name="usage")
    op.drop_index("ix_usage_tenant_at", table_name="usage")
    op.drop_table("usage")
