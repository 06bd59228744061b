"""per-tenant events webhook URL and secret (overriding EVENTS_WEBHOOK_URL / _SECRET)

Revision ID: 0006e
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006e"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("events_webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("events_webhook_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("events_webhook_secret")
        batch.drop_column("events_webhook_url")
