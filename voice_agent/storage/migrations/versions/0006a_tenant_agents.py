"""per-tenant agents (versions, drafts, approvals), tenant audit log; calls record the
agent version they ran and whether they were a portal test

Revision ID: 0006a
Revises: 0004
Create Date: 2026-12-07

Every existing tenant gets its own agent for each definition it uses (its inbound and
outbound agent, and any per-number agent): a verbatim copy of the template in prompts/,
published as version 1 and also its first draft, so calls go on exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from prompts.loader import template_data
from voice_agent.storage.tables import UTCDateTime

revision: str = "0006a"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
MIGRATED_BY = "migration 0006a"


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("agent_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("require_approval", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    agents = op.create_table(
        "tenant_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_agents"),
        sa.UniqueConstraint("tenant", "slug", name="uq_tenant_agents_tenant_slug"),
        sa.ForeignKeyConstraint(
            ["tenant"], ["tenants.slug"], name="fk_tenant_agents_tenant_tenants", ondelete="CASCADE"
        ),
    )
    versions = op.create_table(
        "agent_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("published_by", sa.String(320), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("approved_by", sa.String(320), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_versions"),
        sa.UniqueConstraint("agent_id", "version", name="uq_agent_versions_agent_id_version"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["tenant_agents.id"],
            name="fk_agent_versions_agent_id_tenant_agents",
            ondelete="CASCADE",
        ),
    )
    drafts = op.create_table(
        "agent_drafts",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agent_drafts"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["tenant_agents.id"],
            name="fk_agent_drafts_agent_id_tenant_agents",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "agent_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agent_approvals"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["tenant_agents.id"],
            name="fk_agent_approvals_agent_id_tenant_agents",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_agent_approvals_status_requested_at", "agent_approvals", ["status", "requested_at"]
    )
    op.create_table(
        "tenant_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("before", _JSON, nullable=True),
        sa.Column("after", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_audit"),
    )
    op.create_index("ix_tenant_audit_tenant_at", "tenant_audit", ["tenant", "at"])
    _copy_templates(agents, versions, drafts)


def _copy_templates(agents: sa.Table, versions: sa.Table, drafts: sa.Table) -> None:
    """Each tenant's templates become its own agents, verbatim (nothing lost, nothing new)."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    used: dict[str, list[str]] = {}
    for row in bind.execute(sa.text("SELECT slug, agent, outbound_agent FROM tenants")):
        used.setdefault(row.slug, []).extend([row.agent, row.outbound_agent])
    for row in bind.execute(
        sa.text("SELECT tenant, agent FROM tenant_numbers WHERE agent IS NOT NULL")
    ):
        used.setdefault(row.tenant, []).append(row.agent)
    for tenant, slugs in used.items():
        for slug in dict.fromkeys(slugs):
            try:
                data = template_data(slug)
            except KeyError:
                continue  # no such template shipped: calls keep the server's fallback
            agent_id = bind.execute(
                agents.insert()
                .values(tenant=tenant, slug=slug, template=slug, current_version=1, created_at=now)
                .returning(agents.c.id)
            ).scalar_one()
            bind.execute(
                versions.insert().values(
                    agent_id=agent_id,
                    version=1,
                    data=data,
                    published_by=MIGRATED_BY,
                    published_at=now,
                    note=f"copied from template {slug}",
                )
            )
            bind.execute(
                drafts.insert().values(
                    agent_id=agent_id, data=data, updated_by=MIGRATED_BY, updated_at=now
                )
            )


def downgrade() -> None:
    op.drop_index("ix_tenant_audit_tenant_at", table_name="tenant_audit")
    op.drop_table("tenant_audit")
    op.drop_index("ix_agent_approvals_status_requested_at", table_name="agent_approvals")
    op.drop_table("agent_approvals")
    op.drop_table("agent_drafts")
    op.drop_table("agent_versions")
    op.drop_table("tenant_agents")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("require_approval")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("is_test")
        batch.drop_column("agent_version")
