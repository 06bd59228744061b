"""post-call analysis on calls; an index for caller memory's lookup by number

Revision ID: 0005h
Revises: 0003c
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from voice_agent.storage.tables import UTCDateTime

revision: str = "0005h"
down_revision: str | None = "0003c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("analysis", _JSON, nullable=True))
        batch.add_column(sa.Column("analyzed_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("analysis_claimed_at", UTCDateTime, nullable=True))
    op.create_index("ix_calls_analyzed_at_ended_at", "calls", ["analyzed_at", "ended_at"])
    op.create_index("ix_calls_tenant_from_number", "calls", ["tenant", "from_number"])
    # Calls that ended before analysis existed are not analysed now (a model request each):
    # only calls ending from here on are.
    op.execute("UPDATE calls SET analyzed_at = ended_at WHERE ended_at IS NOT NULL")


def downgrade() -> None:
    op.drop_index("ix_calls_tenant_from_number", table_name="calls")
    op.drop_index("ix_calls_analyzed_at_ended_at", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("analysis_claimed_at")
        batch.drop_column("analyzed_at")
        batch.drop_column("analysis")
