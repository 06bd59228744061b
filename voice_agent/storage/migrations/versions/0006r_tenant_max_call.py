"""runtime faults: a tenant's own maximum call length

Revision ID: 0006r
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006r"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: tenants without one use MAX_CALL_S.
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("max_call_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("max_call_s")
