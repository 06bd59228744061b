"""Tenants' own agents: the draft staff edit, every published version, approvals waiting
for an admin, and the tenant audit log (who changed what, when, from what to what).

Definitions are stored as the fields of a TOML definition (JSON), so the loader in
prompts/ validates a stored agent exactly as it validates a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.storage.database import Database
from voice_agent.storage.tables import (
    agent_approvals,
    agent_drafts,
    agent_versions,
    tenant_agents,
    tenant_audit,
)


class UnknownAgent(LookupError):
    """The tenant has no agent (or version, or approval) by that name."""


@dataclass(frozen=True, slots=True)
class TenantAgent:
    id: int
    tenant: str
    slug: str
    template: str
    current_version: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AgentVersion:
    agent_id: int
    tenant: str
    slug: str
    version: int
    data: dict[str, Any]
    published_by: str
    published_at: datetime
    approved_by: str | None
    note: str


@dataclass(frozen=True, slots=True)
class Draft:
    agent_id: int
    data: dict[str, Any]
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    agent_id: int
    tenant: str
    slug: str
    data: dict[str, Any]
    requested_by: str
    requested_at: datetime
    status: str  # pending | approved | rejected
    decided_by: str | None
    decided_at: datetime | None
    version: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    tenant: str
    actor: str
    at: datetime
    action: str
    before: Any
    after: Any


def _agent(row: Row) -> TenantAgent:
    return TenantAgent(
        row.id, row.tenant, row.slug, row.template, row.current_version, row.created_at
    )


class AgentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- agents ---------------------------------------------------------------------------

    async def create(
        self, tenant: str, slug: str, data: dict[str, Any], by: str, *, publish: bool = True
    ) -> TenantAgent:
        """A tenant's own copy of a template: its draft, and (publish) version 1."""
        now = datetime.now(UTC)
        try:
            async with self._db.engine.begin() as conn:
                agent_id = (
                    await conn.execute(
                        insert(tenant_agents)
                        .values(
                            tenant=tenant,
                            slug=slug,
                            template=str(data.get("slug", slug)),
                            current_version=None,
                            created_at=now,
                        )
                        .returning(tenant_agents.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(agent_drafts).values(
                        agent_id=agent_id, data=data, updated_by=by, updated_at=now
                    )
                )
                if publish:
                    await _publish(conn, agent_id, data, by, None, "copied from template", now)
        except IntegrityError:
            return await self.get(tenant, slug)
        return await self.get(tenant, slug)

    async def get(self, tenant: str, slug: str) -> TenantAgent:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(tenant_agents).where(
                        tenant_agents.c.tenant == tenant, tenant_agents.c.slug == slug
                    )
                )
            ).first()
        if row is None:
            raise UnknownAgent(f"{tenant}/{slug}")
        return _agent(row)

    async def find(self, tenant: str, slug: str) -> TenantAgent | None:
        try:
            return await self.get(tenant, slug)
        except UnknownAgent:
            return None

    async def of_tenant(self, tenant: str) -> list[TenantAgent]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(tenant_agents)
                .where(tenant_agents.c.tenant == tenant)
                .order_by(tenant_agents.c.slug)
            )
            return [_agent(row) for row in rows]

    # --- drafts ---------------------------------------------------------------------------

    async def draft(self, agent: TenantAgent) -> Draft:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(select(agent_drafts).where(agent_drafts.c.agent_id == agent.id))
            ).first()
        if row is None:
            raise UnknownAgent(f"{agent.tenant}/{agent.slug}: no draft")
        return Draft(row.agent_id, dict(row.data), row.updated_by, row.updated_at)

    async def save_draft(self, agent: TenantAgent, data: dict[str, Any], by: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(agent_drafts)
                .where(agent_drafts.c.agent_id == agent.id)
                .values(data=data, updated_by=by, updated_at=datetime.now(UTC))
            )

    # --- versions -------------------------------------------------------------------------

    async def publish(
        self,
        agent: TenantAgent,
        data: dict[str, Any],
        by: str,
        approved_by: str | None = None,
        note: str = "",
    ) -> int:
        """Store `data` as the agent's next version and make it the one calls use."""
        async with self._db.engine.begin() as conn:
            return await _publish(conn, agent.id, data, by, approved_by, note, datetime.now(UTC))

    async def versions(self, agent: TenantAgent) -> list[AgentVersion]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(agent_versions)
                .where(agent_versions.c.agent_id == agent.id)
                .order_by(agent_versions.c.version.desc())
            )
            return [_version(agent, row) for row in rows]

    async def version(self, agent: TenantAgent, number: int) -> AgentVersion:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(agent_versions).where(
                        agent_versions.c.agent_id == agent.id,
                        agent_versions.c.version == number,
                    )
                )
            ).first()
        if row is None:
            raise UnknownAgent(f"{agent.tenant}/{agent.slug} v{number}")
        return _version(agent, row)

    async def published(
        self, tenant: str | None = None, slug: str | None = None
    ) -> list[AgentVersion]:
        """The version calls use of every agent (of one tenant / one agent when given)."""
        query = select(
            tenant_agents.c.tenant,
            tenant_agents.c.slug,
            agent_versions,
        ).join(
            agent_versions,
            (agent_versions.c.agent_id == tenant_agents.c.id)
            & (agent_versions.c.version == tenant_agents.c.current_version),
        )
        if tenant is not None:
            query = query.where(tenant_agents.c.tenant == tenant)
        if slug is not None:
            query = query.where(tenant_agents.c.slug == slug)
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query)
            return [
                AgentVersion(
                    row.agent_id,
                    row.tenant,
                    row.slug,
                    row.version,
                    dict(row.data),
                    row.published_by,
                    row.published_at,
                    row.approved_by,
                    row.note,
                )
                for row in rows
            ]

    async def current_versions(self) -> dict[tuple[str, str], int]:
        """(tenant, slug) -> the version calls should run, for every published agent: the
        ids alone, so the workers' periodic resync reads a few bytes per agent."""
        query = select(
            tenant_agents.c.tenant, tenant_agents.c.slug, tenant_agents.c.current_version
        ).where(tenant_agents.c.current_version.is_not(None))
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query)
            return {(row.tenant, row.slug): row.current_version for row in rows}

    # --- approvals ------------------------------------------------------------------------

    async def request_approval(self, agent: TenantAgent, data: dict[str, Any], by: str) -> int:
        async with self._db.engine.begin() as conn:
            return (
                await conn.execute(
                    insert(agent_approvals)
                    .values(
                        agent_id=agent.id,
                        tenant=agent.tenant,
                        data=data,
                        requested_by=by,
                        requested_at=datetime.now(UTC),
                        status="pending",
                    )
                    .returning(agent_approvals.c.id)
                )
            ).scalar_one()

    async def approvals(
        self, tenant: str | None = None, status: str | None = "pending"
    ) -> list[Approval]:
        query = select(agent_approvals, tenant_agents.c.slug).join(
            tenant_agents, tenant_agents.c.id == agent_approvals.c.agent_id
        )
        if tenant is not None:
            query = query.where(agent_approvals.c.tenant == tenant)
        if status is not None:
            query = query.where(agent_approvals.c.status == status)
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query.order_by(agent_approvals.c.requested_at))
            return [_approval(row) for row in rows]

    async def approval(self, approval_id: int) -> Approval:
        query = (
            select(agent_approvals, tenant_agents.c.slug)
            .join(tenant_agents, tenant_agents.c.id == agent_approvals.c.agent_id)
            .where(agent_approvals.c.id == approval_id)
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise UnknownAgent(f"approval {approval_id}")
        return _approval(row)

    async def decide(
        self, approval: Approval, approve: bool, by: str, agent: TenantAgent
    ) -> int | None:
        """Approve (publishes the asked-for draft; returns its version) or reject. Only a
        pending request is decided, once: a second decision is a no-op returning None."""
        now = datetime.now(UTC)
        async with self._db.engine.begin() as conn:
            claimed = await conn.execute(
                update(agent_approvals)
                .where(agent_approvals.c.id == approval.id, agent_approvals.c.status == "pending")
                .values(status="approved" if approve else "rejected", decided_by=by, decided_at=now)
            )
            if claimed.rowcount != 1 or not approve:
                return None
            version = await _publish(
                conn, agent.id, approval.data, approval.requested_by, by, "approved", now
            )
            await conn.execute(
                update(agent_approvals)
                .where(agent_approvals.c.id == approval.id)
                .values(version=version)
            )
            return version

    # --- audit ----------------------------------------------------------------------------

    async def audit(
        self, tenant: str, actor: str, action: str, before: Any = None, after: Any = None
    ) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                insert(tenant_audit).values(
                    tenant=tenant,
                    actor=actor,
                    at=datetime.now(UTC),
                    action=action,
                    before=before,
                    after=after,
                )
            )

    async def audit_log(self, tenant: str, limit: int = 200) -> list[AuditEntry]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(tenant_audit)
                .where(tenant_audit.c.tenant == tenant)
                .order_by(tenant_audit.c.at.desc(), tenant_audit.c.id.desc())
                .limit(limit)
            )
            return [
                AuditEntry(r.id, r.tenant, r.actor, r.at, r.action, r.before, r.after) for r in rows
            ]


