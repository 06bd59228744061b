"""`voice-agent tenant add|list`: the client businesses of a deployment, from the shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from prompts.loader import load_agents
from voice_agent.agents.studio import tenant_copy
from voice_agent.billing import tenant_options
from voice_agent.billing.service import Billing
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.settings import Settings, load_settings
from voice_agent.storage.agents import AgentRepository
from voice_agent.storage.billing import CustomerTaken
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.tenants import NumberTaken, Tenant, TenantExists, TenantRepository
from voice_agent.tenant_setup import TenantFieldError, new_tenant

EXIT_USAGE = 2


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.tenant_command == "list":
        return asyncio.run(_list(settings.database_url))
    try:
        tenant = new_tenant(
            args.slug,
            args.name,
            args.agent,
            args.outbound_agent,
            load_agents(),
            args.timezone,
            calling_hours=args.calling_hours,
            calling_days=args.calling_days,
        )
        numbers = [to_e164(raw) for raw in args.number]
        billing = tenant_options.parse(
            args.stripe_customer, args.markup, args.monthly_cap, args.grace_days
        )
    except TenantFieldError as exc:
        flag = "SLUG" if exc.field == "slug" else f"--{exc.field.replace('_', '-')}"
        return _fail(f"{flag}: {exc.message}")
    except InvalidPhoneNumber as exc:
        return _fail(f"--number: {exc}")
    return asyncio.run(_add(settings, tenant, numbers, billing))


async def _add(
    settings: Settings, tenant: Tenant, numbers: list[str], billing: dict[str, Any]
) -> int:
    database_url = settings.database_url
    await upgrade(database_url)
    database = await Database.connect(database_url)
    repo = TenantRepository(database)
    try:
        try:
            await repo.create(tenant)
        except TenantExists:
            return _fail(f"SLUG: a tenant {tenant.slug!r} exists already")
        await _own_agents(database, tenant)
        for number in numbers:
            try:
                await repo.add_number(tenant.slug, number)
            except NumberTaken:
                route = await repo.route(number)
                owner = route.tenant.slug if route else "another tenant"
                print(
                    f"voice-agent tenant add: --number: {number} belongs to {owner}; skipped",
                    file=sys.stderr,
                )
        if billing:
            try:
                account = await Billing(database, settings).configure(
                    tenant.slug, tenant.name, billing
                )
            except TenantFieldError as exc:
                return _fail(f"--{exc.field.replace('_', '-')}: {exc.message} (tenant added)")
            except CustomerTaken as exc:
                return _fail(f"--stripe-customer: {exc} belongs to another tenant (tenant added)")
            if account.stripe_customer_id:
                print(f"stripe customer {account.stripe_customer_id}")
    finally:
        await database.dispose()
    print(f"added tenant {tenant.slug} ({tenant.name})")
    return 0


async def _own_agents(database: Database, tenant: Tenant) -> None:
    """The new tenant's own agents (#13): its templates, introducing it by its name."""
    repo = AgentRepository(database)
    for slug in dict.fromkeys((tenant.agent, tenant.outbound_agent)):
        await repo.create(
            tenant.slug, slug, tenant_copy(slug, tenant.name), "voice-agent tenant add"
        )


async def _list(database_url: str) -> int:
    await upgrade(database_url)
    database = await Database.connect(database_url)
    repo = TenantRepository(database)
    try:
        for tenant in await repo.all():
            numbers = ", ".join(n for n, _ in await repo.numbers(tenant.slug)) or "no numbers"
            print(
                f"{tenant.slug}\t{tenant.name}\t{tenant.agent}/{tenant.outbound_agent}\t{numbers}"
            )
    finally:
        await database.dispose()
    return 0


def _fail(message: str) -> int:
    print(f"voice-agent tenant add: {message}", file=sys.stderr)
    return EXIT_USAGE
