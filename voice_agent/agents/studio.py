"""What the portal does to a tenant's agent: copy a template, edit the draft, publish
(or ask an admin to), approve, roll back; each step validated and audited.

An invalid draft is never stored, so nothing invalid can be published: every save and
every publish runs the same loader rules as a TOML file in prompts/.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from prompts import AgentDefinition, AgentDefinitionError, parse_agent_data, template_data
from voice_agent.agents.book import AgentBook, AgentUpdates
from voice_agent.storage.agents import AgentRepository, Approval, TenantAgent, UnknownAgent
from voice_agent.storage.tenants import Tenant

__all__ = [
    "AgentDefinitionError",
    "AgentStudio",
    "PublishResult",
    "UnknownAgent",
    "tenant_copy",
    "validate",
]


def validate(data: dict[str, Any], source: str = "draft") -> AgentDefinition:
    """AgentDefinitionError naming the field (and, for a template, the unknown variable)."""
    return parse_agent_data(data, source)


def tenant_copy(template: str, business_name: str | None = None) -> dict[str, Any]:
    """A template's fields for a tenant's own agent; `business_name` fills the variable of
    that name when the template has one (a new tenant introduces itself by its name)."""
    data = copy.deepcopy(template_data(template))
    variables = data.get("variables")
    if business_name and isinstance(variables, dict) and "business_name" in variables:
        variables["business_name"] = business_name
    return data


@dataclass(frozen=True, slots=True)
class PublishResult:
    version: int | None = None  # published now
    approval_id: int | None = None  # waiting for an admin


class AgentStudio:
    def __init__(
        self,
        repo: AgentRepository,
        book: AgentBook,
        updates: AgentUpdates,
    ) -> None:
        self.repo = repo
        self.book = book
        self.updates = updates

    async def agent(self, tenant: Tenant, slug: str, actor: str) -> TenantAgent:
        """The tenant's own agent `slug`, copied from the template on first use (only
        the definitions the tenant uses may be copied)."""
        found = await self.repo.find(tenant.slug, slug)
        if found is not None:
            return found
        if slug not in (tenant.agent, tenant.outbound_agent) or slug not in self.book:
            raise UnknownAgent(f"{tenant.slug}/{slug}")
        agent = await self.repo.create(tenant.slug, slug, tenant_copy(slug), actor, publish=False)
        await self.repo.audit(tenant.slug, actor, "agent.copied", None, {"agent": slug})
        return agent

    async def draft_definition(self, tenant: str, slug: str) -> AgentDefinition | None:
        """The draft as a definition, for the portal's testers (None: no such agent)."""
        agent = await self.repo.find(tenant, slug)
        if agent is None:
            return None
        try:
            return self.book.for_calls(validate((await self.repo.draft(agent)).data))
        except AgentDefinitionError:
            return None

    async def create_for_new_tenant(self, tenant: Tenant, actor: str) -> None:
        """A new tenant's agents: its templates with its own business name, published."""
        for slug in dict.fromkeys((tenant.agent, tenant.outbound_agent)):
            if slug not in self.book or await self.repo.find(tenant.slug, slug):
                continue
            data = tenant_copy(slug, tenant.name)
            validate(data, f"{tenant.slug}/{slug}")
            await self.repo.create(tenant.slug, slug, data, actor, publish=True)
            await self.updates.announce(tenant.slug, slug)

    async def save_draft(self, agent: TenantAgent, data: dict[str, Any], actor: str) -> None:
        validate(data, "draft")
        before = (await self.repo.draft(agent)).data
        if before == data:
            return
        await self.repo.save_draft(agent, data, actor)
        await self.repo.audit(
            agent.tenant,
            actor,
            f"agent.{agent.slug}.draft",
            _changes(before, data, "before"),
            _changes(before, data, "after"),
        )

    async def publish(
        self, tenant: Tenant, agent: TenantAgent, actor: str, admin: bool
    ) -> PublishResult:
        data = (await self.repo.draft(agent)).data
        validate(data, "draft")
        if tenant.require_approval and not admin:
            approval_id = await self.repo.request_approval(agent, data, actor)
            await self.repo.audit(
                tenant.slug,
                actor,
                f"agent.{agent.slug}.approval_requested",
                None,
                {"approval": approval_id},
            )
            return PublishResult(approval_id=approval_id)
        version = await self.repo.publish(agent, data, actor)
        await self._published(agent, actor, version, "published")
        return PublishResult(version=version)

    async def decide(self, approval: Approval, approve: bool, actor: str) -> int | None:
        agent = await self.repo.get(approval.tenant, approval.slug)
        validate(approval.data, "approval")
        version = await self.repo.decide(approval, approve, actor, agent)
        if version is not None:
            await self._published(agent, actor, version, "approved")
        elif not approve:
            await self.repo.audit(
                approval.tenant,
                actor,
                f"agent.{agent.slug}.rejected",
                None,
                {"approval": approval.id},
            )
        return version

    async def rollback(self, agent: TenantAgent, number: int, actor: str) -> int:
        """Publish an earlier version again, as a new version (history stays linear)."""
        old = await self.repo.version(agent, number)
        validate(old.data, f"v{number}")
        version = await self.repo.publish(agent, old.data, actor, note=f"rollback to v{number}")
        await self._published(agent, actor, version, f"rolled back to v{number}")
        return version

    async def _published(self, agent: TenantAgent, actor: str, version: int, how: str) -> None:
        await self.repo.audit(
            agent.tenant,
            actor,
            f"agent.{agent.slug}.published",
            {"version": agent.current_version},
            {"version": version, "how": how},
        )
        await self.updates.announce(agent.tenant, agent.slug)


def _changes(before: dict[str, Any], after: dict[str, Any], side: str) -> dict[str, Any]:
    """Only the top-level fields that changed, for a readable audit entry."""
    keys = sorted(set(before) | set(after))
    source = before if side == "before" else after
    return {k: source.get(k) for k in keys if before.get(k) != after.get(k)}