async def _publish(
    conn: AsyncConnection,
    agent_id: int,
    data: dict[str, Any],
    by: str,
    approved_by: str | None,
    note: str,
    now: datetime,
) -> int:
    latest = (
        await conn.execute(
            select(func.max(agent_versions.c.version)).where(agent_versions.c.agent_id == agent_id)
        )
    ).scalar()
    version = (latest or 0) + 1
    await conn.execute(
        insert(agent_versions).values(
            agent_id=agent_id,
            version=version,
            data=data,
            published_by=by,
            published_at=now,
            approved_by=approved_by,
            note=note,
        )
    )
    await conn.execute(
        update(tenant_agents).where(tenant_agents.c.id == agent_id).values(current_version=version)
    )
    return version


def _version(agent: TenantAgent, row: Row) -> AgentVersion:
    return AgentVersion(
        agent.id,
        agent.tenant,
        agent.slug,
        row.version,
        dict(row.data),
        row.published_by,
        row.published_at,
        row.approved_by,
        row.note,
    )


def _approval(row: Row) -> Approval:
    return Approval(
        row.id,
        row.agent_id,
        row.tenant,
        row.slug,
        dict(row.data),
        row.requested_by,
        row.requested_at,
        row.status,
        row.decided_by,
        row.decided_at,
        row.version,
    )
