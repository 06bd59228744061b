"""outbox: messages leaving the process (events, Twenty, Stripe), delivered by the outbox worker

Revision ID: 0004
Revises: 0003c
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from voice_agent.storage.tables import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("dedupe", sa.String(200), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempted_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("topic", "dedupe", name="uq_outbox_topic_dedupe"),
    )
    op.create_index("ix_outbox_topic_state_next_at", "outbox", ["topic", "state", "next_at"])
    op.create_index("ix_outbox_topic_key_id", "outbox", ["topic", "key", "id"])


def downgrade() -> None:
    op.drop_table("outbox")
